// hmodctl audit on local trees: every check passes on a clean tree and fails or warns on the
// file kind it exists for (docs/AUDIT.md §1).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <filesystem>

#include "audit/sniff.h"
#include "support/audit_fixture.h"
#include "support/model_builder.h"

namespace hmod::testing {
namespace {

using nlohmann::json;

std::string AsString(const Bytes& b) { return std::string(b.begin(), b.end()); }

// A string literal's bytes without its terminating NUL (embedded NULs included).
template <size_t N>
std::string_view Lit(const char (&s)[N]) {
  return std::string_view(s, N - 1);
}

Bytes Concat(std::initializer_list<std::string_view> parts) {
  Bytes out;
  for (auto p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// A zip's first local file header and entry: all the audit reads.
Bytes ZipWithFirstEntry(const std::string& name) {
  Bytes b = Concat({std::string_view("PK\x03\x04\x14\x00\x00\x00\x00\x00", 10), std::string(16, '\0')});
  b.push_back(static_cast<uint8_t>(name.size()));
  b.push_back(0);
  b.push_back(0);
  b.push_back(0);
  b.insert(b.end(), name.begin(), name.end());
  const Bytes data = TestData(200, 9);
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

Bytes SmallSafetensors() {
  return BuildSafetensors({{"w", "F32", {2, 2}, TestData(16, 1)}, {"b", "F32", {2}, TestData(8, 2)}});
}

// One file of every plaintext format the audit recognises, with names that do not say so.
std::map<std::string, std::pair<Bytes, std::string>> EveryModelFormat() {
  GgufSpec gguf;
  gguf.tensors.push_back({"t", {4}, 0, TestData(16, 3), std::nullopt});
  return {
      {"a.bin", {SmallSafetensors(), "safetensors"}},
      {"b.bin", {ZipWithFirstEntry("archive/data.pkl"), "pytorch-zip"}},
      {"c.bin", {Concat({std::string_view("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e", 15)}),
                 "pytorch-legacy"}},
      {"d.bin", {Concat({std::string_view("\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00}\x94.", 14)}), "pickle"}},
      {"e.bin", {BuildGguf(gguf), "gguf"}},
      {"f.bin", {Concat({std::string_view("\x08\x07\x12\x07pytorch\x1a\x03" "2.1\x3a\x10", 17), std::string(32, 'g')}), "onnx"}},
      {"g.bin", {Concat({std::string_view("\x89HDF\r\n\x1a\n\x00\x00\x00\x00", 12), std::string(100, '\0')}), "hdf5"}},
      {"h.bin", {Concat({std::string_view("\x1c\x00\x00\x00TFL3\x00\x00", 10), std::string(100, '\0')}), "tflite"}},
      {"i.bin", {Concat({Lit("\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }")}), "npy"}},
      {"j.bin", {ZipWithFirstEntry("weights.npy"), "npz"}},
      {"k.bin", {ZipWithFirstEntry("metadata.json"), "keras"}},
  };
}

// Recognition by content must not cry wolf: random bytes (compressed or encrypted data) and
// text are not models, and every format is told apart from the others.
TEST(AuditSniff, RandomBytesAndTextAreNotModels) {
  for (uint64_t seed = 0; seed < 4000; ++seed) {
    const Bytes data = TestData(audit::kSniffBytes, seed);
    const auto kind = audit::Sniff(data, 1 << 20);
    EXPECT_FALSE(audit::IsPlaintextModel(kind)) << "seed " << seed << ": " << audit::ContentName(kind);
  }
  for (const char* text : {"{\"weights\": [1, 2, 3]}\n", "# hmod-key-v1 in a comment only\n", "PK not a zip", "GGUF\xff\xff\xff\xff"}) {
    const std::string t = text;
    EXPECT_EQ(audit::Sniff(AsBytes(t), t.size()), audit::Content::kUnknown) << t;
  }
  for (const auto& [name, model] : EveryModelFormat()) {
    EXPECT_STREQ(audit::ContentName(audit::Sniff(model.first, model.first.size())), model.second.c_str()) << name;
  }
}

class AuditLocal : public ::testing::Test {
 protected:
  std::string Encrypt(const std::string& name, const Bytes& plain, const std::vector<std::string>& keks,
                      const std::vector<std::string>& extra = {}) {
    const std::string in = scratch_ / name;
    WriteFile(in, plain);
    std::vector<std::string> args = {"encrypt", "-q", "-o", tree_ / (name + ".hmod"), in};
    for (const auto& k : keks) args.insert(args.end(), {"--kek", k});
    args.insert(args.end(), extra.begin(), extra.end());
    CliResult r = RunCli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return tree_ / (name + ".hmod");
  }
  TempDir tree_;
  TempDir scratch_;  // keys and plaintext inputs, outside the audited tree
};

TEST_F(AuditLocal, PlaintextModelsAreRecognisedByContentNotByName) {
  std::filesystem::create_directories(tree_ / "deep/er");
  for (const auto& [name, model] : EveryModelFormat()) WriteFile(tree_ / ("deep/er/" + name), model.first);
  // Names that look like models but hold something else are not models.
  WriteFile(tree_ / "fake.safetensors", TestData(5000, 7));
  WriteFile(tree_ / "notes.onnx", AsBytes("just some text about onnx\n"));
  AuditRun run = RunAudit({tree_.path()});
  EXPECT_EQ(run.exit_code, 1) << run.err;
  for (const auto& [name, model] : EveryModelFormat()) {
    SCOPED_TRACE(name);
    const json f = OneFinding(run, "local.plaintext-model", "/deep/er/" + name);
    ASSERT_TRUE(f.is_object());
    EXPECT_EQ(f["level"], "fail");
    EXPECT_EQ(f["details"]["format"], model.second);
    EXPECT_FALSE(f["remediation"].get<std::string>().empty());
  }
  EXPECT_TRUE(Findings(run.doc, "local.plaintext-model", "fake.safetensors").empty());
  EXPECT_TRUE(Findings(run.doc, "local.plaintext-model", "notes.onnx").empty());
  EXPECT_EQ(run.doc["summary"]["fail"], EveryModelFormat().size());
}

TEST_F(AuditLocal, TreeOfEncryptedModelsPasses) {
  const std::string key = MakeKeyFile(scratch_);
  Encrypt("m.safetensors", SmallSafetensors(), {"file:" + key});
  Encrypt("blob", TestData(70000, 4), {"file:" + key});
  WriteFile(tree_ / "README", AsBytes("models live here\n"));
  AuditRun run = RunAudit({tree_.path()});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_EQ(LevelOf(run, "local.plaintext-model"), "pass");
  EXPECT_EQ(run.doc["summary"]["fail"], 0);
  EXPECT_EQ(run.doc["ok"], true);
}

TEST_F(AuditLocal, HmodFilesShowSuiteOpenersSignatureAndIndexVisibility) {
  const std::string key = MakeKeyFile(scratch_);
  ASSERT_EQ(RunCli({"keygen", "-q", "--ed25519", "-o", scratch_ / "sign"}).exit_code, 0);
  Encrypt("private.safetensors", SmallSafetensors(), {"file:" + key}, {"--sign-key", scratch_ / "sign"});
  const std::string key2 = MakeKeyFile(scratch_, "k2.key");
  Encrypt("public.safetensors", SmallSafetensors(), {"file:" + key, "file:" + key2}, {"--public-index"});
  Encrypt("whole", TestData(1000, 5), {"file:" + key}, {"--suite", "chacha20-poly1305"});
  AuditRun run = RunAudit({tree_.path()});

  const json priv = OneFinding(run, "local.hmod-file", "private.safetensors.hmod");
  EXPECT_EQ(priv["level"], "pass");
  EXPECT_EQ(priv["details"]["index"], "encrypted");
  EXPECT_EQ(priv["details"]["signed"], true);
  EXPECT_EQ(priv["details"]["wrapped_keys"][0]["provider"], "file");
  const json whole = OneFinding(run, "local.hmod-file", "whole.hmod");
  EXPECT_EQ(whole["level"], "pass");
  EXPECT_EQ(whole["details"]["suite"], "chacha20-poly1305");
  EXPECT_EQ(whole["details"]["layout"], "stream");
  const json pub = OneFinding(run, "local.hmod-file", "public.safetensors.hmod");
  EXPECT_EQ(pub["level"], "warn");
  EXPECT_EQ(pub["details"]["index"], "public");
  EXPECT_EQ(pub["details"]["signed"], false);
  EXPECT_EQ(pub["details"]["wrapped_keys"].size(), 2u);
  EXPECT_EQ(run.exit_code, 0) << "a WARN alone does not fail the audit";
  EXPECT_EQ(RunAudit({"--fail-on", "warn", tree_.path()}).exit_code, 1);
}

TEST_F(AuditLocal, LegacyContainersWarnToMigrate) {
  const Bytes legacy_body = Concat({std::string_view("\x00\x00\x00\x02{}", 6), std::string(60, 'x')});
  Bytes enc = Concat({"ENCMODEL"}), env = Concat({"ENVMODEL"});
  enc.insert(enc.end(), legacy_body.begin(), legacy_body.end());
  env.insert(env.end(), legacy_body.begin(), legacy_body.end());
  std::filesystem::create_directories(tree_ / "old");
  WriteFile(tree_ / "old/a.enc", enc);
  WriteFile(tree_ / "old/b.bin", env);
  AuditRun run = RunAudit({tree_ / "old"});
  EXPECT_EQ(LevelOf(run, "local.legacy-container", "a.enc"), "warn");
  EXPECT_EQ(LevelOf(run, "local.legacy-container", "b.bin"), "warn");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(RunAudit({"--fail-on", "warn", tree_ / "old"}).exit_code, 1);
  // A tree without legacy files passes; an .hmod is not one.
  std::filesystem::create_directories(tree_ / "new");
  std::filesystem::create_directories(scratch_ / "new");
  Encrypt("new/m", TestData(100, 1), {"file:" + MakeKeyFile(scratch_)});
  AuditRun none = RunAudit({tree_ / "new"});
  EXPECT_EQ(LevelOf(none, "local.legacy-container", "/new"), "pass");
  EXPECT_EQ(none.exit_code, 0);
}

TEST_F(AuditLocal, KeyFilesReadableByOthersFail) {
  const std::string good = MakeKeyFile(tree_, "good.key");
  const std::string bad = MakeKeyFile(tree_, "bad.key");
  ASSERT_EQ(::chmod(bad.c_str(), 0644), 0);
  ASSERT_EQ(RunCli({"keygen", "-q", "--x25519", "-o", tree_ / "id.x25519"}).exit_code, 0);
  ASSERT_EQ(::chmod((tree_ / "id.x25519").c_str(), 0640), 0);
  AuditRun run = RunAudit({tree_.path()});
  EXPECT_EQ(LevelOf(run, "local.key-file-permissions", "good.key"), "pass");
  const json f = OneFinding(run, "local.key-file-permissions", "bad.key");
  EXPECT_EQ(f["level"], "fail");
  EXPECT_NE(f["message"].get<std::string>().find("0644"), std::string::npos);
  EXPECT_NE(f["remediation"].get<std::string>().find("chmod 600"), std::string::npos);
  EXPECT_EQ(LevelOf(run, "local.key-file-permissions", "id.x25519"), "fail");
  EXPECT_EQ(run.exit_code, 1);
  // The key bytes never reach the report.
  const std::string text = AsString(ReadFile(bad));
  EXPECT_EQ(run.out.find(text.substr(text.find("hmod-key-v1 ") + 12, 64)), std::string::npos);
}

TEST_F(AuditLocal, KeyThatOpensAModelInTheSameTreeFails) {
  const std::string beside = MakeKeyFile(tree_, "team.key");
  const std::string unrelated = MakeKeyFile(tree_, "other.key");
  const std::string elsewhere = MakeKeyFile(scratch_, "remote.key");
  ASSERT_EQ(RunCli({"keygen", "-q", "--x25519", "-o", tree_ / "me.id"}).exit_code, 0);
  CliResult recipient = RunCli({"keygen", "--json", "--x25519", "-o", scratch_ / "them.id"});
  ASSERT_EQ(recipient.exit_code, 0) << recipient.err;
  Encrypt("a", TestData(3000, 1), {"file:" + beside});
  Encrypt("b", TestData(3000, 2), {"file:" + elsewhere, "x25519:" + (tree_ / "me.id")});
  Encrypt("c", TestData(3000, 3), {"file:" + elsewhere});
  AuditRun run = RunAudit({tree_.path()});
  const json f = OneFinding(run, "local.key-beside-model", "team.key");
  EXPECT_EQ(f["level"], "fail");
  ASSERT_EQ(f["details"]["opens"].size(), 1u);
  EXPECT_EQ(f["details"]["opens"][0], tree_ / "a.hmod");
  EXPECT_EQ(LevelOf(run, "local.key-beside-model", "other.key"), "pass");
  const json x = OneFinding(run, "local.key-beside-model", "me.id");
  EXPECT_EQ(x["level"], "fail");
  EXPECT_EQ(x["details"]["provider"], "x25519");
  EXPECT_EQ(x["details"]["opens"][0], tree_ / "b.hmod");
  EXPECT_EQ(run.exit_code, 1);
}

TEST_F(AuditLocal, PlaintextLeftInTmpfs) {
  struct statfs sfs {};
  ASSERT_EQ(::statfs("/dev/shm", &sfs), 0) << "/dev/shm is needed for this test";
  ASSERT_EQ(static_cast<long>(sfs.f_type), 0x01021994L) << "/dev/shm is not a tmpfs here";
  char tmpl[] = "/dev/shm/hmod-audit-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string shm = tmpl;
  struct Cleanup {
    std::string p;
    ~Cleanup() { std::filesystem::remove_all(p); }
  } cleanup{shm};

  AuditRun empty = RunAudit({shm});
  EXPECT_EQ(LevelOf(empty, "local.tmpfs-plaintext"), "pass");
  EXPECT_EQ(empty.exit_code, 0);

  WriteFile(shm + "/private.bin", SmallSafetensors(), 0600);
  AuditRun owned = RunAudit({shm});
  EXPECT_EQ(LevelOf(owned, "local.tmpfs-plaintext", "private.bin"), "warn");
  EXPECT_EQ(owned.exit_code, 0);

  WriteFile(shm + "/shared.bin", SmallSafetensors(), 0644);
  ASSERT_EQ(::chmod((shm + "/shared.bin").c_str(), 0644), 0);
  AuditRun shared = RunAudit({shm});
  EXPECT_EQ(LevelOf(shared, "local.tmpfs-plaintext", "shared.bin"), "fail");
  EXPECT_EQ(shared.exit_code, 1);
  EXPECT_TRUE(Findings(shared.doc, "local.plaintext-model").empty()) << "tmpfs copies have their own rule";
}

TEST_F(AuditLocal, AuditThatCannotRunExitsTwo) {
  AuditRun missing = RunAudit({tree_ / "nope"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("hmodctl: error:"), std::string::npos);
  EXPECT_EQ(missing.doc["ok"], false);
  EXPECT_EQ(missing.doc["errors"][0]["target"], tree_ / "nope");
  // Findings of the targets that could run are still reported.
  WriteFile(tree_ / "m", SmallSafetensors());
  AuditRun both = RunAudit({tree_.path(), tree_ / "nope"});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_EQ(LevelOf(both, "local.plaintext-model", "/m"), "fail");

  CliResult scheme = RunCli({"audit", "ftp://host/x"});
  EXPECT_EQ(scheme.exit_code, 2);
  EXPECT_NE(scheme.err.find("unknown target scheme"), std::string::npos);
  EXPECT_EQ(RunCli({"audit", "tls://host-without-port"}).exit_code, 2);
  EXPECT_EQ(RunCli({"audit", "--json", "--sarif", tree_.path()}).exit_code, 2);
  EXPECT_EQ(RunCli({"audit"}).exit_code, 2);
}

TEST_F(AuditLocal, TableShowsWorstFirstWithFixes) {
  WriteFile(tree_ / "m.gguf.bak", SmallSafetensors());
  const std::string key = MakeKeyFile(tree_, "ok.key");
  CliResult r = RunCli({"audit", tree_.path()});
  EXPECT_EQ(r.exit_code, 1);
  const auto fail = r.out.find("FAIL  local.plaintext-model");
  const auto pass = r.out.find("PASS  local.key-file-permissions");
  ASSERT_NE(fail, std::string::npos) << r.out;
  ASSERT_NE(pass, std::string::npos) << r.out;
  EXPECT_LT(fail, pass);
  EXPECT_NE(r.out.find("fix: encrypt it"), std::string::npos);
  EXPECT_NE(r.out.find("1 fail, 0 warn, 3 pass"), std::string::npos) << r.out;
  CliResult q = RunCli({"audit", "-q", tree_.path()});
  EXPECT_EQ(q.out.find("PASS"), std::string::npos) << q.out;
}

}  // namespace
}  // namespace hmod::testing
