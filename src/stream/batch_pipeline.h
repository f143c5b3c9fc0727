// Internal: the parallel batch engine behind every streaming encrypt/decrypt.
//
// A producer (on the calling thread) fills batches in order: raw bytes to copy through,
// or up to kBatchChunks chunks of one message to seal or open. Worker threads seal/open
// batches in parallel, each with the keys of its own message (so one run can span many
// messages: a whole per-tensor file); a single writer thread writes the results in order.
// Memory is a small fixed ring of batch buffers whatever the input size.
//
// Release rule (FORMAT.md §4.5): a batch is written only after every chunk in it is
// authenticated, or up to the chunk before the first failure; after any failure nothing
// more is written. A producer error ends the run after the batches filled before it have
// been written.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>

#include "hmod/chunked_stream.h"

namespace hmod::detail {

inline constexpr size_t kBatchChunks = 32;
inline constexpr size_t kBatchPlainBytes = kBatchChunks * kChunkBytes;             // 512 KiB
inline constexpr size_t kBatchCipherBytes = kBatchChunks * kChunkCiphertextBytes;  // + tags
// A batch that ends its message may carry one chunk more: a message of whole batches ends
// with an empty final chunk, which would otherwise cost a batch of its own (once per tensor
// in a per-tensor file).
inline constexpr size_t kBatchMaxChunks = kBatchChunks + 1;
inline constexpr size_t kBatchBufferBytes = kBatchMaxChunks * kChunkCiphertextBytes;

enum class BatchKind : uint8_t {
  kCopy,  // write in[0, in_bytes) as it is
  kSeal,  // in: plaintext chunks (the last may be short or empty); out: ciphertext
  kOpen,  // in: ciphertext chunks (the last may be short); out: plaintext
  // in: ciphertext chunks under `keys`; out: the same chunks of plaintext sealed under
  // `reseal_keys` (same sizes and offsets: a re-encryption in one pass over the bytes).
  kReseal,
};

struct Batch {
  BatchKind kind = BatchKind::kCopy;
  std::shared_ptr<const ChunkKeys> keys;         // kSeal, kOpen, kReseal
  std::shared_ptr<const ChunkKeys> reseal_keys;  // kReseal
  uint64_t first_chunk = 0;
  size_t chunks = 0;
  uint8_t* in = nullptr;  // kBatchBufferBytes of page-aligned storage owned by the engine
  size_t in_bytes = 0;
  Bytes prefix;           // written before the batch's own bytes (entry headers, padding)
  // kOpen: write only plaintext bytes [out_skip, out_skip + out_limit) of the batch.
  size_t out_skip = 0;
  size_t out_limit = std::numeric_limits<size_t>::max();
  bool report_progress = false;
  uint64_t progress = 0;  // passed to the progress callback once the batch is written
};

// Number of chunks in a seal batch of `in_bytes` plaintext: full chunks, then the final
// (short, maybe empty) chunk if the batch ends the message.
inline size_t SealChunks(size_t in_bytes, bool ends_message) {
  return in_bytes / kChunkBytes + (ends_message ? 1 : 0);
}

class BatchProducer {
 public:
  virtual ~BatchProducer() = default;
  // Fills `b` (whose `in` points at the batch buffer; every other field must be set, the
  // engine resets them to their defaults first). Returns false when there is no more.
  virtual Result<bool> Next(Batch& b) = 0;
};

// Runs `producer` to the end through `options.threads` workers (0 = one per core) and a
// writer thread into `out`. Returns the first error in output order.
Status RunBatches(BatchProducer& producer, ByteSink& out, const StreamOptions& options);

// Wraps a reference that outlives the run as a (non-owning) shared pointer.
inline std::shared_ptr<const ChunkKeys> Borrow(const ChunkKeys& keys) {
  return std::shared_ptr<const ChunkKeys>(std::shared_ptr<const ChunkKeys>(), &keys);
}

}  // namespace hmod::detail
