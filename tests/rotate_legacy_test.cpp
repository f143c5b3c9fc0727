// rotate --from-legacy: ENCMODEL files (the seed's whole-file layout) become .hmod files,
// per tensor when the plaintext is a model, only after the recorded SHA-256 checks out.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/tensor_fixture.h"

namespace hmod::testing {
namespace {

using nlohmann::json;

// ENCMODEL exactly as the seed's ModelEncryptor.encrypt_file writes it:
// "ENCMODEL" ‖ BE32 len ‖ json.dumps(metadata) ‖ nonce(12) ‖ AES-256-GCM(plaintext) ‖ tag.
Bytes MakeEncModel(ByteSpan key, ByteSpan plaintext, uint64_t nonce_seed) {
  const Bytes nonce = TestData(12, nonce_seed);
  const std::string meta = "{\"version\": 1, \"algorithm\": \"AES-256-GCM\", \"plaintext_size\": " +
                           std::to_string(plaintext.size()) + ", \"plaintext_hash\": \"" +
                           HexEncode(Sha256(plaintext)) + "\", \"has_aad\": false}";
  auto aead = Aead::Create(Suite::kAes256Gcm, key);
  EXPECT_TRUE(aead.ok());
  Bytes sealed(plaintext.size() + 16);
  EXPECT_TRUE(aead->Seal(nonce, {}, plaintext, sealed).ok());
  Bytes out = {'E', 'N', 'C', 'M', 'O', 'D', 'E', 'L'};
  const uint32_t n = static_cast<uint32_t>(meta.size());
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(n >> s));
  out.insert(out.end(), meta.begin(), meta.end());
  out.insert(out.end(), nonce.begin(), nonce.end());
  out.insert(out.end(), sealed.begin(), sealed.end());
  return out;
}

class RotateLegacy : public ::testing::Test {
 protected:
  void SetUp() override {
    legacy_key_ = TestData(32, 999);
    WriteFile(dir_ / "legacy.key", legacy_key_, 0600);
    new_key_ = MakeKeyFile(dir_, "new.key");
    ::mkdir((dir_ / "store").c_str(), 0755);
  }
  TempDir dir_;
  Bytes legacy_key_;
  std::string new_key_;
};

TEST_F(RotateLegacy, ConvertsATreeAndSkipsItOnTheNextRun) {
  const Bytes model = EveryDtypeSafetensors(), blob = TestData(70000, 5);
  WriteFile(dir_ / "store/model.enc", MakeEncModel(legacy_key_, model, 1));
  WriteFile(dir_ / "store/blob.enc", MakeEncModel(legacy_key_, blob, 2));
  const std::vector<std::string> args = {"rotate", "--json", "--from-legacy", "-r", "--legacy-key", dir_ / "legacy.key",
                                         "--to-kek", "file:" + new_key_, dir_ / "store"};

  // Dry run: both authenticate, nothing is written.
  std::vector<std::string> dry = args;
  dry.insert(dry.begin() + 2, "--dry-run");
  CliResult plan = RunCli(dry);
  ASSERT_EQ(plan.exit_code, 0) << plan.out << plan.err;
  EXPECT_EQ(json::parse(plan.out)["summary"]["would_rotate"], 2);
  EXPECT_FALSE(Exists(dir_ / "store/model.enc.hmod"));

  CliResult run = RunCli(args);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  json j = json::parse(run.out);
  EXPECT_EQ(j["summary"]["rotated"], 2) << j.dump();
  EXPECT_FALSE(Exists(dir_ / "store/model.enc")) << "the legacy file was kept";
  for (const auto& [name, plain] : std::vector<std::pair<std::string, Bytes>>{{"model.enc", model}, {"blob.enc", blob}}) {
    const std::string out = dir_ / (name + ".out");
    CliResult d = RunCli({"decrypt", "-q", "--kek", "file:" + new_key_, "-o", out, dir_ / ("store/" + name + ".hmod")});
    ASSERT_EQ(d.exit_code, 0) << d.err;
    EXPECT_EQ(ReadFile(out), plain) << name;
  }
  json info = json::parse(RunCli({"inspect", "--json", dir_ / "store/model.enc.hmod"}).out);
  EXPECT_EQ(info["layout"], "tensors") << info.dump();

  CliResult again = RunCli(args);
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(json::parse(again.out)["summary"]["rotated"], 0) << again.out;
}

TEST_F(RotateLegacy, ATamperedLegacyFileIsNotReplaced) {
  Bytes enc = MakeEncModel(legacy_key_, TestData(50000, 6), 3);
  enc[enc.size() - 100] ^= 1;
  WriteFile(dir_ / "store/bad.enc", enc);
  CliResult r = RunCli({"rotate", "--from-legacy", "--legacy-key", dir_ / "legacy.key", "--to-kek",
                        "file:" + new_key_, dir_ / "store/bad.enc"});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_EQ(ReadFile(dir_ / "store/bad.enc"), enc);
  EXPECT_FALSE(Exists(dir_ / "store/bad.enc.hmod"));
  ExpectNoTempFiles(dir_, "after a failed migration");
}

}  // namespace
}  // namespace hmod::testing
