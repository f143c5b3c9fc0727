// Cobblestone key derivation, commitment check and per-chunk nonces (FORMAT.md §4.1).
#include <cstring>
#include <string>

#include "hmod/chunked_stream.h"

namespace hmod {
namespace {

constexpr std::string_view kInfoPrefix = "c2sp.org/chunked-encryption@v1+";

const char* AeadIanaName(Suite suite) {
  return suite == Suite::kAes256Gcm ? "AEAD_AES_256_GCM" : "AEAD_CHACHA20_POLY1305";
}

}  // namespace

uint64_t ChunkedCiphertextSize(uint64_t plaintext_size) {
  const uint64_t chunks = plaintext_size / kChunkBytes + 1;  // final chunk is always short
  return kStreamHeaderBytes + plaintext_size + chunks * kAeadTagBytes;
}

Result<uint64_t> ChunkedPlaintextSize(uint64_t ciphertext_size) {
  if (ciphertext_size < kStreamHeaderBytes + kAeadTagBytes) {
    return MakeError(ErrorCode::kAuthFailed, "message truncated: too short for a final chunk");
  }
  const uint64_t body = ciphertext_size - kStreamHeaderBytes;
  const uint64_t full = body / kChunkCiphertextBytes;
  const uint64_t last = body % kChunkCiphertextBytes;
  if (last < kAeadTagBytes) {
    // A full chunk at the end (no short final chunk) or a torn tag.
    return MakeError(ErrorCode::kAuthFailed, "message truncated: no valid final chunk");
  }
  if (full + 1 > kMaxChunks) return MakeError(ErrorCode::kLimit, "message has too many chunks");
  return full * kChunkBytes + (last - kAeadTagBytes);
}

Result<ChunkKeys> ChunkKeys::Derive(Suite suite, const SecretBytes& input_key, ByteSpan context,
                                    ByteSpan salt) {
  if (input_key.size() != kAeadKeyBytes) {
    return MakeError(ErrorCode::kCrypto, "chunked encryption needs a 32-byte input key");
  }
  // info = prefix ‖ AEAD name ‖ 0x00 ‖ salt ‖ context
  Bytes info(kInfoPrefix.begin(), kInfoPrefix.end());
  const std::string_view name = AeadIanaName(suite);
  info.insert(info.end(), name.begin(), name.end());
  info.push_back(0);
  info.insert(info.end(), salt.begin(), salt.end());
  info.insert(info.end(), context.begin(), context.end());
  HMOD_ASSIGN_OR_RETURN(
      SecretBytes okm,
      HkdfExpand(HashAlg::kSha512, input_key.secret(), info,
                 kAeadKeyBytes + kAeadNonceBytes + kCommitmentBytes));
  ChunkKeys keys;
  keys.suite_ = suite;
  auto bytes = okm.secret();
  keys.aead_key_ = SecretBytes::CopyFrom(bytes.first(kAeadKeyBytes));
  std::memcpy(keys.base_nonce_.data(), bytes.data() + kAeadKeyBytes, kAeadNonceBytes);
  std::memcpy(keys.header_.data(), salt.data(), kSaltBytes);
  std::memcpy(keys.header_.data() + kSaltBytes, bytes.data() + kAeadKeyBytes + kAeadNonceBytes,
              kCommitmentBytes);
  return keys;
}

Result<ChunkKeys> ChunkKeys::ForEncryption(Suite suite, const SecretBytes& input_key,
                                           ByteSpan context) {
  std::array<uint8_t, kSaltBytes> salt{};
  RandomFill(salt);
  return Derive(suite, input_key, context, salt);
}

Result<ChunkKeys> ChunkKeys::ForEncryptionWithSalt(Suite suite, const SecretBytes& input_key,
                                                   ByteSpan context, ByteSpan salt) {
  if (salt.size() != kSaltBytes) return MakeError(ErrorCode::kCrypto, "salt must be 24 bytes");
  return Derive(suite, input_key, context, salt);
}

Result<ChunkKeys> ChunkKeys::ForDecryption(Suite suite, const SecretBytes& input_key,
                                           ByteSpan context, ByteSpan stream_header) {
  if (stream_header.size() != kStreamHeaderBytes) {
    return MakeError(ErrorCode::kAuthFailed, "message truncated: incomplete header");
  }
  HMOD_ASSIGN_OR_RETURN(ChunkKeys keys,
                        Derive(suite, input_key, context, stream_header.first(kSaltBytes)));
  // FORMAT.md §4.1: the commitment is checked, in constant time, before any chunk.
  if (!ConstantTimeEquals(ByteSpan(keys.header_).subspan(kSaltBytes),
                          stream_header.subspan(kSaltBytes))) {
    return MakeError(ErrorCode::kAuthFailed,
                     "key commitment mismatch: wrong key or context, or a tampered payload header");
  }
  return keys;
}

Result<ChunkCipher> ChunkCipher::Create(const ChunkKeys& keys) {
  HMOD_ASSIGN_OR_RETURN(Aead aead, Aead::Create(keys.suite(), keys.aead_key().secret()));
  return ChunkCipher(std::move(aead), keys.base_nonce());
}

std::array<uint8_t, kAeadNonceBytes> ChunkCipher::Nonce(uint64_t index) const {
  // nonce = base_nonce XOR BE96(index); the index is below 2^38, so 8 bytes suffice.
  auto nonce = base_nonce_;
  for (int i = 0; i < 8; ++i) nonce[kAeadNonceBytes - 1 - i] ^= static_cast<uint8_t>(index >> (8 * i));
  return nonce;
}

Status ChunkCipher::Seal(uint64_t index, ByteSpan plaintext, MutableByteSpan out) {
  if (index >= kMaxChunks) return MakeError(ErrorCode::kLimit, "too many chunks in one message");
  const auto nonce = Nonce(index);
  return aead_.Seal(nonce, {}, plaintext, out);
}

Status ChunkCipher::Open(uint64_t index, ByteSpan ciphertext, MutableByteSpan out) {
  if (index >= kMaxChunks) return MakeError(ErrorCode::kLimit, "too many chunks in one message");
  const auto nonce = Nonce(index);
  return aead_.Open(nonce, {}, ciphertext, out);
}

}  // namespace hmod
