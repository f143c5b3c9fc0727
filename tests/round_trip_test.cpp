// Encrypt -> decrypt round trips through the library at the lengths where chunking
// changes, in both suites and with 1..4 worker threads; random access reads.
#include <gtest/gtest.h>

#include <algorithm>

#include "hmod/chunked_stream.h"
#include "support/library_fixture.h"

namespace hmod::testing {
namespace {

struct Case {
  size_t size;
  Suite suite;
  unsigned threads;
};

class RoundTrip : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override { ASSERT_TRUE(InitCrypto().ok()); }
};

TEST_P(RoundTrip, DecryptsToTheSameBytes) {
  const Case c = GetParam();
  TempDir dir;
  ProviderList providers = FileProviders(NewKeyFile(dir));
  const Bytes plaintext = TestData(c.size, c.size + 1);
  const Bytes file = EncryptBytes(plaintext, providers, c.suite, {{"model", "m"}}, c.threads);
  // Header region, then 56-byte payload header, then one tag per chunk.
  ASSERT_EQ(file.size(), 4096 + ChunkedCiphertextSize(c.size));
  auto out = DecryptBytes(file, providers, {{"model", "m"}}, c.threads);
  ASSERT_TRUE(out.result.ok()) << out.result.error().message;
  EXPECT_EQ(out.result->plaintext_bytes, c.size);
  EXPECT_EQ(out.result->header.suite, c.suite);
  EXPECT_TRUE(out.released == plaintext);
}

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  return std::string(info.param.suite == Suite::kAes256Gcm ? "Aes" : "ChaCha") + "_" +
         std::to_string(info.param.size) + "_t" + std::to_string(info.param.threads);
}

std::vector<Case> Cases() {
  std::vector<Case> cases;
  for (Suite s : {Suite::kAes256Gcm, Suite::kChaCha20Poly1305}) {
    for (size_t n : {0, 1, 16383, 16384, 16385, 32768, 3 * 1024 * 1024 + 123}) {
      cases.push_back({n, s, 0});
    }
    // Batch boundaries (32 chunks per batch) with several workers.
    for (unsigned t : {1u, 2u, 4u}) {
      cases.push_back({32 * 16384, s, t});
      cases.push_back({32 * 16384 + 1, s, t});
      cases.push_back({97 * 16384 + 5, s, t});
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Lengths, RoundTrip, ::testing::ValuesIn(Cases()),
                         CaseName);

// Re-encryption in one pass (ReencryptStreamContainer, what `rotate --reencrypt` runs on a
// stream-layout file): the new file opens only with the new key set, holds the same
// plaintext, suite and context, and shares no payload bytes with the old one.
class Reencrypt : public RoundTrip {};

TEST_P(Reencrypt, NewKeysSamePlaintext) {
  const Case c = GetParam();
  TempDir dir;
  ProviderList old_keys = FileProviders(NewKeyFile(dir, "old.key"));
  ProviderList new_keys = FileProviders(NewKeyFile(dir, "new.key"));
  const Bytes plaintext = TestData(c.size, c.size + 7);
  const Bytes file = EncryptBytes(plaintext, old_keys, c.suite, {{"model", "m"}}, c.threads);
  MemorySource in(file);
  MemorySink out;
  StreamOptions stream;
  stream.threads = c.threads;
  auto r = ReencryptStreamContainer(in, out, old_keys, new_keys, stream);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->plaintext_bytes, c.size);
  ASSERT_EQ(out.bytes.size(), file.size());
  // Payload: 56-byte message header then chunks; count the 16-byte blocks left as they were.
  size_t same = 0, blocks = 0;
  for (size_t at = 4096; at + 16 <= file.size(); at += 16, ++blocks) {
    same += std::equal(file.begin() + at, file.begin() + at + 16, out.bytes.begin() + at);
  }
  EXPECT_EQ(same, 0u) << "of " << blocks << " payload blocks";
  auto back = DecryptBytes(out.bytes, new_keys, {{"model", "m"}});
  ASSERT_TRUE(back.result.ok()) << back.result.error().message;
  EXPECT_EQ(back.result->header.suite, c.suite);
  EXPECT_TRUE(back.released == plaintext);
  EXPECT_EQ(DecryptBytes(out.bytes, old_keys).result.error().code, ErrorCode::kNoMatchingKey);
}

std::vector<Case> ReencryptCases() {
  std::vector<Case> cases;
  for (Suite s : {Suite::kAes256Gcm, Suite::kChaCha20Poly1305}) {
    for (size_t n : {0, 1, 16384, 32 * 16384, 33 * 16384 + 9}) cases.push_back({n, s, 2});
  }
  cases.push_back({97 * 16384 + 5, Suite::kAes256Gcm, 1});
  cases.push_back({97 * 16384 + 5, Suite::kAes256Gcm, 4});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Lengths, Reencrypt, ::testing::ValuesIn(ReencryptCases()),
                         CaseName);

// A flipped byte in chunk 40 of 100: the re-encryption fails as an authentication failure
// and nothing from chunk 40 on reaches the output.
TEST(ReencryptTamper, StopsBeforeTheBadChunk) {
  ASSERT_TRUE(InitCrypto().ok());
  TempDir dir;
  ProviderList keys = FileProviders(NewKeyFile(dir));
  Bytes file = EncryptBytes(TestData(100 * 16384, 3), keys, Suite::kAes256Gcm);
  const size_t payload = 4096 + kStreamHeaderBytes;
  file[payload + 40 * kChunkCiphertextBytes + 100] ^= 0x01;
  MemorySource in(file);
  MemorySink out;
  auto r = ReencryptStreamContainer(in, out, keys, keys, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kAuthFailed) << r.error().message;
  EXPECT_LE(out.bytes.size(), payload + 40 * kChunkCiphertextBytes);
}

TEST(RandomAccess, ReadsAnyRangeOfAMessage) {
  ASSERT_TRUE(InitCrypto().ok());
  const Bytes plaintext = TestData(5 * 16384 + 777, 42);
  SecretBytes key = SecretBytes::Random(32);
  const Bytes ctx = {1, 2, 3};
  auto keys = ChunkKeys::ForEncryption(Suite::kAes256Gcm, key, ctx);
  ASSERT_TRUE(keys.ok());
  MemorySource in(plaintext);
  MemorySink out;
  ASSERT_TRUE(EncryptChunkedStream(*keys, in, out).ok());

  MemorySource source(out.bytes);
  auto reader = ChunkedReader::Open(Suite::kAes256Gcm, key, ctx, source, 0, out.bytes.size());
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  EXPECT_EQ(reader->plaintext_size(), plaintext.size());
  EXPECT_EQ(reader->chunk_count(), 6u);
  const std::pair<size_t, size_t> ranges[] = {
      {0, 1}, {0, plaintext.size()}, {16383, 2}, {16384, 16384}, {5 * 16384, 777}, {100, 40000}};
  for (auto [off, len] : ranges) {
    Bytes buf(len);
    ASSERT_TRUE(reader->ReadAt(off, buf).ok()) << off << "+" << len;
    EXPECT_TRUE(std::equal(buf.begin(), buf.end(), plaintext.begin() + static_cast<long>(off)));
  }
  Bytes past(2);
  EXPECT_FALSE(reader->ReadAt(plaintext.size() - 1, past).ok());
}

TEST(RandomAccess, WrongContextFailsAtOpen) {
  ASSERT_TRUE(InitCrypto().ok());
  SecretBytes key = SecretBytes::Random(32);
  auto keys = ChunkKeys::ForEncryption(Suite::kChaCha20Poly1305, key, Bytes{1});
  ASSERT_TRUE(keys.ok());
  const Bytes plaintext = TestData(1000, 1);
  MemorySource in(plaintext);
  MemorySink out;
  ASSERT_TRUE(EncryptChunkedStream(*keys, in, out).ok());
  MemorySource source(out.bytes);
  auto reader = ChunkedReader::Open(Suite::kChaCha20Poly1305, key, Bytes{2}, source, 0, out.bytes.size());
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.error().code, ErrorCode::kAuthFailed);
}


// A positional source that fails every read at or past `fail_from` once armed.
class FailingSource final : public PositionalSource {
 public:
  explicit FailingSource(ByteSpan data) : inner_(data) {}
  uint64_t size() const override { return inner_.size(); }
  Status ReadAt(uint64_t offset, MutableByteSpan buf) const override {
    if (armed_ && offset + buf.size() > fail_from_) return MakeError(ErrorCode::kIo, "injected read error");
    return inner_.ReadAt(offset, buf);
  }
  void Arm(uint64_t fail_from) {
    armed_ = true;
    fail_from_ = fail_from;
  }

 private:
  MemorySource inner_;
  bool armed_ = false;
  uint64_t fail_from_ = 0;
};

// ReadAt decrypts group by group; an I/O error after the first groups must not leave
// their plaintext behind: `out` is wiped on every failure, not only on a bad tag.
TEST(RandomAccess, IoErrorPartWayWipesTheOutput) {
  ASSERT_TRUE(InitCrypto().ok());
  Bytes plaintext = TestData(200 * 16384 + 5, 7);
  for (auto& b : plaintext) b |= 1;  // no zero byte, so a wipe is visible
  SecretBytes key = SecretBytes::Random(32);
  const Bytes ctx = {9};
  auto keys = ChunkKeys::ForEncryption(Suite::kAes256Gcm, key, ctx);
  ASSERT_TRUE(keys.ok());
  MemorySource in(plaintext);
  MemorySink out;
  ASSERT_TRUE(EncryptChunkedStream(*keys, in, out).ok());

  FailingSource source(out.bytes);
  auto reader = ChunkedReader::Open(Suite::kAes256Gcm, key, ctx, source, 0, out.bytes.size());
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  // Chunks 0..99 read fine, the group that holds chunk 150 fails.
  source.Arm(kStreamHeaderBytes + 150 * kChunkCiphertextBytes);
  Bytes buf(plaintext.size(), 0xEE);
  Status st = reader->ReadAt(0, buf);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kIo);
  EXPECT_TRUE(std::all_of(buf.begin(), buf.end(), [](uint8_t b) { return b == 0; }))
      << "plaintext of the chunks before the I/O error was left in the output";
}

}  // namespace
}  // namespace hmod::testing
