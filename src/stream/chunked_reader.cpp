// Random access into one chunked message through positional reads (FORMAT.md §4.3).
#include <algorithm>
#include <array>
#include <cstring>

#include "hmod/chunked_stream.h"
#include "stream/aligned_buffer.h"

namespace hmod {

Result<ChunkedReader> ChunkedReader::Open(Suite suite, const SecretBytes& input_key,
                                          ByteSpan context, const PositionalSource& source,
                                          uint64_t offset, uint64_t length) {
  if (offset > source.size() || length > source.size() - offset) {
    return MakeError(ErrorCode::kFormat, "message extends past the end of the file");
  }
  if (length < kStreamHeaderBytes) {
    return MakeError(ErrorCode::kAuthFailed, "message truncated: incomplete header");
  }
  std::array<uint8_t, kStreamHeaderBytes> header{};
  HMOD_TRY(source.ReadAt(offset, header));
  HMOD_ASSIGN_OR_RETURN(ChunkKeys keys,
                        ChunkKeys::ForDecryption(suite, input_key, context, header));
  HMOD_ASSIGN_OR_RETURN(uint64_t plaintext_size, ChunkedPlaintextSize(length));

  ChunkedReader reader;
  reader.keys_ = std::make_shared<const ChunkKeys>(std::move(keys));
  reader.source_ = &source;
  reader.offset_ = offset;
  reader.length_ = length;
  reader.plaintext_size_ = plaintext_size;
  reader.chunk_count_ = plaintext_size / kChunkBytes + 1;
  // Authenticate the final chunk first: that authenticates the message length, so a
  // truncated or extended message fails here and not on some later read.
  Bytes last(plaintext_size % kChunkBytes);
  HMOD_TRY(reader.ReadChunk(reader.chunk_count_ - 1, last));
  return reader;
}

Result<size_t> ChunkedReader::ReadChunk(uint64_t index, MutableByteSpan out) const {
  if (index >= chunk_count_) return MakeError(ErrorCode::kUsage, "chunk index out of range");
  const bool final = index == chunk_count_ - 1;
  const size_t plain = final ? plaintext_size_ % kChunkBytes : kChunkBytes;
  if (out.size() < plain) return MakeError(ErrorCode::kUsage, "output buffer too small");
  Bytes ct(plain + kAeadTagBytes);
  HMOD_TRY(source_->ReadAt(offset_ + kStreamHeaderBytes + index * kChunkCiphertextBytes, ct));
  HMOD_ASSIGN_OR_RETURN(ChunkCipher cipher, ChunkCipher::Create(*keys_));
  Status st = cipher.Open(index, ct, out.first(plain));
  if (!st.ok()) {
    return MakeError(ErrorCode::kAuthFailed,
                     "authentication failed at chunk " + std::to_string(index));
  }
  return plain;
}

Status ChunkedReader::ReadAt(uint64_t offset, MutableByteSpan out) const {
  // Every failure wipes `out`: an I/O error half-way must not leave the plaintext of the
  // chunks before it behind any more than an authentication failure does.
  Status st = ReadAtInto(offset, out);
  if (!st.ok()) std::fill(out.begin(), out.end(), 0);
  return st;
}

Status ChunkedReader::ReadAtInto(uint64_t offset, MutableByteSpan out) const {
  if (offset > plaintext_size_ || out.size() > plaintext_size_ - offset) {
    return MakeError(ErrorCode::kUsage, "read past the end of the message");
  }
  if (out.empty()) return OkStatus();
  const uint64_t first = offset / kChunkBytes;
  const uint64_t last = (offset + out.size() - 1) / kChunkBytes;
  HMOD_ASSIGN_OR_RETURN(ChunkCipher cipher, ChunkCipher::Create(*keys_));
  // Read up to kGroup chunks of ciphertext per pread, decrypt chunk by chunk: a chunk wholly
  // inside the range straight into `out`, a partial one (first or last) through `plain`.
  constexpr uint64_t kGroup = 64;
  const uint64_t group_bytes = std::min<uint64_t>(kGroup, last - first + 1) * kChunkCiphertextBytes;
  detail::AlignedBytes ct = detail::NewAlignedBytes(static_cast<size_t>(group_bytes));
  std::array<uint8_t, kChunkBytes> plain;
  struct Wipe {
    std::array<uint8_t, kChunkBytes>& p;
    ~Wipe() { std::fill(p.begin(), p.end(), 0); }
  } wipe{plain};
  size_t written = 0;
  for (uint64_t g = first; g <= last; g += kGroup) {
    const uint64_t g_end = std::min(last + 1, g + kGroup);
    const uint64_t ct_begin = kStreamHeaderBytes + g * kChunkCiphertextBytes;
    const uint64_t ct_end = std::min(length_, kStreamHeaderBytes + g_end * kChunkCiphertextBytes);
    const size_t ct_size = static_cast<size_t>(ct_end - ct_begin);
    HMOD_TRY(source_->ReadAt(offset_ + ct_begin, MutableByteSpan(ct.get(), ct_size)));
    for (uint64_t i = g; i < g_end; ++i) {
      const size_t pos = (i - g) * kChunkCiphertextBytes;
      const size_t len = std::min<size_t>(kChunkCiphertextBytes, ct_size - pos);
      const size_t n = len - kAeadTagBytes;
      const uint64_t chunk_start = i * kChunkBytes;
      const uint64_t from = std::max(offset, chunk_start) - chunk_start;
      const uint64_t to = std::min<uint64_t>(offset + out.size(), chunk_start + n) - chunk_start;
      const bool whole = from == 0 && to == n;
      uint8_t* dst = whole ? out.data() + written : plain.data();
      Status st = cipher.Open(i, ByteSpan(ct.get() + pos, len), MutableByteSpan(dst, n));
      if (!st.ok()) {
        return MakeError(ErrorCode::kAuthFailed, "authentication failed at chunk " + std::to_string(i));
      }
      if (!whole) std::memcpy(out.data() + written, plain.data() + from, to - from);
      written += to - from;
    }
  }
  return OkStatus();
}

}  // namespace hmod
