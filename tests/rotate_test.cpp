// hmodctl rotate: re-wrap keeps every payload byte, re-encrypt changes them all, bulk runs
// report per file, and the refusal to lock anyone out.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include "support/moto_server.h"
#include "support/tensor_fixture.h"

namespace hmod::testing {
namespace {

using nlohmann::json;

bool Has(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

Bytes Slice(const Bytes& b, size_t from) { return Bytes(b.begin() + static_cast<long>(std::min(from, b.size())), b.end()); }

class Rotate : public ::testing::Test {
 protected:
  void SetUp() override {
    old_key_ = MakeKeyFile(dir_, "old.key");
    new_key_ = MakeKeyFile(dir_, "new.key");
  }
  std::string Old() const { return "file:" + old_key_; }
  std::string New() const { return "file:" + new_key_; }

  std::string Encrypt(const Bytes& plain, const std::string& name, const std::vector<std::string>& extra = {}) {
    const std::string in = dir_ / (name + ".plain"), out = dir_ / (name + ".hmod");
    WriteFile(in, plain);
    std::vector<std::string> args = {"encrypt", "-q", "--kek", Old(), "-o", out, in};
    args.insert(args.end(), extra.begin(), extra.end());
    CliResult r = RunCli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return out;
  }
  // Decrypts with `kek`; returns the exit code and compares with `expected` on success.
  int DecryptWith(const std::string& kek, const std::string& file, const Bytes& expected) {
    const std::string out = file + ".out";
    CliResult r = RunCli({"decrypt", "-q", "--kek", kek, "-o", out, file});
    if (r.exit_code == 0) {
      EXPECT_EQ(ReadFile(out), expected) << file;
      std::remove(out.c_str());
    }
    return r.exit_code;
  }
  json RotateJson(const std::vector<std::string>& args, int expect_exit = 0) {
    std::vector<std::string> all = {"rotate", "--json"};
    all.insert(all.end(), args.begin(), args.end());
    CliResult r = RunCli(all);
    EXPECT_EQ(r.exit_code, expect_exit) << r.out << r.err;
    return json::parse(r.out.empty() ? "{}" : r.out);
  }

  TempDir dir_;
  std::string old_key_, new_key_;
};

TEST_F(Rotate, RewrapChangesOnlyTheHeaderPage) {
  const Bytes plain = TestData(3 * 1024 * 1024 + 17, 1);
  const std::string file = Encrypt(plain, "m", {"--context", "model=llama"});
  const Bytes before = ReadFile(file);

  json j = RotateJson({"--remove-kek", Old(), "--add-kek", New(), file});
  ASSERT_EQ(j["files"].size(), 1u);
  EXPECT_EQ(j["files"][0]["result"], "rotated");
  EXPECT_EQ(j["files"][0]["method"], "in-place header");
  EXPECT_EQ(j["files"][0]["bytes_written"], 4096);
  EXPECT_EQ(j["summary"]["rotated"], 1);

  const Bytes after = ReadFile(file);
  ASSERT_EQ(after.size(), before.size());
  EXPECT_EQ(Slice(after, 4096), Slice(before, 4096)) << "a payload byte changed";
  EXPECT_NE(Bytes(after.begin(), after.begin() + 4096), Bytes(before.begin(), before.begin() + 4096));

  EXPECT_EQ(DecryptWith(New(), file, plain), 0);
  EXPECT_EQ(DecryptWith(Old(), file, plain), 5) << "the removed KEK still opens the file";
  ExpectNoTempFiles(dir_, "after a re-wrap");
  for (const auto& name : dir_.List()) EXPECT_FALSE(Has(name, "hmod-rewrap")) << name;
}

TEST_F(Rotate, RewrapPerTensorKeepsEveryEntryAndTheIndexMode) {
  const Bytes model = EveryDtypeSafetensors();
  const std::string file = Encrypt(model, "st", {"--public-index", "--plaintext-tensors", "*I8*"});
  const Bytes before = ReadFile(file);
  json j = RotateJson({"--kek", Old(), "--to-kek", New(), file});
  EXPECT_EQ(j["files"][0]["result"], "rotated");
  EXPECT_EQ(Slice(ReadFile(file), 4096), Slice(before, 4096));
  EXPECT_EQ(DecryptWith(New(), file, model), 0);
  EXPECT_EQ(DecryptWith(Old(), file, model), 5);
  CliResult inspect = RunCli({"inspect", "--json", file});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  EXPECT_TRUE(Has(inspect.out, "\"index\":\"public\"") || Has(inspect.out, "public")) << inspect.out;
}

TEST_F(Rotate, AddingKeepsTheOldKeyAndASecondRunSkips) {
  const Bytes plain = TestData(40000, 2);
  const std::string file = Encrypt(plain, "m");
  EXPECT_EQ(RotateJson({"--kek", Old(), "--add-kek", New(), file})["files"][0]["result"], "rotated");
  EXPECT_EQ(DecryptWith(Old(), file, plain), 0);
  EXPECT_EQ(DecryptWith(New(), file, plain), 0);
  const Bytes once = ReadFile(file);
  json again = RotateJson({"--kek", Old(), "--add-kek", New(), file});
  EXPECT_EQ(again["files"][0]["result"], "skipped");
  EXPECT_EQ(again["summary"]["skipped"], 1);
  EXPECT_EQ(ReadFile(file), once);
}

TEST_F(Rotate, ASymlinkStaysALinkToTheRotatedFile) {
  const Bytes plain = TestData(20000, 12);
  const std::string file = Encrypt(plain, "m");
  const std::string link = dir_ / "link.hmod";
  ASSERT_EQ(::symlink(file.c_str(), link.c_str()), 0);
  // Re-encryption writes a new file: it must land on the target, not over the link.
  RotateJson({"--reencrypt", "--kek", Old(), "--remove-kek", Old(), "--add-kek", New(), link});
  struct stat st {};
  ASSERT_EQ(::lstat(link.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(DecryptWith(New(), file, plain), 0);
}

TEST_F(Rotate, RemovingTheLastKeyIsRefused) {
  const Bytes plain = TestData(1000, 3);
  const std::string file = Encrypt(plain, "m");
  const Bytes before = ReadFile(file);
  CliResult r = RunCli({"rotate", "--remove-kek", Old(), file});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(Has(r.err, "refusing to remove every key")) << r.err;
  EXPECT_EQ(ReadFile(file), before);
}

TEST_F(Rotate, RemoveByKeyIdAsInspectShowsIt) {
  const Bytes plain = TestData(1000, 4);
  const std::string file = Encrypt(plain, "m");
  CliResult inspect = RunCli({"inspect", "--json", file});
  const std::string key_id = json::parse(inspect.out)["wrapped_keys"][0]["key_id"];
  RotateJson({"--kek", Old(), "--add-kek", New(), "--remove-kek", key_id, file});
  EXPECT_EQ(DecryptWith(Old(), file, plain), 5);
  EXPECT_EQ(DecryptWith(New(), file, plain), 0);
}

TEST_F(Rotate, WithoutAnOpeningKeyNothingChanges) {
  const Bytes plain = TestData(1000, 5);
  const std::string file = Encrypt(plain, "m");
  const Bytes before = ReadFile(file);
  const std::string stranger = MakeKeyFile(dir_, "stranger.key");
  CliResult r = RunCli({"rotate", "--kek", "file:" + stranger, "--add-kek", New(), file});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_EQ(ReadFile(file), before);
}

TEST_F(Rotate, ReencryptChangesEveryPayloadByteAndKeepsTheContext) {
  const Bytes plain = TestData(2 * 1024 * 1024 + 5, 6);
  const std::string file = Encrypt(plain, "m", {"--context", "model=llama", "--suite", "chacha20-poly1305"});
  const Bytes before = ReadFile(file);
  json j = RotateJson({"--reencrypt", "--kek", Old(), "--remove-kek", Old(), "--add-kek", New(), file});
  EXPECT_EQ(j["files"][0]["result"], "rotated") << j.dump();
  EXPECT_EQ(j["files"][0]["method"], "re-encrypt");
  const Bytes after = ReadFile(file);
  ASSERT_EQ(after.size(), before.size());
  size_t same = 0;
  for (size_t i = 4096; i < after.size(); ++i) same += after[i] == before[i];
  // Fresh ciphertext agrees with the old at about 1 byte in 256 by chance.
  EXPECT_LT(same, (after.size() - 4096) / 100) << "payload bytes survived the re-encryption";
  EXPECT_EQ(DecryptWith(New(), file, plain), 0);
  EXPECT_EQ(DecryptWith(Old(), file, plain), 5);
  json info = json::parse(RunCli({"inspect", "--json", file}).out);
  EXPECT_EQ(info["context"]["model"], "llama");
  EXPECT_EQ(info["suite"], "chacha20-poly1305") << info.dump();
}

TEST_F(Rotate, ReencryptKeepsTheTensorLayoutAndClearTensors) {
  const Bytes model = MixedGguf(64);
  const std::string file = Encrypt(model, "g", {"--public-index", "--plaintext-tensors", "blk.0.*"});
  json before = json::parse(RunCli({"inspect", "--json", file}).out);
  json j = RotateJson({"--reencrypt", "--kek", Old(), file});
  EXPECT_EQ(j["files"][0]["result"], "rotated") << j.dump();
  json after = json::parse(RunCli({"inspect", "--json", file}).out);
  EXPECT_EQ(after["encrypted_fraction"], before["encrypted_fraction"]) << after.dump();
  EXPECT_EQ(after["layout"], before["layout"]);
  EXPECT_EQ(after["tensors"], before["tensors"]) << "public index lost or changed";
  EXPECT_NE(after["file_id"], before["file_id"]);
  EXPECT_EQ(DecryptWith(Old(), file, model), 0);
}

TEST_F(Rotate, ReencryptRefusesToCarryATamperedClearTensor) {
  const Bytes clear = TestData(8192, 77);
  const Bytes model = BuildSafetensors({{"clear", "U8", {8192}, clear}, {"secret", "F32", {1024}, TestData(4096, 78)}});
  const std::string file = Encrypt(model, "st", {"--plaintext-tensors", "clear"});
  Bytes bytes = ReadFile(file);
  auto at = std::search(bytes.begin(), bytes.end(), clear.begin(), clear.end());
  ASSERT_NE(at, bytes.end()) << "the clear tensor is not stored verbatim";
  at[100] ^= 0x01;
  WriteFile(file, bytes);
  CliResult r = RunCli({"rotate", "--reencrypt", "--kek", Old(), file});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_TRUE(Has(r.err, "clear") || Has(r.err, "digest")) << r.err;
  EXPECT_EQ(ReadFile(file), bytes) << "the file changed after a failed re-encryption";
  ExpectNoTempFiles(dir_, "after a failed re-encryption");
}

TEST_F(Rotate, ReencryptResumesFromItsStateFile) {
  const Bytes a = TestData(30000, 20), b = TestData(40000, 21);
  const std::string fa = Encrypt(a, "a"), fb = Encrypt(b, "b");
  const std::string state = dir_ / "rotation.state";
  json first = RotateJson({"--reencrypt", "--state", state, "--kek", Old(), fa});
  ASSERT_EQ(first["files"][0]["result"], "rotated");
  const Bytes fa_after = ReadFile(fa);
  // The re-run over both: a is done (its new file id is in the state file), b is not.
  json second = RotateJson({"--reencrypt", "--state", state, "--kek", Old(), fa, fb});
  std::map<std::string, std::string> result;
  for (const auto& f : second["files"]) result[f["path"]] = f["result"];
  EXPECT_EQ(result[fa], "skipped");
  EXPECT_EQ(result[fb], "rotated");
  EXPECT_EQ(ReadFile(fa), fa_after);
  EXPECT_EQ(DecryptWith(Old(), fb, b), 0);
  // Without the state file a re-encryption cannot know: it re-encrypts again.
  EXPECT_EQ(RotateJson({"--reencrypt", "--kek", Old(), fa})["files"][0]["result"], "rotated");
}

TEST_F(Rotate, ReencryptNeedsEveryKeptKek) {
  const Bytes plain = TestData(1000, 7);
  const std::string file = Encrypt(plain, "m");
  RotateJson({"--kek", Old(), "--add-kek", New(), file});
  // Re-encrypting wraps a new data key: the old KEK must be given again, or removed.
  CliResult r = RunCli({"rotate", "--reencrypt", "--kek", New(), file});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(Has(r.err, "re-encrypting needs every KEK")) << r.err;
}

TEST_F(Rotate, SignedFilesAreReSignedOrRefused) {
  CliResult kg = RunCli({"keygen", "--ed25519", "-o", dir_ / "pub.sign"});
  ASSERT_EQ(kg.exit_code, 0) << kg.err;
  const Bytes model = EveryDtypeSafetensors();
  const std::string file = Encrypt(model, "s", {"--sign-key", dir_ / "pub.sign"});
  const Bytes before = ReadFile(file);
  CliResult r = RunCli({"rotate", "--kek", Old(), "--add-kek", New(), file});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(Has(r.err, "--sign-key")) << r.err;
  EXPECT_EQ(ReadFile(file), before);

  json j = RotateJson({"--kek", Old(), "--add-kek", New(), "--sign-key", dir_ / "pub.sign", file});
  EXPECT_EQ(j["files"][0]["method"], "new file");
  CliResult v = RunCli({"verify", "--pubkey", dir_ / "pub.sign.pub", file});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_EQ(DecryptWith(New(), file, model), 0);

  // Another publisher's key cannot take over the signature.
  ASSERT_EQ(RunCli({"keygen", "--ed25519", "-o", dir_ / "other.sign"}).exit_code, 0);
  CliResult other = RunCli({"rotate", "--kek", Old(), "--remove-kek", New(), "--sign-key", dir_ / "other.sign", file});
  EXPECT_NE(other.exit_code, 0);
  EXPECT_TRUE(Has(other.err, "signed by another key")) << other.err;

  json re = RotateJson({"--reencrypt", "--kek", Old(), "--kek", New(), "--sign-key", dir_ / "pub.sign", file});
  EXPECT_EQ(re["files"][0]["result"], "rotated") << re.dump();
  EXPECT_EQ(RunCli({"verify", "--pubkey", dir_ / "pub.sign.pub", file}).exit_code, 0);
  EXPECT_EQ(DecryptWith(New(), file, model), 0);
}

TEST_F(Rotate, BulkRunOverTwoHundredFilesWithTwoJobs) {
  TempDir tree;
  std::vector<Bytes> plains;
  for (int i = 0; i < 200; ++i) {
    plains.push_back(TestData(100 + static_cast<size_t>(i) * 37, 100 + i));
    const std::string sub = tree / Numbered("d", i % 7);
    ::mkdir(sub.c_str(), 0755);
    const std::string in = sub + Numbered("/f", i, ".bin");
    WriteFile(in, plains.back());
    ASSERT_EQ(RunCli({"encrypt", "-q", "--kek", Old(), "-o", sub + Numbered("/f", i, ".hmod"), in}).exit_code, 0);
    std::remove(in.c_str());
  }
  // Dry run: the plan, and not one byte written.
  std::map<std::string, Bytes> snapshot;
  for (int i = 0; i < 200; ++i) {
    const std::string f = tree / Numbered("d", i % 7) + Numbered("/f", i, ".hmod");
    snapshot[f] = ReadFile(f);
  }
  json dry = RotateJson({"-r", "--dry-run", "--jobs", "2", "--remove-kek", Old(), "--add-kek", New(), tree.path()});
  EXPECT_EQ(dry["summary"]["would_rotate"], 200);
  for (const auto& [f, bytes] : snapshot) EXPECT_EQ(ReadFile(f), bytes) << "dry run wrote " << f;

  json run = RotateJson({"-r", "--jobs", "2", "--remove-kek", Old(), "--add-kek", New(), tree.path()});
  EXPECT_EQ(run["summary"]["rotated"], 200) << run["summary"].dump();
  for (int i = 0; i < 200; i += 13) {
    const std::string f = tree / Numbered("d", i % 7) + Numbered("/f", i, ".hmod");
    EXPECT_EQ(DecryptWith(New(), f, plains[static_cast<size_t>(i)]), 0);
    EXPECT_EQ(DecryptWith(Old(), f, plains[static_cast<size_t>(i)]), 5);
  }
  // Re-run: everything is already done.
  json again = RotateJson({"-r", "--jobs", "2", "--kek", New(), "--remove-kek", Old(), "--add-kek", New(), tree.path()});
  EXPECT_EQ(again["summary"]["skipped"], 200);
}

TEST_F(Rotate, OneBadFileDoesNotStopTheOthers) {
  const Bytes a = TestData(5000, 8), b = TestData(6000, 9);
  const std::string fa = Encrypt(a, "a"), fb = Encrypt(b, "b");
  const std::string stranger = MakeKeyFile(dir_, "stranger.key");
  // c is an .hmod file nobody here can open; d is corrupt.
  const std::string in_c = dir_ / "c.plain";
  WriteFile(in_c, a);
  ASSERT_EQ(RunCli({"encrypt", "-q", "--kek", "file:" + stranger, "-o", dir_ / "c.hmod", in_c}).exit_code, 0);
  Bytes corrupt = ReadFile(fb);
  corrupt[200] ^= 1;
  WriteFile(dir_ / "d.hmod", corrupt);

  json j = RotateJson({"--jobs", "2", "--remove-kek", Old(), "--add-kek", New(), fa, fb, dir_ / "c.hmod", dir_ / "d.hmod"},
                      5);
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["summary"]["rotated"], 2);
  EXPECT_EQ(j["summary"]["failed"], 2);
  std::map<std::string, std::string> result;
  for (const auto& f : j["files"]) result[f["path"]] = f["result"];
  EXPECT_EQ(result[dir_ / "c.hmod"], "failed");
  EXPECT_EQ(result[dir_ / "d.hmod"], "failed");
  EXPECT_EQ(DecryptWith(New(), fa, a), 0);
  EXPECT_EQ(DecryptWith(New(), fb, b), 0);
}

TEST_F(Rotate, ManifestShardsSplitTheListRoundRobin) {
  std::vector<std::string> files;
  std::ofstream manifest(dir_ / "manifest.txt");
  manifest << "# fleet rotation\n\n";
  for (int i = 0; i < 10; ++i) {
    files.push_back(Encrypt(TestData(100, 200 + i), Numbered("f", i)));
    manifest << files.back() << "\n";
  }
  manifest.close();
  json j = RotateJson({"--manifest", dir_ / "manifest.txt", "--shard", "1/3", "--kek", Old(), "--add-kek", New()});
  std::vector<std::string> done;
  for (const auto& f : j["files"]) done.push_back(f["path"]);
  EXPECT_EQ(done, (std::vector<std::string>{files[1], files[4], files[7]}));
  CliResult bad = RunCli({"rotate", "--manifest", dir_ / "manifest.txt", "--shard", "3/3", "--kek", Old(), "--add-kek", New()});
  EXPECT_EQ(bad.exit_code, 2);
}

TEST_F(Rotate, DirectoriesNeedRecursiveAndOnlyHmodFilesAreTaken) {
  const std::string f = Encrypt(TestData(100, 300), "m");
  WriteFile(dir_ / "notes.txt", TestData(50, 301));
  CliResult r = RunCli({"rotate", "--kek", Old(), "--add-kek", New(), dir_.path()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Has(r.err, "-r")) << r.err;
  json j = RotateJson({"-r", "--kek", Old(), "--add-kek", New(), dir_.path()});
  ASSERT_EQ(j["files"].size(), 1u) << j.dump();
  EXPECT_EQ(j["files"][0]["path"], f);
}

// Moving a fleet from key files to a KMS key, and from one KMS key to another, against a
// real (SigV4-verifying) moto KMS: re-wrap calls KMS Encrypt for the new key and Decrypt for
// the old one, and the payload does not change.
TEST_F(Rotate, MovesFilesIntoKmsAndBetweenKmsKeys) {
  MotoServer kms;
  const auto env = kms.Env();
  const std::string key1 = "aws-kms:" + kms.CreateKey("models-2025"), key2 = "aws-kms:" + kms.CreateKey("models-2026");
  const Bytes plain = TestData(500000, 40);
  const std::string file = Encrypt(plain, "m");
  const Bytes before = ReadFile(file);
  auto run = [&](const std::vector<std::string>& args) {
    std::vector<std::string> all = {"rotate", "--json"};
    all.insert(all.end(), args.begin(), args.end());
    CliResult r = RunCli(all, "", env);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return json::parse(r.out.empty() ? "{}" : r.out);
  };
  auto decrypt = [&](const std::string& kek) {
    CliResult r = RunCli({"decrypt", "-q", "--kek", kek, "-o", file + ".out", file}, "", env);
    if (r.exit_code == 0) {
      EXPECT_EQ(ReadFile(file + ".out"), plain);
      std::remove((file + ".out").c_str());
    }
    return r.exit_code;
  };
  EXPECT_EQ(run({"--kek", Old(), "--to-kek", key1, file})["files"][0]["result"], "rotated");
  EXPECT_EQ(decrypt(key1), 0);
  EXPECT_EQ(decrypt(Old()), 5);
  EXPECT_EQ(run({"--remove-kek", key1, "--add-kek", key2, file})["files"][0]["result"], "rotated");
  EXPECT_EQ(decrypt(key2), 0);
  EXPECT_EQ(decrypt(key1), 5);
  EXPECT_EQ(Slice(ReadFile(file), 4096), Slice(before, 4096)) << "a payload byte changed";
}

}  // namespace
}  // namespace hmod::testing
