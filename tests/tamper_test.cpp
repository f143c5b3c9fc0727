// The tamper matrix (issue: foundation): every single-byte flip, truncation at and
// between chunk boundaries, trailing bytes, swapped chunks, a header moved onto another
// file's payload and a wrong context all fail; only an authenticated prefix is ever
// released; through the CLI the output path never appears.
#include <gtest/gtest.h>

#include <algorithm>

#include "hmod/chunked_stream.h"
#include "support/library_fixture.h"

namespace hmod::testing {
namespace {

constexpr size_t kPlainBytes = 2 * 16384 + 1000;  // three chunks, the last one short
constexpr size_t kRegion = 4096;
constexpr size_t kPayload = kRegion + kStreamHeaderBytes;  // first chunk starts here

class Tamper : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    key_path_ = NewKeyFile(dir_);
    providers_ = FileProviders(key_path_);
    plaintext_ = TestData(kPlainBytes, 7);
    file_ = EncryptBytes(plaintext_, providers_, Suite::kAes256Gcm, {{"model", "llama"}});
    ASSERT_EQ(file_.size(), kPayload + kPlainBytes + 3 * kAeadTagBytes);
  }

  // Decrypting `bytes` must fail, and whatever was released must be a whole-chunk prefix
  // of the plaintext.
  void ExpectRejected(const Bytes& bytes, const std::string& what) {
    auto out = DecryptBytes(bytes, providers_);
    ASSERT_FALSE(out.result.ok()) << what << " was accepted";
    EXPECT_TRUE(out.released.size() % kChunkBytes == 0) << what << ": released a partial chunk";
    EXPECT_TRUE(std::equal(out.released.begin(), out.released.end(), plaintext_.begin()))
        << what << ": released bytes that are not the plaintext";
  }

  TempDir dir_;
  std::string key_path_;
  ProviderList providers_;
  Bytes plaintext_, file_;
};

TEST_F(Tamper, UntouchedFileOpens) {
  auto out = DecryptBytes(file_, providers_, {{"model", "llama"}});
  ASSERT_TRUE(out.result.ok());
  EXPECT_TRUE(out.released == plaintext_);
}

TEST_F(Tamper, EverySingleByteFlipFails) {
  size_t header_errors = 0, auth_errors = 0;
  for (size_t i = 0; i < file_.size(); ++i) {
    Bytes bad = file_;
    bad[i] ^= 0x01;
    auto out = DecryptBytes(bad, providers_);
    ASSERT_FALSE(out.result.ok()) << "flip at byte " << i << " was accepted";
    ASSERT_TRUE(std::equal(out.released.begin(), out.released.end(), plaintext_.begin()));
    ASSERT_EQ(out.released.size() % kChunkBytes, 0u);
    if (i >= kPayload) {
      // Payload bytes: the chunks before the flipped one may be released, no more.
      EXPECT_LE(out.released.size(), (i - kPayload) / kChunkCiphertextBytes * kChunkBytes);
      EXPECT_EQ(out.result.error().code, ErrorCode::kAuthFailed) << i;
    } else {
      EXPECT_TRUE(out.released.empty()) << "released plaintext despite a bad header, byte " << i;
    }
    (out.result.error().code == ErrorCode::kAuthFailed ? auth_errors : header_errors)++;
  }
  // Both kinds happen: parse errors (magic, padding...) and MAC/tag failures.
  EXPECT_GT(header_errors, 0u);
  EXPECT_GT(auth_errors, kPlainBytes);
}

TEST_F(Tamper, TruncationAtEveryChunkBoundaryAndMidChunkFails) {
  std::vector<size_t> cuts = {0, 1, 8, 100, kRegion - 1, kRegion, kRegion + 24, kPayload - 1, kPayload};
  for (size_t k = 1; k <= 3; ++k) {
    const size_t boundary = kPayload + k * kChunkCiphertextBytes;
    for (size_t d : {size_t{0}, size_t{1}, size_t{16}, size_t{17}}) {
      if (boundary - d < file_.size()) cuts.push_back(boundary - d);
    }
  }
  for (size_t k = 0; k < 2; ++k) cuts.push_back(kPayload + k * kChunkCiphertextBytes + 5000);
  cuts.push_back(kPayload + 2 * kChunkCiphertextBytes + 500);  // inside the short final chunk
  cuts.push_back(file_.size() - 1);
  for (size_t cut : cuts) {
    ASSERT_LT(cut, file_.size());
    ExpectRejected(Bytes(file_.begin(), file_.begin() + static_cast<long>(cut)),
                   "truncation to " + std::to_string(cut));
  }
}

TEST_F(Tamper, TrailingBytesFail) {
  for (size_t extra : {1, 15, 16, 17, 16400}) {
    Bytes bad = file_;
    bad.resize(bad.size() + extra, 0xAB);
    ExpectRejected(bad, std::to_string(extra) + " trailing bytes");
  }
  // Even a validly encrypted extra chunk: append a copy of the final chunk.
  Bytes bad = file_;
  bad.insert(bad.end(), file_.end() - 1016, file_.end());
  ExpectRejected(bad, "a duplicated final chunk");
}

TEST_F(Tamper, SwappedChunksFail) {
  Bytes bad = file_;
  auto first = bad.begin() + static_cast<long>(kPayload);
  std::swap_ranges(first, first + kChunkCiphertextBytes, first + kChunkCiphertextBytes);
  ExpectRejected(bad, "chunks 0 and 1 swapped");
  auto out = DecryptBytes(bad, providers_);
  EXPECT_TRUE(out.released.empty());
}

TEST_F(Tamper, HeaderMovedOntoAnotherFilesPayloadFails) {
  // Same key, same context, same length: only the per-file data key and file id differ.
  const Bytes other = EncryptBytes(plaintext_, providers_, Suite::kAes256Gcm, {{"model", "llama"}});
  Bytes spliced(file_.begin(), file_.begin() + kRegion);
  spliced.insert(spliced.end(), other.begin() + kRegion, other.end());
  auto out = DecryptBytes(spliced, providers_);
  ASSERT_FALSE(out.result.ok());
  EXPECT_EQ(out.result.error().code, ErrorCode::kAuthFailed);
  EXPECT_TRUE(out.released.empty());
}

TEST_F(Tamper, WrongContextFailsBeforeAnyPlaintext) {
  auto out = DecryptBytes(file_, providers_, {{"model", "mistral"}});
  ASSERT_FALSE(out.result.ok());
  EXPECT_EQ(out.result.error().code, ErrorCode::kContextMismatch);
  EXPECT_TRUE(out.released.empty());
  auto missing = DecryptBytes(file_, providers_, {{"version", std::nullopt}});
  ASSERT_FALSE(missing.result.ok());
  EXPECT_EQ(missing.result.error().code, ErrorCode::kContextMismatch);
  auto present = DecryptBytes(file_, providers_, {{"model", std::nullopt}});
  EXPECT_TRUE(present.result.ok());
}

TEST_F(Tamper, WrongKeyIsNoMatchNotTampering) {
  ProviderList other = FileProviders(NewKeyFile(dir_, "other.key"));
  auto out = DecryptBytes(file_, other);
  ASSERT_FALSE(out.result.ok());
  EXPECT_EQ(out.result.error().code, ErrorCode::kNoMatchingKey);
  EXPECT_EQ(out.result.error().message, "no key provider could open this file");
}

// The same matrix through the CLI: exit code, error text, and no output file.
class CliTamper : public Tamper {
 protected:
  void ExpectCliRejects(const Bytes& bytes, const std::string& what, int expected_exit) {
    const std::string in = dir_ / "in.hmod", out = dir_ / "out.bin";
    WriteFile(in, bytes);
    CliResult r = RunCli({"decrypt", "--kek", "file:" + key_path_, "-o", out, in});
    EXPECT_EQ(r.exit_code, expected_exit) << what << "\n" << r.err;
    EXPECT_NE(r.err.find("hmodctl: error: "), std::string::npos) << what;
    EXPECT_FALSE(Exists(out)) << what << ": output path exists after a failed run";
    EXPECT_TRUE(ReadFile(in) == bytes) << what << ": input was modified";
    // No temporary file is left behind either.
    for (const auto& name : dir_.List()) {
      EXPECT_EQ(name.find(".hmod-tmp-"), std::string::npos) << what << ": left " << name;
    }
  }
};

TEST_F(CliTamper, FailuresLeaveNoOutput) {
  // Byte offsets: 0 magic, 9 layout, 20 file id, 50 context key, 190 header MAC,
  // 4000 padding; then payload header, chunk 0, chunk 1, the final tag.
  const std::pair<size_t, int> flips[] = {
      {0, 4}, {9, 4}, {20, 6}, {50, 4}, {190, 6}, {4000, 4},
      {kPayload - 30, 6}, {kPayload + 3, 6}, {kPayload + 17000, 6}, {file_.size() - 1, 6}};
  for (auto [i, exit_code] : flips) {
    Bytes bad = file_;
    bad[i] ^= 0x80;
    ExpectCliRejects(bad, "flip at " + std::to_string(i), exit_code);
  }
  ExpectCliRejects(Bytes(file_.begin(), file_.begin() + kPayload + kChunkCiphertextBytes),
                   "truncated at a chunk boundary", 6);
  Bytes trailing = file_;
  trailing.push_back(0);
  ExpectCliRejects(trailing, "trailing byte", 6);
}

TEST_F(CliTamper, TamperedStreamToStdoutReleasesOnlyAuthenticatedChunks) {
  Bytes bad = file_;
  bad[kPayload + kChunkCiphertextBytes + 10] ^= 1;  // inside chunk 1
  const std::string in = dir_ / "in.hmod";
  WriteFile(in, bad);
  CliResult r = RunCli({"decrypt", "--kek", "file:" + key_path_, "-o", "-", in});
  EXPECT_EQ(r.exit_code, 6);
  ASSERT_EQ(r.out.size(), kChunkBytes);  // chunk 0 only
  EXPECT_TRUE(Bytes(r.out.begin(), r.out.end()) == Bytes(plaintext_.begin(), plaintext_.begin() + kChunkBytes));
  EXPECT_NE(r.err.find("authentication failed"), std::string::npos);
}

}  // namespace
}  // namespace hmod::testing
