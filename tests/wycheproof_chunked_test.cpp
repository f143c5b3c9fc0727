// Wycheproof C2SP chunked-encryption (Cobblestone-256, AES-256-GCM) vectors through both
// decryptors: the streaming one (ChunkKeys::ForDecryption + DecryptChunkedStream) and the
// random-access ChunkedReader. Valid vectors are also re-encrypted with their own salt.
//
// The rules for invalid vectors come from the notes in the vector file:
// - HeaderFailure: rejected while processing the header, before any chunk.
// - PartialPlaintext: a streaming decryptor may release the valid prefix that msgLength and
//   msgSha512 describe, but nothing beyond it, and must still fail.
// - ValidFinalChunk: authenticating only the final chunk (what ChunkedReader::Open does)
//   may succeed; for every other invalid vector it must fail.
#include <zlib.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "hmod/chunked_stream.h"
#include "hmod/io.h"
#include "support/wycheproof.h"

namespace hmod::testing {
namespace {

using wycheproof::Describe;
using wycheproof::Hex;
using wycheproof::IsValid;
using wycheproof::Json;
using wycheproof::OptionalHex;
using wycheproof::OptionalInteger;
using wycheproof::String;
using wycheproof::ToHex;
using wycheproof::VectorFile;

constexpr size_t kVectorCount = 35;
constexpr size_t kValidCount = 10;

// The file stores each ciphertext zlib-compressed (the long ones compress well).
Bytes Inflate(ByteSpan compressed) {
  z_stream zs{};
  if (inflateInit(&zs) != Z_OK) throw std::runtime_error("inflateInit failed");
  zs.next_in = const_cast<Bytef*>(compressed.data());
  zs.avail_in = static_cast<uInt>(compressed.size());
  Bytes out(4 * compressed.size() + 64);
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (zs.total_out == out.size()) out.resize(2 * out.size());
    zs.next_out = out.data() + zs.total_out;
    zs.avail_out = static_cast<uInt>(out.size() - zs.total_out);
    rc = inflate(&zs, Z_NO_FLUSH);
  }
  const bool complete = rc == Z_STREAM_END && zs.avail_in == 0;
  out.resize(zs.total_out);
  inflateEnd(&zs);
  if (!complete) throw std::runtime_error("ciphertext is not one complete zlib stream");
  return out;
}

struct ChunkedVector {
  std::string description;
  bool valid = false;
  bool header_failure = false, partial_plaintext = false, valid_final_chunk = false,
       invalid_key_size = false;
  SecretBytes key;
  Bytes context, ciphertext;  // ciphertext already inflated
  std::optional<Bytes> aead_key, base_nonce;
  // Set for valid and PartialPlaintext vectors: the (longest valid) plaintext.
  uint64_t msg_length = 0;
  Bytes msg_sha512;
};

std::vector<ChunkedVector> LoadVectors() {
  const auto file = VectorFile::Load("c2sp_chunked_encryption_aes_256_gcm_test.json");
  std::vector<ChunkedVector> vectors;
  for (const Json& group : file.groups()) {
    // Everything below assumes Cobblestone-256 over AES-256-GCM.
    if (String(group, "type") != "ChunkedEncryption" ||
        String(group, "aead") != "AEAD_AES_256_GCM" || String(group, "sha") != "SHA-512") {
      throw std::runtime_error("unexpected test group " + group.dump());
    }
    for (const Json& test : group.at("tests")) {
      ChunkedVector v;
      v.description = Describe(test);
      v.valid = IsValid(test);
      v.header_failure = file.HasFlag(test, "HeaderFailure");
      v.partial_plaintext = file.HasFlag(test, "PartialPlaintext");
      v.valid_final_chunk = file.HasFlag(test, "ValidFinalChunk");
      v.invalid_key_size = file.HasFlag(test, "InvalidKeySize");
      v.key = SecretBytes::CopyFrom(Hex(test, "key"));
      v.context = Hex(test, "ctx");
      v.ciphertext = Inflate(Hex(test, "ct"));
      v.aead_key = OptionalHex(test, "aeadKey");
      v.base_nonce = OptionalHex(test, "baseNonce");
      if (v.valid || v.partial_plaintext) {
        const auto length = OptionalInteger(test, "msgLength");
        const auto sha512 = OptionalHex(test, "msgSha512");
        if (!length || *length < 0 || !sha512 || sha512->size() != 64) {
          throw std::runtime_error(v.description + ": needs msgLength and a 64-byte msgSha512");
        }
        v.msg_length = static_cast<uint64_t>(*length);
        v.msg_sha512 = *sha512;
      }
      vectors.push_back(std::move(v));
    }
  }
  return vectors;
}

void ExpectPlaintext(const ChunkedVector& v, const Bytes& plaintext) {
  EXPECT_EQ(plaintext.size(), v.msg_length);
  EXPECT_EQ(ToHex(Sha512(plaintext)), ToHex(v.msg_sha512));
}

// Wrong-size keys are refused before any derivation, with whatever code; every other
// rejection is an authentication failure.
void ExpectRejectionCode(const ChunkedVector& v, const Error& error) {
  if (v.invalid_key_size) {
    EXPECT_NE(v.key.size(), kAeadKeyBytes);
  } else {
    EXPECT_EQ(error.code, ErrorCode::kAuthFailed) << error.message;
  }
}

void CheckStreaming(const ChunkedVector& v, unsigned threads) {
  const ByteSpan ct = v.ciphertext;
  const ByteSpan header = ct.first(std::min(ct.size(), kStreamHeaderBytes));
  auto keys = ChunkKeys::ForDecryption(Suite::kAes256Gcm, v.key, v.context, header);
  if (v.header_failure) {
    ASSERT_FALSE(keys.ok()) << "header accepted";
    ExpectRejectionCode(v, keys.error());
    return;
  }
  // Every other vector has a complete header whose commitment matches.
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  if (v.aead_key) {
    EXPECT_EQ(ToHex(keys->aead_key().secret()), ToHex(*v.aead_key));
  }
  if (v.base_nonce) {
    EXPECT_EQ(ToHex(keys->base_nonce()), ToHex(*v.base_nonce));
  }

  MemorySource body(ct.subspan(kStreamHeaderBytes));
  MemorySink released;
  StreamOptions options;
  options.threads = threads;
  auto result = DecryptChunkedStream(*keys, body, released, options);
  if (v.valid) {
    ASSERT_TRUE(result.ok()) << result.error().message;
    EXPECT_EQ(*result, v.msg_length);
    ExpectPlaintext(v, released.bytes);
    return;
  }
  ASSERT_FALSE(result.ok()) << "invalid message decrypted";
  EXPECT_EQ(result.error().code, ErrorCode::kAuthFailed) << result.error().message;
  if (!v.partial_plaintext) {
    // No chunk of these is valid at its position: not one byte may be released.
    EXPECT_TRUE(released.bytes.empty()) << released.bytes.size() << " bytes released";
    return;
  }
  // Whole authenticated chunks of the valid prefix may be released, nothing beyond it.
  EXPECT_LE(released.bytes.size(), v.msg_length);
  EXPECT_EQ(released.bytes.size() % kChunkBytes, 0u);
  if (released.bytes.size() == v.msg_length) {
    EXPECT_EQ(ToHex(Sha512(released.bytes)), ToHex(v.msg_sha512));
  }
}

// Decrypts every chunk with ReadChunk and concatenates them.
Bytes ReadAllChunks(const ChunkedReader& reader) {
  Bytes all, chunk(kChunkBytes);
  for (uint64_t i = 0; i < reader.chunk_count(); ++i) {
    auto n = reader.ReadChunk(i, chunk);
    EXPECT_TRUE(n.ok()) << "chunk " << i << ": " << n.error().message;
    if (!n.ok()) return {};
    all.insert(all.end(), chunk.begin(), chunk.begin() + static_cast<ptrdiff_t>(*n));
  }
  return all;
}

void CheckRandomAccess(const ChunkedVector& v) {
  MemorySource source(v.ciphertext);
  auto reader = ChunkedReader::Open(Suite::kAes256Gcm, v.key, v.context, source, 0,
                                    v.ciphertext.size());
  if (v.valid) {
    ASSERT_TRUE(reader.ok()) << reader.error().message;
    ASSERT_EQ(reader->plaintext_size(), v.msg_length);
    EXPECT_EQ(reader->chunk_count(), v.msg_length / kChunkBytes + 1);
    Bytes whole(v.msg_length);
    const Status read = reader->ReadAt(0, whole);
    ASSERT_TRUE(read.ok()) << read.error().message;
    ExpectPlaintext(v, whole);
    EXPECT_TRUE(ReadAllChunks(*reader) == whole) << "ReadChunk and ReadAt disagree";
    // An unaligned read that crosses every chunk boundary returns the matching slice.
    if (whole.size() >= 2) {
      Bytes middle(whole.size() - 2);
      const Status st = reader->ReadAt(1, middle);
      ASSERT_TRUE(st.ok()) << st.error().message;
      EXPECT_TRUE(std::equal(middle.begin(), middle.end(), whole.begin() + 1));
    }
    return;
  }
  if (!v.valid_final_chunk) {
    // Open authenticates the final chunk (and so the length): that must already fail.
    ASSERT_FALSE(reader.ok()) << "Open accepted an invalid message";
    ExpectRejectionCode(v, reader.error());
    return;
  }
  // Only the final chunk is sound: Open may pass, but reading everything must fail, and
  // keep failing.
  if (!reader.ok()) {
    EXPECT_EQ(reader.error().code, ErrorCode::kAuthFailed) << reader.error().message;
    return;
  }
  Bytes whole(reader->plaintext_size());
  for (int attempt = 0; attempt < 2; ++attempt) {
    const Status read = reader->ReadAt(0, whole);
    ASSERT_FALSE(read.ok()) << "ReadAt decrypted an invalid message (attempt " << attempt << ")";
    EXPECT_EQ(read.error().code, ErrorCode::kAuthFailed) << read.error().message;
  }
  size_t failed_chunks = 0;
  Bytes chunk(kChunkBytes);
  for (uint64_t i = 0; i < reader->chunk_count(); ++i) {
    if (!reader->ReadChunk(i, chunk).ok()) ++failed_chunks;
  }
  EXPECT_GT(failed_chunks, 0u) << "every chunk of an invalid message decrypted";
}

// Encryption is deterministic once the salt is fixed, so sealing the plaintext of a valid
// vector again under its own salt must reproduce its ciphertext byte for byte.
void CheckReencryption(const ChunkedVector& v) {
  MemorySource source(v.ciphertext);
  auto reader = ChunkedReader::Open(Suite::kAes256Gcm, v.key, v.context, source, 0,
                                    v.ciphertext.size());
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  Bytes plaintext(reader->plaintext_size());
  ASSERT_TRUE(reader->ReadAt(0, plaintext).ok());
  ExpectPlaintext(v, plaintext);

  const ByteSpan salt = ByteSpan(v.ciphertext).first(kSaltBytes);
  auto keys = ChunkKeys::ForEncryptionWithSalt(Suite::kAes256Gcm, v.key, v.context, salt);
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  MemorySource in(plaintext);
  MemorySink out;
  const Status st = EncryptChunkedStream(*keys, in, out);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(out.bytes.size(), v.ciphertext.size());
  EXPECT_TRUE(out.bytes == v.ciphertext) << "re-encryption differs from the vector";
}

class WycheproofChunked : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(InitCrypto().ok()); }

  // Loaded once (after InitCrypto, which SecretBytes needs); a malformed file throws.
  static const std::vector<ChunkedVector>& Vectors() {
    static const std::vector<ChunkedVector> vectors = LoadVectors();
    return vectors;
  }
};

TEST_F(WycheproofChunked, StreamingDecryption) {
  // One worker decrypts inline; four exercise the parallel pipeline on the long vectors.
  for (unsigned threads : {1u, 4u}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    size_t ran = 0, valid = 0;
    for (const ChunkedVector& v : Vectors()) {
      SCOPED_TRACE(v.description);
      CheckStreaming(v, threads);
      ++ran;
      valid += v.valid;
    }
    EXPECT_EQ(ran, kVectorCount);
    EXPECT_EQ(valid, kValidCount);
  }
}

TEST_F(WycheproofChunked, RandomAccessReader) {
  size_t ran = 0, valid = 0;
  for (const ChunkedVector& v : Vectors()) {
    SCOPED_TRACE(v.description);
    CheckRandomAccess(v);
    ++ran;
    valid += v.valid;
  }
  EXPECT_EQ(ran, kVectorCount);
  EXPECT_EQ(valid, kValidCount);
}

TEST_F(WycheproofChunked, ReencryptionReproducesValidCiphertexts) {
  size_t ran = 0;
  for (const ChunkedVector& v : Vectors()) {
    if (!v.valid) continue;
    SCOPED_TRACE(v.description);
    CheckReencryption(v);
    ++ran;
  }
  EXPECT_EQ(ran, kValidCount);
}

}  // namespace
}  // namespace hmod::testing
