// Legacy ENCMODEL / ENVMODEL files (docs/LEGACY.md), made by tests/support/legacy_maker.py —
// the seed document's own Python code (cryptography AESGCM, boto3 against a real,
// signature-verifying moto_server) — then decrypted, verified and migrated by hmodctl.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "hmod/container.h"
#include "hmod/key_file.h"
#include "hmod/legacy.h"
#include "keys/aws_kms_provider.h"
#include "legacy/legacy_json.h"
#include "support/legacy_support.h"
#include "support/model_builder.h"
#include "support/moto_server.h"
#include "support/test_util.h"

namespace hmod::testing {
namespace {

using nlohmann::json;
using Env = std::map<std::string, std::string>;

std::string AsString(const Bytes& b) { return std::string(b.begin(), b.end()); }

// Flips one bit of the file at `offset` (from the end if negative).
void FlipBit(const std::string& path, int64_t offset) {
  Bytes b = ReadFile(path);
  const size_t at = offset >= 0 ? static_cast<size_t>(offset) : b.size() - static_cast<size_t>(-offset);
  b.at(at) ^= 0x01;
  struct stat st {};
  ::stat(path.c_str(), &st);
  WriteFile(path, b, st.st_mode & 0777);
}

// Offset of `needle` in the file (the metadata JSON is plain text).
size_t Find(const std::string& path, const std::string& needle) {
  const std::string s = AsString(ReadFile(path));
  const size_t at = s.find(needle);
  if (at == std::string::npos) throw std::runtime_error("'" + needle + "' not in " + path);
  return at;
}

void Replace(const std::string& path, const std::string& from, const std::string& to) {
  ASSERT_EQ(from.size(), to.size());
  std::string s = AsString(ReadFile(path));
  const size_t at = s.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  s.replace(at, from.size(), to);
  WriteFile(path, AsBytes(s), 0644);
}

Bytes SmallSafetensors() {
  std::vector<SafetensorsTensor> t = {
      {"model.embed.weight", "F32", {64, 1024}, TestData(64 * 1024 * 4, 31)},
      {"model.layer0.weight", "F32", {1024, 1024}, TestData(1024 * 1024 * 4, 32)},  // crosses a 4 MiB block
      {"model.layer1.bias", "F16", {1000}, TestData(2000, 33)},
  };
  return BuildSafetensors(t);
}

class LegacyBase : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(InitCrypto().ok()); }

  // Runs legacy_maker.py; fails the test on error.
  void Maker(const std::vector<std::string>& args, const Env& env = {}) {
    std::vector<std::string> argv = {"python3", LegacyMakerPath()};
    argv.insert(argv.end(), args.begin(), args.end());
    CliResult r = RunProgram(argv, env, dir_.path());
    // Thrown, so that the calling test stops too.
    if (r.exit_code != 0) throw std::runtime_error("legacy_maker.py failed: " + r.err + r.out);
  }

  // A raw 32-byte key file, mode 0600.
  std::string RawKey(const std::string& name = "raw.key") {
    const std::string path = dir_ / name;
    raw_key_ = RandomBytes(32);
    WriteFile(path, raw_key_, 0600);
    return path;
  }

  // dir_/name holding an ENCMODEL of `plain` made by the seed's ModelEncryptor.
  std::string EncModel(const Bytes& plain, const std::string& key, const std::optional<std::string>& aad,
                       const std::string& name = "m.enc") {
    WriteFile(dir_ / (name + ".plain"), plain);
    std::vector<std::string> args = {"encmodel", "--key-file", key};
    if (aad) args.insert(args.end(), {"--aad", *aad});
    args.insert(args.end(), {dir_ / (name + ".plain"), dir_ / name});
    Maker(args);
    ::unlink((dir_ / (name + ".plain")).c_str());
    return dir_ / name;
  }

  // Asserts a failed run left no output and no temporary file behind.
  void ExpectNoOutput(const std::string& out) {
    EXPECT_FALSE(Exists(out)) << out;
    for (const auto& n : dir_.List()) EXPECT_EQ(n.find(".hmod-tmp-"), std::string::npos) << n;
  }

  TempDir dir_;
  Bytes raw_key_;
};

// ---------------------------------------------------------------------------------------------
// Python's json.dumps, reproduced.

TEST(LegacyJson, PythonDumpsMatchesCPythonByteForByte) {
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"model", "llama \"3\" \\ / \x7f"}, {"z-first", "\xC3\xBC\xE2\x82\xAC \xF0\x9F\xA6\x99"},
      {"ctl", std::string("a\b\f\n\r\t\x01", 7)}, {"", ""}};
  EXPECT_EQ(legacy::PythonJsonDumps(pairs),
            "{\"model\": \"llama \\\"3\\\" \\\\ / \\u007f\", \"z-first\": \"\\u00fc\\u20ac \\ud83e\\udd99\", "
            "\"ctl\": \"a\\b\\f\\n\\r\\t\\u0001\", \"\": \"\"}");
  EXPECT_EQ(legacy::PythonJsonDumps({}), "{}");
  // And the same through python3 itself.
  TempDir dir;
  CliResult r = RunProgram({"python3", "-c",
                            "import json,sys; sys.stdout.write(json.dumps({'model': 'llama \"3\" \\\\ / \\x7f', "
                            "'z-first': '\\u00fc\\u20ac \\U0001F999', 'ctl': 'a\\b\\f\\n\\r\\t\\x01', '': ''}))"},
                           {}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, legacy::PythonJsonDumps(pairs));
}

TEST(LegacyJson, ParserIsStrict) {
  for (const char* bad : {"{\"a\": 1, \"a\": 2}", "{\"a\": 01}", "{\"a\": \"\\ud800\"}", "{\"a\": NaN}", "{\"a\": 1,}",
                          "{\"a\": \"x\"} x", "{\"a\": \"\x01\"}", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"}) {
    EXPECT_FALSE(legacy::ParseJson(bad, "t").ok()) << bad;
  }
  auto ok = legacy::ParseJson(" {\"b\": [1, -2.5e3, true, null], \"a\": \"\\u00fc\\ud83e\\udd99\"} ", "t");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->members[0].key, "b");  // file order kept
  EXPECT_EQ(ok->Find("a")->text, "\xC3\xBC\xF0\x9F\xA6\x99");
}

// ---------------------------------------------------------------------------------------------
// ENCMODEL: raw key, optional AAD. No KMS needed.

class LegacyEnc : public LegacyBase {};

TEST_F(LegacyEnc, DecryptAndVerifyWithoutAad) {
  const std::string key = RawKey();
  // Over two 4 MiB verification blocks, not a multiple of 16.
  const Bytes plain = TestData(9 * 1024 * 1024 + 123, 1);
  const std::string file = EncModel(plain, key, std::nullopt);

  CliResult v = RunCli({"verify", "--json", "--legacy-key", key, file});
  ASSERT_EQ(v.exit_code, 0) << v.err;
  json j = json::parse(v.out);
  EXPECT_EQ(j["legacy_format"], "ENCMODEL");
  EXPECT_EQ(j["verified"], true);
  EXPECT_EQ(j["plaintext_bytes"], plain.size());
  EXPECT_EQ(j["plaintext_sha256"], HexEncode(Sha256(plain)));

  CliResult d = RunCli({"decrypt", "-q", "--legacy-key", key, "-o", dir_ / "out", file});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_TRUE(ReadFile(dir_ / "out") == plain);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "out").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  CliResult p = RunCli({"decrypt", "--legacy-key", key, "-o", "-", file});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_TRUE(p.out == AsString(plain));
}

TEST_F(LegacyEnc, AssociatedDataIsRequiredAndChecked) {
  const std::string key = RawKey();
  const Bytes plain = TestData(100000, 2);
  const std::string file = EncModel(plain, key, std::string("llama:3"));

  CliResult none = RunCli({"decrypt", "--legacy-key", key, "-o", dir_ / "out", file});
  EXPECT_EQ(none.exit_code, 2) << none.err;
  EXPECT_NE(none.err.find("--legacy-aad"), std::string::npos) << none.err;
  ExpectNoOutput(dir_ / "out");

  CliResult wrong = RunCli({"decrypt", "--json", "--legacy-key", key, "--legacy-aad", "llama:4", "-o", dir_ / "out", file});
  EXPECT_EQ(wrong.exit_code, 6) << wrong.err;
  EXPECT_EQ(json::parse(wrong.out)["error"]["code"], "auth_failed");
  ExpectNoOutput(dir_ / "out");

  CliResult right = RunCli({"decrypt", "-q", "--legacy-key", key, "--legacy-aad", "llama:3", "-o", dir_ / "out", file});
  ASSERT_EQ(right.exit_code, 0) << right.err;
  EXPECT_TRUE(ReadFile(dir_ / "out") == plain);

  WriteFile(dir_ / "aad", AsBytes("llama:3"));
  CliResult from_file = RunCli({"verify", "-q", "--legacy-key", key, "--legacy-aad-file", dir_ / "aad", file});
  EXPECT_EQ(from_file.exit_code, 0) << from_file.err;

  // A file made without AAD refuses one.
  const std::string plain_file = EncModel(plain, key, std::nullopt, "n.enc");
  CliResult extra = RunCli({"verify", "--legacy-key", key, "--legacy-aad", "x", plain_file});
  EXPECT_EQ(extra.exit_code, 2) << extra.err;
}

TEST_F(LegacyEnc, KeyFileFormatsAndPermissions) {
  // The same key as our key-file format and as hex digits.
  const std::string raw = RawKey();
  const Bytes plain = TestData(5000, 3);
  const std::string file = EncModel(plain, raw, std::nullopt);
  const std::string hmod_key = dir_ / "k.hmodkey";
  WriteFile(hmod_key, AsBytes(EncodeKeyFile(SecretBytes::CopyFrom(raw_key_))), 0600);
  const std::string hex_key = dir_ / "k.hex";
  WriteFile(hex_key, AsBytes(HexEncode(raw_key_) + "\n"), 0600);
  for (const std::string& k : {raw, hmod_key, hex_key}) {
    CliResult v = RunCli({"verify", "-q", "--legacy-key", k, file});
    EXPECT_EQ(v.exit_code, 0) << k << ": " << v.err;
  }
  ASSERT_EQ(::chmod(raw.c_str(), 0640), 0);
  CliResult open_mode = RunCli({"decrypt", "--legacy-key", raw, "-o", dir_ / "out", file});
  EXPECT_EQ(open_mode.exit_code, 8) << open_mode.err;
  ExpectNoOutput(dir_ / "out");

  CliResult no_key = RunCli({"decrypt", "-o", dir_ / "out", file});
  EXPECT_EQ(no_key.exit_code, 2) << no_key.err;
  EXPECT_NE(no_key.err.find("--legacy-key"), std::string::npos) << no_key.err;
  ExpectNoOutput(dir_ / "out");
}

TEST_F(LegacyEnc, WrongKeyTamperingTruncationAndWrongHashFailWithNothingWritten) {
  const std::string key = RawKey();
  const Bytes plain = TestData(5 * 1024 * 1024 + 7, 4);
  const std::string good = EncModel(plain, key, std::nullopt);
  const Bytes original = ReadFile(good);

  struct Case {
    std::string name;
    std::function<void(const std::string&)> damage;
    int exit_code;
  };
  const std::string hash = HexEncode(Sha256(plain));
  std::string other_hash = hash;
  other_hash[0] = other_hash[0] == '0' ? '1' : '0';
  const std::vector<Case> cases = {
      {"ciphertext byte", [](const std::string& p) { FlipBit(p, 4096); }, 6},
      {"last ciphertext byte", [](const std::string& p) { FlipBit(p, -17); }, 6},
      {"tag", [](const std::string& p) { FlipBit(p, -1); }, 6},
      {"nonce", [&](const std::string& p) { FlipBit(p, static_cast<int64_t>(Find(p, "}") + 1)); }, 6},
      {"recorded hash", [&](const std::string& p) { Replace(p, hash, other_hash); }, 6},
      {"has_aad flag", [&](const std::string& p) { Replace(p, "\"has_aad\": false", "\"has_aad\": true ");}, 2},
      {"truncated", [&](const std::string& p) { Bytes b = ReadFile(p); b.resize(b.size() - 1000); WriteFile(p, b); }, 6},
      {"extended", [&](const std::string& p) { Bytes b = ReadFile(p); b.push_back(0); WriteFile(p, b); }, 6},
      {"metadata length", [](const std::string& p) { FlipBit(p, 11); }, 4},
  };
  for (const auto& c : cases) {
    const std::string f = dir_ / "damaged.enc";
    WriteFile(f, original);
    c.damage(f);
    CliResult d = RunCli({"decrypt", "--legacy-key", key, "-o", dir_ / "out", f});
    EXPECT_EQ(d.exit_code, c.exit_code) << c.name << ": " << d.err;
    ExpectNoOutput(dir_ / "out");
    CliResult v = RunCli({"verify", "--legacy-key", key, f});
    EXPECT_EQ(v.exit_code, c.exit_code) << c.name << ": " << v.err;
  }

  // Another key.
  const std::string other = dir_ / "other.key";
  WriteFile(other, RandomBytes(32), 0600);
  CliResult d = RunCli({"decrypt", "--json", "--legacy-key", other, "-o", dir_ / "out", good});
  EXPECT_EQ(d.exit_code, 6) << d.err;
  ExpectNoOutput(dir_ / "out");
  // To stdout: nothing at all, since nothing is released before the whole file authenticated.
  CliResult p = RunCli({"decrypt", "--legacy-key", other, "-o", "-", good});
  EXPECT_EQ(p.exit_code, 6);
  EXPECT_TRUE(p.out.empty());
}

TEST_F(LegacyEnc, KeyUseIsAudited) {
  const std::string key = RawKey();
  const std::string file = EncModel(TestData(3000, 9), key, std::nullopt);
  const std::string log = dir_ / "audit.jsonl";
  ASSERT_EQ(RunCli({"decrypt", "-q", "--audit-log", log, "--legacy-key", key, "-o", dir_ / "out", file}).exit_code, 0);
  const std::string other = dir_ / "other.key";
  WriteFile(other, RandomBytes(32), 0600);
  EXPECT_EQ(RunCli({"verify", "-q", "--legacy-key", other, file}, {}, {{"HMOD_AUDIT_LOG", log}}).exit_code, 6);
  const std::string text = AsString(ReadFile(log));
  std::vector<json> lines;
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = text.find('\n', pos);
    lines.push_back(json::parse(text.substr(pos, end - pos)));
    pos = end + 1;
  }
  ASSERT_EQ(lines.size(), 2u) << text;
  EXPECT_EQ(lines[0]["operation"], "unwrap");
  EXPECT_EQ(lines[0]["provider"], "legacy-key");
  EXPECT_EQ(lines[0]["key_id"], KeyFingerprint(SecretBytes::CopyFrom(raw_key_)));
  EXPECT_EQ(lines[0]["outcome"], "ok");
  EXPECT_EQ(lines[1]["outcome"], "auth_failed");
  EXPECT_EQ(text.find(HexEncode(raw_key_)), std::string::npos);
}

TEST_F(LegacyEnc, PipedInputIsRefusedWithAHint) {
  const std::string key = RawKey();
  const std::string file = EncModel(TestData(1000, 5), key, std::nullopt);
  CliResult d = RunCli({"decrypt", "--legacy-key", key, "-o", dir_ / "out", "-"}, AsString(ReadFile(file)));
  EXPECT_EQ(d.exit_code, 2) << d.err;
  EXPECT_NE(d.err.find("save it to a file"), std::string::npos) << d.err;
  ExpectNoOutput(dir_ / "out");
  // An .hmod on a pipe still works (the sniffed bytes are replayed).
  const std::string kek = MakeKeyFile(dir_);
  WriteFile(dir_ / "p", TestData(70000, 6));
  ASSERT_EQ(RunCli({"encrypt", "-q", "--kek", "file:" + kek, "-o", dir_ / "p.hmod", dir_ / "p"}).exit_code, 0);
  CliResult h = RunCli({"decrypt", "--kek", "file:" + kek, "-o", "-", "-"}, AsString(ReadFile(dir_ / "p.hmod")));
  ASSERT_EQ(h.exit_code, 0) << h.err;
  EXPECT_TRUE(h.out == AsString(ReadFile(dir_ / "p")));
  CliResult vh = RunCli({"verify", "-q", "--kek", "file:" + kek, "-"}, AsString(ReadFile(dir_ / "p.hmod")));
  EXPECT_EQ(vh.exit_code, 0) << vh.err;
}

TEST_F(LegacyEnc, AFileChangedBetweenThePassesReleasesNothing) {
  const std::string key = RawKey();
  const Bytes plain = TestData(6 * 1024 * 1024, 7);
  const std::string file = EncModel(plain, key, std::nullopt);
  auto in = InputFile::Open(file);
  ASSERT_TRUE(in.ok());
  LegacyKeys keys;
  keys.key_file = key;
  auto legacy = LegacyFile::Open(**in, keys);
  ASSERT_TRUE(legacy.ok()) << legacy.error().message;
  ASSERT_TRUE((*legacy)->Authenticate().ok());
  // Random access is byte-exact (CTR over GCM's counter blocks).
  Bytes part(100000);
  ASSERT_TRUE((*legacy)->plaintext().ReadAt(12345, part).ok());
  EXPECT_TRUE(std::equal(part.begin(), part.end(), plain.begin() + 12345));

  {
    // Across the 4 MiB verification blocks, on another instance (the first keeps block 1 uncached).
    auto other = LegacyFile::Open(**in, keys);
    ASSERT_TRUE(other.ok());
    ASSERT_TRUE((*other)->Authenticate().ok());
    Bytes across(100000);
    ASSERT_TRUE((*other)->plaintext().ReadAt(4 * 1024 * 1024 - 50000, across).ok());
    EXPECT_TRUE(std::equal(across.begin(), across.end(), plain.begin() + 4 * 1024 * 1024 - 50000));
    Bytes past(2);
    EXPECT_FALSE((*other)->plaintext().ReadAt(plain.size() - 1, past).ok());
  }
  // Now someone rewrites one ciphertext byte in the second block.
  const int fd = ::open(file.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  const uint8_t x = 0x5a;
  ASSERT_EQ(::pwrite(fd, &x, 1, static_cast<off_t>((*legacy)->info().ciphertext_offset + 5 * 1024 * 1024)), 1);
  ::close(fd);
  MemorySink sink;
  auto r = (*legacy)->DecryptTo(sink);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kAuthFailed);
  EXPECT_EQ(sink.bytes.size(), 4u * 1024 * 1024);  // only the verified first block
  EXPECT_TRUE(std::equal(sink.bytes.begin(), sink.bytes.end(), plain.begin()));
  Bytes b(10);
  EXPECT_EQ((*legacy)->plaintext().ReadAt(5 * 1024 * 1024, b).error().code, ErrorCode::kAuthFailed);
}

TEST_F(LegacyEnc, MigratesASafetensorsModelPerTensorAndABlobAsAStream) {
  const std::string key = RawKey();
  const std::string new_kek = MakeKeyFile(dir_, "new.key");
  struct Case {
    std::string name;
    Bytes plain;
    std::string layout;
  };
  for (const Case& c : {Case{"model.st", SmallSafetensors(), "tensors"}, Case{"blob.bin", TestData(300000, 8), "stream"}}) {
    const std::string legacy = EncModel(c.plain, key, std::string("llama:3"), c.name);
    ProviderList providers;
    providers.push_back(ProviderFromUri("file:" + new_kek).value());
    LegacyKeys keys;
    keys.key_file = key;
    keys.aad = Bytes{'l', 'l', 'a', 'm', 'a', ':', '3'};
    LegacyMigrationOptions options;
    options.context["team"] = "ml";
    auto m = MigrateLegacyFile(legacy, keys, providers, options);
    ASSERT_TRUE(m.ok()) << c.name << ": " << m.error().message;
    EXPECT_EQ(m->output, legacy + ".hmod");
    EXPECT_EQ(m->layout == Layout::kTensors ? "tensors" : "stream", c.layout) << c.name;
    EXPECT_TRUE(m->legacy_removed);
    EXPECT_FALSE(Exists(legacy));
    EXPECT_EQ(m->plaintext_sha256, HexEncode(Sha256(c.plain)));
    if (c.layout == "tensors") {
      EXPECT_EQ(m->tensors, 3u);
      EXPECT_EQ(m->model_format, ModelFormat::kSafetensors);
    }

    CliResult i = RunCli({"inspect", "--json", m->output});
    ASSERT_EQ(i.exit_code, 0) << i.err;
    json doc = json::parse(i.out);
    EXPECT_EQ(doc["layout"], c.layout);
    EXPECT_EQ(doc["context"]["legacy-aad"], "llama:3");
    EXPECT_EQ(doc["context"]["team"], "ml");
    const std::string out = dir_ / (c.name + ".out");
    CliResult d = RunCli({"decrypt", "-q", "--kek", "file:" + new_kek, "--context", "legacy-aad=llama:3", "-o", out,
                          m->output});
    ASSERT_EQ(d.exit_code, 0) << d.err;
    EXPECT_TRUE(ReadFile(out) == c.plain) << c.name;

    // Again: the legacy file is gone and the .hmod opens, so nothing is done.
    auto again = MigrateLegacyFile(legacy, keys, providers, options);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_TRUE(again->already_migrated);
  }
}

TEST_F(LegacyEnc, FailedMigrationLeavesTheLegacyFileAndNoOutput) {
  const std::string key = RawKey();
  const std::string new_kek = MakeKeyFile(dir_, "new.key");
  const Bytes plain = SmallSafetensors();
  const std::string legacy = EncModel(plain, key, std::nullopt);
  const Bytes before = ReadFile(legacy);
  ProviderList providers;
  providers.push_back(ProviderFromUri("file:" + new_kek).value());

  const std::string wrong = dir_ / "wrong.key";
  WriteFile(wrong, RandomBytes(32), 0600);
  LegacyKeys keys;
  keys.key_file = wrong;
  auto m = MigrateLegacyFile(legacy, keys, providers, {});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::kAuthFailed);
  EXPECT_TRUE(ReadFile(legacy) == before);
  ExpectNoOutput(legacy + ".hmod");

  // Tampered recorded hash: the GCM tag is fine, the SHA-256 check is not.
  std::string hash = HexEncode(Sha256(plain));
  std::string other = hash;
  other[5] = other[5] == 'a' ? 'b' : 'a';
  Replace(legacy, hash, other);
  keys.key_file = key;
  m = MigrateLegacyFile(legacy, keys, providers, {});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::kAuthFailed);
  EXPECT_TRUE(Exists(legacy));
  ExpectNoOutput(legacy + ".hmod");

  // An existing output is never replaced without force.
  Replace(legacy, other, hash);
  WriteFile(legacy + ".hmod", AsBytes("occupied"));
  m = MigrateLegacyFile(legacy, keys, providers, {});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::kIo);
  EXPECT_EQ(AsString(ReadFile(legacy + ".hmod")), "occupied");
  LegacyMigrationOptions force;
  force.force = true;
  force.keep_legacy = true;
  m = MigrateLegacyFile(legacy, keys, providers, force);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_TRUE(Exists(legacy));
  EXPECT_FALSE(m->legacy_removed);
  CliResult d = RunCli({"decrypt", "-q", "--kek", "file:" + new_kek, "-o", dir_ / "out", legacy + ".hmod"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_TRUE(ReadFile(dir_ / "out") == plain);
}

TEST_F(LegacyEnc, GgufPlaintextMigratesPerTensor) {
  GgufSpec spec;
  spec.kvs.push_back({"general.name", GgufValue::String("tiny")});
  spec.tensors.push_back({"tok_embd.weight", {16, 8}, 0, TestData(16 * 8 * 4, 41)});
  spec.tensors.push_back({"output.weight", {32}, 0, TestData(32 * 4, 42)});
  const Bytes plain = BuildGguf(spec);
  const std::string key = RawKey();
  const std::string new_kek = MakeKeyFile(dir_, "new.key");
  const std::string legacy = EncModel(plain, key, std::nullopt, "tiny.gguf.enc");
  ProviderList providers;
  providers.push_back(ProviderFromUri("file:" + new_kek).value());
  LegacyKeys keys;
  keys.key_file = key;
  LegacyMigrationOptions options;
  options.output = dir_ / "tiny.hmod";
  auto m = MigrateLegacyFile(legacy, keys, providers, options);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->layout, Layout::kTensors);
  EXPECT_EQ(m->model_format, ModelFormat::kGguf);
  CliResult d = RunCli({"decrypt", "-q", "--kek", "file:" + new_kek, "-o", dir_ / "out", dir_ / "tiny.hmod"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_TRUE(ReadFile(dir_ / "out") == plain);
}

// ---------------------------------------------------------------------------------------------
// ENVMODEL: data key wrapped by AWS KMS (moto), metadata as encryption context and as AAD.

class LegacyEnv : public LegacyBase {
 protected:
  static void SetUpTestSuite() {
    try {
      server_ = new MotoServer();
      arn_ = new std::string(server_->CreateKey("legacy envelope key"));
    } catch (const std::exception& e) {
      start_error_ = new std::string(e.what());
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    delete arn_;
    delete start_error_;
    server_ = nullptr;
    arn_ = start_error_ = nullptr;
  }
  void SetUp() override {
    LegacyBase::SetUp();
    // Not a skip: CI installs moto_server, so its absence is a failure.
    ASSERT_EQ(start_error_, nullptr) << *start_error_;
  }
  Env ServerEnv() { return server_->Env(); }

  std::string EnvModel(const Bytes& plain, const std::vector<std::string>& meta, const std::string& name = "m.env") {
    WriteFile(dir_ / (name + ".plain"), plain);
    std::vector<std::string> args = {"envmodel", "--key-id", *arn_};
    for (const auto& m : meta) args.insert(args.end(), {"--meta", m});
    args.insert(args.end(), {dir_ / (name + ".plain"), dir_ / name});
    Maker(args, ServerEnv());
    ::unlink((dir_ / (name + ".plain")).c_str());
    return dir_ / name;
  }

  static MotoServer* server_;
  static std::string* arn_;
  static std::string* start_error_;
};

MotoServer* LegacyEnv::server_ = nullptr;
std::string* LegacyEnv::arn_ = nullptr;
std::string* LegacyEnv::start_error_ = nullptr;

TEST_F(LegacyEnv, DecryptAndVerifyWithMetadataAsContextAndAad) {
  const Bytes plain = TestData(5 * 1024 * 1024 + 99, 10);
  // Non-ASCII, quotes and a newline: the AAD is json.dumps() with ensure_ascii.
  const std::string file =
      EnvModel(plain, {"model=llama \"3\" \xC3\xBC\xF0\x9F\xA6\x99", "version=3\n", "a-last=x"});
  CliResult v = RunCli({"verify", "--json", "--context", "a-last=x", file}, {}, ServerEnv());
  ASSERT_EQ(v.exit_code, 0) << v.err;
  json j = json::parse(v.out);
  EXPECT_EQ(j["legacy_format"], "ENVMODEL");
  EXPECT_EQ(j["opened_by"], "aws-kms:" + *arn_);
  EXPECT_EQ(j["context"]["version"], "3\n");
  EXPECT_EQ(j["kms_key_id"], *arn_);

  CliResult d = RunCli({"decrypt", "-q", "-o", dir_ / "out", file}, {}, ServerEnv());
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_TRUE(ReadFile(dir_ / "out") == plain);

  CliResult mismatch = RunCli({"decrypt", "--context", "a-last=y", "-o", dir_ / "out2", file}, {}, ServerEnv());
  EXPECT_EQ(mismatch.exit_code, 7) << mismatch.err;
  ExpectNoOutput(dir_ / "out2");

  // No metadata at all (the seed writes {}).
  const std::string bare = EnvModel(plain, {}, "bare.env");
  CliResult b = RunCli({"decrypt", "-q", "-o", dir_ / "out3", bare}, {}, ServerEnv());
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_TRUE(ReadFile(dir_ / "out3") == plain);
}

TEST_F(LegacyEnv, TamperedMetadataCiphertextOrHashFail) {
  const Bytes plain = TestData(200000, 11);
  const std::string good = EnvModel(plain, {"model=llama", "version=3"});
  const Bytes original = ReadFile(good);
  const std::string hash = HexEncode(Sha256(plain));
  std::string other_hash = hash;
  other_hash[0] = other_hash[0] == '0' ? '1' : '0';
  struct Case {
    std::string name;
    std::function<void(const std::string&)> damage;
    int exit_code;
  };
  const std::vector<Case> cases = {
      // KMS refuses the data key: the context no longer matches.
      {"metadata value", [](const std::string& p) { Replace(p, "\"version\": \"3\"", "\"version\": \"4\""); }, 6},
      {"ciphertext", [](const std::string& p) { FlipBit(p, -100); }, 6},
      {"tag", [](const std::string& p) { FlipBit(p, -1); }, 6},
      {"recorded hash", [&](const std::string& p) { Replace(p, hash, other_hash); }, 6},
      {"truncated", [](const std::string& p) { Bytes b = ReadFile(p); b.resize(b.size() - 5); WriteFile(p, b); }, 6},
      {"not base64",
       [](const std::string& p) {
         std::string s = AsString(ReadFile(p));
         s[s.find("\"nonce\": \"") + 10] = '!';
         WriteFile(p, AsBytes(s));
       },
       4},
  };
  for (const auto& c : cases) {
    const std::string f = dir_ / "damaged.env";
    WriteFile(f, original);
    c.damage(f);
    CliResult d = RunCli({"decrypt", "-o", dir_ / "out", f}, {}, ServerEnv());
    EXPECT_EQ(d.exit_code, c.exit_code) << c.name << ": " << d.err;
    ExpectNoOutput(dir_ / "out");
  }
  // KMS unreachable: an I/O error, not an authentication failure.
  Env env = ServerEnv();
  env["AWS_ENDPOINT_URL_KMS"] = "http://127.0.0.1:1";
  env["AWS_MAX_ATTEMPTS"] = "1";
  CliResult d = RunCli({"verify", good}, {}, env);
  EXPECT_EQ(d.exit_code, 3) << d.err;
}

TEST_F(LegacyEnv, MigratesWithMetadataAsTheNewContextAndTheSeedAgrees) {
  const Bytes plain = SmallSafetensors();
  const std::string legacy = EnvModel(plain, {"model=llama", "version=3"}, "llama.env");
  // The seed's own decrypt_model opens what we are about to migrate.
  Maker({"decrypt-envmodel", legacy, dir_ / "seed.out"}, ServerEnv());
  ASSERT_TRUE(ReadFile(dir_ / "seed.out") == plain);

  const std::string new_kek = MakeKeyFile(dir_, "new.key");
  ProviderList providers;
  providers.push_back(ProviderFromUri("file:" + new_kek).value());
  LegacyKeys keys;
  const Env env = ServerEnv();
  keys.aws_env = [env](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  auto m = MigrateLegacyFile(legacy, keys, providers, {});
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->format, LegacyFormat::kEnvModel);
  EXPECT_EQ(m->opened_by, "aws-kms:" + *arn_);
  EXPECT_EQ(m->layout, Layout::kTensors);
  EXPECT_EQ(m->header.context.at("model"), "llama");
  EXPECT_EQ(m->header.context.at("version"), "3");
  EXPECT_FALSE(Exists(legacy));
  CliResult d = RunCli({"decrypt", "-q", "--kek", "file:" + new_kek, "--context", "model=llama", "--context",
                        "version=3", "-o", dir_ / "out", legacy + ".hmod"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_TRUE(ReadFile(dir_ / "out") == plain);

  // Migration to an aws-kms KEK, as a rotation to KMS would do it.
  const std::string second = EnvModel(TestData(70000, 12), {"model=m"}, "blob.env");
  ProviderList kms;
  auto provider = MakeAwsKmsProvider(*arn_, keys.aws_env);
  ASSERT_TRUE(provider.ok()) << provider.error().message;
  kms.push_back(std::move(*provider));
  auto m2 = MigrateLegacyFile(second, keys, kms, {});
  ASSERT_TRUE(m2.ok()) << m2.error().message;
  EXPECT_EQ(m2->layout, Layout::kStream);
  CliResult d2 = RunCli({"decrypt", "-q", "--kek", "aws-kms:" + *arn_, "-o", dir_ / "out2", second + ".hmod"}, {}, env);
  ASSERT_EQ(d2.exit_code, 0) << d2.err;
  EXPECT_TRUE(ReadFile(dir_ / "out2") == TestData(70000, 12));
}

}  // namespace
}  // namespace hmod::testing
