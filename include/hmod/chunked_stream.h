// C2SP chunked-encryption ("Cobblestone-256", c2sp.org/chunked-encryption), FORMAT.md §4.
//
// A message is salt(24) ‖ commitment(32) ‖ chunks. Each chunk holds 16 KiB of plaintext
// sealed with nonce = base_nonce XOR BE96(index); the final chunk is always shorter than
// 16 KiB (possibly empty), so every length has exactly one chunking and truncation at a
// chunk boundary is detected. key ‖ base_nonce ‖ commitment come from one
// HKDF-Expand-SHA-512 over the input key with info = "c2sp.org/chunked-encryption@v1+" ‖
// AEAD name ‖ 0x00 ‖ salt ‖ context.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "hmod/crypto.h"
#include "hmod/io.h"
#include "hmod/result.h"

namespace hmod {

inline constexpr size_t kChunkBytes = 16384;
inline constexpr size_t kChunkCiphertextBytes = kChunkBytes + kAeadTagBytes;
inline constexpr size_t kSaltBytes = 24;
inline constexpr size_t kCommitmentBytes = 32;
inline constexpr size_t kStreamHeaderBytes = kSaltBytes + kCommitmentBytes;
inline constexpr uint64_t kMaxChunks = uint64_t{1} << 38;

// Ciphertext size of a message carrying `plaintext_size` bytes.
uint64_t ChunkedCiphertextSize(uint64_t plaintext_size);
// Plaintext size of a message of `ciphertext_size` bytes, or kFormat/kAuthFailed if no
// valid message has that length (truncated header, missing short final chunk, ...).
Result<uint64_t> ChunkedPlaintextSize(uint64_t ciphertext_size);

// The keys of one message. Create per-thread ChunkCiphers from it.
class ChunkKeys {
 public:
  // New message: draws a random salt. `input_key` must be 32 uniformly random bytes.
  static Result<ChunkKeys> ForEncryption(Suite suite, const SecretBytes& input_key,
                                         ByteSpan context);
  // Existing message: derives from the stored salt and checks the stored commitment in
  // constant time before anything else (kAuthFailed on mismatch: wrong key or context).
  static Result<ChunkKeys> ForDecryption(Suite suite, const SecretBytes& input_key,
                                         ByteSpan context, ByteSpan stream_header);
  // Fixed salt: only for reproducible test vectors (tools/gen-vectors).
  static Result<ChunkKeys> ForEncryptionWithSalt(Suite suite, const SecretBytes& input_key,
                                                 ByteSpan context, ByteSpan salt);

  Suite suite() const { return suite_; }
  // salt ‖ commitment: the 56 bytes that start the message.
  const std::array<uint8_t, kStreamHeaderBytes>& stream_header() const { return header_; }
  const SecretBytes& aead_key() const { return aead_key_; }
  const std::array<uint8_t, kAeadNonceBytes>& base_nonce() const { return base_nonce_; }

 private:
  static Result<ChunkKeys> Derive(Suite suite, const SecretBytes& input_key, ByteSpan context,
                                  ByteSpan salt);
  Suite suite_ = Suite::kAes256Gcm;
  SecretBytes aead_key_;
  std::array<uint8_t, kAeadNonceBytes> base_nonce_{};
  std::array<uint8_t, kStreamHeaderBytes> header_{};
};

// Seals and opens single chunks by index. One per thread.
class ChunkCipher {
 public:
  static Result<ChunkCipher> Create(const ChunkKeys& keys);
  // `plaintext` is at most kChunkBytes; `out` is plaintext.size() + 16 bytes.
  Status Seal(uint64_t index, ByteSpan plaintext, MutableByteSpan out);
  // On failure `out` is wiped and kAuthFailed returned.
  Status Open(uint64_t index, ByteSpan ciphertext, MutableByteSpan out);

 private:
  ChunkCipher(Aead aead, std::array<uint8_t, kAeadNonceBytes> base)
      : aead_(std::move(aead)), base_nonce_(base) {}
  std::array<uint8_t, kAeadNonceBytes> Nonce(uint64_t index) const;
  Aead aead_;
  std::array<uint8_t, kAeadNonceBytes> base_nonce_;
};

// Progress callback: total bytes of input consumed so far.
using ProgressFn = std::function<void(uint64_t)>;

struct StreamOptions {
  unsigned threads = 0;   // crypto workers; 0 = one per core
  ProgressFn progress;    // optional
};

// Encrypts everything `in` yields as the chunks of one message (the 56-byte header is
// written first). Memory stays constant whatever the input size; chunks are sealed in
// parallel and written in order.
Status EncryptChunkedStream(const ChunkKeys& keys, ByteSource& in, ByteSink& out,
                            const StreamOptions& options = {});

// Decrypts the chunks that follow a message header (already consumed and checked by
// ChunkKeys::ForDecryption). Only whole authenticated chunks reach `out`, in order; on the
// first failure nothing more is written and the error is returned (kAuthFailed for a bad
// tag, truncation, trailing data or a missing final chunk). Returns the plaintext size.
Result<uint64_t> DecryptChunkedStream(const ChunkKeys& keys, ByteSource& in, ByteSink& out,
                                      const StreamOptions& options = {});

// Re-encrypts the chunks that follow a message header (checked by ForDecryption of
// `old_keys`) as a new message under `new_keys`, whose header is written first: each chunk
// is opened and sealed again in one pass, in place, in parallel. The same release rule as
// decryption: nothing is written past the first chunk that fails. Returns the plaintext size.
Result<uint64_t> ResealChunkedStream(const ChunkKeys& old_keys, const ChunkKeys& new_keys, ByteSource& in,
                                     ByteSink& out, const StreamOptions& options = {});

// Random access to one message stored at [offset, offset + length) of a positional source.
// Open() checks the commitment and authenticates the final chunk (and so the length);
// reads then decrypt only the chunks they touch. Thread-safe for concurrent reads.
class ChunkedReader {
 public:
  static Result<ChunkedReader> Open(Suite suite, const SecretBytes& input_key, ByteSpan context,
                                    const PositionalSource& source, uint64_t offset,
                                    uint64_t length);
  uint64_t plaintext_size() const { return plaintext_size_; }
  uint64_t chunk_count() const { return chunk_count_; }
  // Decrypts chunk `index` into `out` (its plaintext size), returns that size.
  Result<size_t> ReadChunk(uint64_t index, MutableByteSpan out) const;
  // Decrypts plaintext bytes [offset, offset + out.size()) into `out`. On any failure
  // (authentication, I/O, range) `out` is wiped and the error returned.
  Status ReadAt(uint64_t offset, MutableByteSpan out) const;
  // The message's keys (to decrypt its chunks elsewhere, e.g. in a batch pipeline).
  const std::shared_ptr<const ChunkKeys>& keys() const { return keys_; }

 private:
  ChunkedReader() = default;
  Status ReadAtInto(uint64_t offset, MutableByteSpan out) const;
  std::shared_ptr<const ChunkKeys> keys_;
  const PositionalSource* source_ = nullptr;
  uint64_t offset_ = 0, length_ = 0, plaintext_size_ = 0, chunk_count_ = 0;
};

}  // namespace hmod
