// The source model of a per-tensor .hmod, read back through its index: the positional
// source a re-encryption feeds to the per-tensor writer, so no plaintext touches the disk.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "hmod/crypto.h"
#include "hmod/io.h"
#include "hmod/tensor_container.h"

namespace hmod::rotate {

class RestoredModelSource final : public PositionalSource {
 public:
  // `file` and `raw` (the .hmod's bytes) must outlive this source.
  static Result<std::unique_ptr<RestoredModelSource>> Create(const TensorFile& file,
                                                            const PositionalSource& raw);
  uint64_t size() const override { return size_; }
  Status ReadAt(uint64_t offset, MutableByteSpan buf) const override;

  // Starts the copy: from here on, plain tensor reads are hashed (the model parser's reads
  // before it are not: they only locate the tensors).
  void StartCopy();

  // Plain tensors are served straight from the file and hashed as they are read, so the
  // bytes a re-encryption carries over are exactly the bytes checked against the
  // authenticated index. Call once the writer is done: kAuthFailed if a plain tensor does not
  // match its digest, kCrypto if one was not read whole and in order.
  Status CheckPlainDigests() const;

 private:
  struct Piece {              // one segment of one entry, in source order
    uint64_t source_offset = 0, length = 0;
    size_t entry = 0;
    uint64_t entry_offset = 0;
  };
  struct PlainHash {          // running digest of a plain tensor entry
    std::unique_ptr<Sha256Stream> hash = std::make_unique<Sha256Stream>();
    uint64_t next = 0;        // entry offset the next sequential read must start at
    bool out_of_order = false;
  };
  RestoredModelSource(const TensorFile& file, const PositionalSource& raw) : file_(file), raw_(raw) {}
  Status ReadPiece(const Piece& p, uint64_t delta, MutableByteSpan out) const;

  const TensorFile& file_;
  const PositionalSource& raw_;
  uint64_t size_ = 0;
  std::vector<Piece> pieces_;
  Bytes plain_skeleton_;      // a public index keeps the skeleton in clear: checked once, kept
  mutable std::mutex mu_;
  mutable std::vector<PlainHash> plain_;  // by entry number
  bool copying_ = false;
};

}  // namespace hmod::rotate
