// Reads the per-tensor layout (FORMAT.md §6.3, §6.4): the index, single tensors by
// random access, and the whole source restored in order.
#include <algorithm>
#include <cstring>
#include <map>

#include "hmod/tensor_container.h"
#include "stream/batch_pipeline.h"

namespace hmod {
namespace {

Error Tampered(const std::string& what) {
  return MakeError(ErrorCode::kAuthFailed, what + ": the file was tampered with or corrupted");
}

}  // namespace

Result<std::unique_ptr<TensorFile>> TensorFile::Open(const PositionalSource& source, ParsedHeader parsed,
                                                     ProviderList& providers,
                                                     const std::vector<ContextRequirement>& required) {
  std::unique_ptr<TensorFile> f(new TensorFile(source));
  HMOD_ASSIGN_OR_RETURN(f->opened_, OpenHeader(std::move(parsed), providers));
  HMOD_TRY(CheckContext(f->header().context, required));
  HMOD_ASSIGN_OR_RETURN(f->layout_, TensorLayoutOf(f->header()));
  const uint64_t trailer = f->layout_.is_signed ? kSignatureTrailerBytes : 0;
  // The file ends exactly after the index (and the signature trailer, if any).
  if (f->layout_.index_offset < f->header().region_bytes ||
      source.size() != f->layout_.index_offset + f->layout_.index_length + trailer) {
    return Tampered("file length does not match its header (truncated or extended)");
  }
  if (f->layout_.is_signed) HMOD_TRY(CheckSignatureTrailer(source, f->opened_.parsed));
  HMOD_ASSIGN_OR_RETURN(Bytes plain_index, f->ReadIndex());
  HMOD_ASSIGN_OR_RETURN(f->index_, ParseIndex(plain_index, f->layout_, f->header().region_bytes));
  f->readers_.resize(f->index_.entries.size());
  return f;
}

Result<Bytes> TensorFile::ReadIndex() const {
  const Suite suite = header().suite;
  if (layout_.index_mode == IndexMode::kEncrypted) {
    const Bytes ctx = EntryContext(opened_.core_digest, kIndexEntryNumber, kIndexEntryName);
    HMOD_ASSIGN_OR_RETURN(ChunkedReader reader, ChunkedReader::Open(suite, opened_.payload_key, ctx, source_,
                                                                    layout_.index_offset, layout_.index_length));
    Bytes plain(reader.plaintext_size());
    HMOD_TRY(reader.ReadAt(0, plain));
    return plain;
  }
  if (layout_.index_length < 32) return Tampered("public index too short");
  Bytes stored(layout_.index_length);
  HMOD_TRY(source_.ReadAt(layout_.index_offset, stored));
  HMOD_ASSIGN_OR_RETURN(FileKeys keys, DeriveFileKeys(opened_.data_key, header().file_id));
  Bytes mac_input(opened_.core_digest.begin(), opened_.core_digest.end());
  mac_input.insert(mac_input.end(), stored.begin(), stored.end() - 32);
  const auto mac = HmacSha256(keys.index_mac_key.secret(), mac_input);
  if (!ConstantTimeEquals(mac, ByteSpan(stored).last(32))) return Tampered("tensor index MAC mismatch");
  stored.resize(stored.size() - 32);
  return stored;
}

Result<size_t> TensorFile::Find(std::string_view name) const {
  for (size_t i = 1; i < index_.entries.size(); ++i) {
    if (index_.entries[i].name == name) return i;
  }
  return MakeError(ErrorCode::kUsage, "no tensor named '" + std::string(name) + "'",
                   "list them with: hmodctl inspect --tensors --kek ... FILE");
}

Result<const ChunkedReader*> TensorFile::ReaderFor(size_t entry) const {
  std::lock_guard lock(mu_);
  if (!readers_[entry]) {
    const IndexEntry& e = index_.entries[entry];
    const Bytes ctx = EntryContext(opened_.core_digest, static_cast<uint32_t>(entry), e.name);
    HMOD_ASSIGN_OR_RETURN(ChunkedReader r, ChunkedReader::Open(header().suite, opened_.payload_key, ctx, source_,
                                                               e.offset, e.stored_length));
    readers_[entry] = std::make_unique<ChunkedReader>(std::move(r));
  }
  return readers_[entry].get();
}

Status TensorFile::ReadEntry(size_t entry, uint64_t offset, MutableByteSpan out) const {
  if (entry >= index_.entries.size()) return MakeError(ErrorCode::kUsage, "no such entry");
  const IndexEntry& e = index_.entries[entry];
  if (offset > e.size || out.size() > e.size - offset) {
    return MakeError(ErrorCode::kUsage, "read past the end of tensor '" + e.name + "'");
  }
  if (e.encrypted) {
    HMOD_ASSIGN_OR_RETURN(const ChunkedReader* reader, ReaderFor(entry));
    return reader->ReadAt(offset, out);
  }
  Status st = ReadPlain(entry, offset, out);
  if (!st.ok()) std::fill(out.begin(), out.end(), 0);
  return st;
}

Status TensorFile::ReadPlain(size_t entry, uint64_t offset, MutableByteSpan out) const {
  // A plain entry is authenticated by the digest of all of it, so every read hashes the
  // whole entry, and the bytes returned are the very bytes hashed: nothing is remembered
  // from an earlier check (the file may change on disk in between).
  const IndexEntry& e = index_.entries[entry];
  Sha256Stream hash;
  Bytes buf;
  auto hash_range = [&](uint64_t from, uint64_t to) -> Status {
    if (from < to) buf.resize(static_cast<size_t>(std::min<uint64_t>(to - from, 1 << 20)));
    while (from < to) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), to - from));
      HMOD_TRY(source_.ReadAt(e.offset + from, MutableByteSpan(buf.data(), n)));
      hash.Update(ByteSpan(buf.data(), n));
      from += n;
    }
    return OkStatus();
  };
  HMOD_TRY(hash_range(0, offset));
  if (!out.empty()) {
    HMOD_TRY(source_.ReadAt(e.offset + offset, out));
    hash.Update(out);
  }
  HMOD_TRY(hash_range(offset + out.size(), e.size));
  if (!ConstantTimeEquals(hash.Finish(), e.sha256)) return PlainMismatch(e);
  return OkStatus();
}

Status TensorFile::VerifyPlain(size_t entry) const { return ReadPlain(entry, 0, MutableByteSpan()); }

Error TensorFile::PlainMismatch(const IndexEntry& e) {
  return Tampered(e.kind == EntryKind::kSkeleton ? std::string("plaintext skeleton digest mismatch")
                                                 : "plaintext tensor '" + e.name + "' digest mismatch");
}

Status TensorFile::CheckZero(uint64_t from, uint64_t to) const {
  Bytes pad(to - from);
  HMOD_TRY(source_.ReadAtUncached(from, pad));
  if (!std::all_of(pad.begin(), pad.end(), [](uint8_t b) { return b == 0; })) {
    return Tampered("non-zero padding between entries");
  }
  return OkStatus();
}

Result<uint64_t> TensorFile::Restore(ByteSink& out, const StreamOptions& stream) const {
  // Which entry holds each source range: walk all segments in source order.
  struct Piece {
    uint64_t source_offset, length;
    size_t entry;
    uint64_t entry_offset;  // offset of this piece within the entry's bytes
  };
  std::vector<Piece> pieces;
  for (size_t i = 0; i < index_.entries.size(); ++i) {
    uint64_t at = 0;
    for (const auto& s : index_.entries[i].segments) {
      pieces.push_back({s.source_offset, s.length, i, at});
      at += s.length;
    }
  }
  std::sort(pieces.begin(), pieces.end(),
            [](const Piece& a, const Piece& b) {
              // FORMAT.md §6.4: source order; an empty tensor before the one at its offset.
              return a.source_offset != b.source_offset ? a.source_offset < b.source_offset : a.entry < b.entry;
            });
  // Padding between entries and before the index must be zero (§6.1).
  uint64_t end = header().region_bytes;
  for (const auto& e : index_.entries) {
    HMOD_TRY(CheckZero(end, e.offset));
    end = e.offset + e.stored_length;
  }
  HMOD_TRY(CheckZero(end, layout_.index_offset));

  // All pieces go through one pipeline: batches of chunks of every entry, each with its own
  // entry's keys, opened by one pool of workers and written in order by one writer. (A
  // pipeline per tensor paid its start-up, fill and drain once per tensor.)
  using detail::Batch;
  using detail::BatchKind;
  class Producer final : public detail::BatchProducer {
   public:
    Producer(const TensorFile& f, const std::vector<Piece>& pieces) : f_(f), pieces_(pieces) {}

    Result<bool> Next(Batch& b) override {
      while (at_ < pieces_.size()) {
        const Piece& p = pieces_[at_];
        const IndexEntry& e = f_.index_.entries[p.entry];
        HMOD_ASSIGN_OR_RETURN(bool got, e.kind == EntryKind::kTensor && e.encrypted ? Tensor(p, e, b)
                                        : !e.encrypted                             ? Plain(p, e, b)
                                                                                   : Skeleton(p, e, b));
        if (got) {
          b.report_progress = true;
          b.progress = p.source_offset + pos_;
          written_ += b.kind == BatchKind::kCopy ? b.in_bytes : 0;
          return true;
        }
        ++at_;
        started_ = false;
        pos_ = 0;
      }
      return false;
    }

    uint64_t plain_copied() const { return written_; }

   private:
    // An encrypted tensor streams as one message: commitment, then its chunks in order,
    // the short final chunk last.
    Result<bool> Tensor(const Piece& p, const IndexEntry& e, Batch& b) {
      if (!started_) {
        std::array<uint8_t, kStreamHeaderBytes> hdr{};
        if (e.stored_length < hdr.size()) return Tampered("tensor '" + e.name + "' truncated");
        HMOD_TRY(f_.source_.ReadAt(e.offset, hdr));
        const Bytes ctx = EntryContext(f_.opened_.core_digest, static_cast<uint32_t>(p.entry), e.name);
        HMOD_ASSIGN_OR_RETURN(ChunkKeys keys,
                              ChunkKeys::ForDecryption(f_.header().suite, f_.opened_.payload_key, ctx, hdr));
        HMOD_ASSIGN_OR_RETURN(uint64_t plain, ChunkedPlaintextSize(e.stored_length));
        if (plain != e.size) return Tampered("tensor '" + e.name + "' has the wrong length");
        keys_ = std::make_shared<const ChunkKeys>(std::move(keys));
        chunk_ = 0;
        chunks_ = e.size / kChunkBytes + 1;
        started_ = true;
      }
      if (chunk_ == chunks_) return false;
      const uint64_t left = chunks_ - chunk_;
      const uint64_t n = left == detail::kBatchMaxChunks ? left : std::min<uint64_t>(detail::kBatchChunks, left);
      const uint64_t from = kStreamHeaderBytes + chunk_ * kChunkCiphertextBytes;
      const uint64_t to = std::min(e.stored_length, from + n * kChunkCiphertextBytes);
      HMOD_TRY(f_.source_.ReadAt(e.offset + from, MutableByteSpan(b.in, static_cast<size_t>(to - from))));
      b.kind = BatchKind::kOpen;
      b.keys = keys_;
      b.first_chunk = chunk_;
      b.chunks = static_cast<size_t>(n);
      b.in_bytes = static_cast<size_t>(to - from);
      chunk_ += n;
      pos_ = std::min(e.size, chunk_ * kChunkBytes);
      plaintext_ += b.in_bytes - n * kAeadTagBytes;
      return true;
    }

    // A plain entry is hashed whole, and its digest checked, before any of it is written
    // (for the skeleton: before its first piece); then its bytes are hashed again as they
    // are copied, and a change in between fails the file before the last batch is written.
    Result<bool> Plain(const Piece& p, const IndexEntry& e, Batch& b) {
      if (!started_) {
        if (p.entry_offset == 0) {
          HMOD_TRY(f_.VerifyPlain(p.entry));
          rehash_[p.entry] = std::make_unique<Sha256Stream>();
        }
        started_ = true;
      }
      if (pos_ == p.length) return false;
      auto it = rehash_.find(p.entry);
      if (it == rehash_.end()) return MakeError(ErrorCode::kFormat, "plain entry pieces out of order");
      const size_t n = static_cast<size_t>(std::min<uint64_t>(detail::kBatchBufferBytes, p.length - pos_));
      HMOD_TRY(f_.source_.ReadAt(e.offset + p.entry_offset + pos_, MutableByteSpan(b.in, n)));
      it->second->Update(ByteSpan(b.in, n));
      pos_ += n;
      if (p.entry_offset + pos_ == e.size) {
        const bool same = ConstantTimeEquals(it->second->Finish(), e.sha256);
        rehash_.erase(it);
        if (!same) return PlainMismatch(e);
      }
      b.kind = BatchKind::kCopy;
      b.in_bytes = n;
      return true;
    }

    // Encrypted skeleton pieces: random access into the skeleton message, whose final chunk
    // is authenticated (ChunkedReader::Open) before its first piece is written.
    Result<bool> Skeleton(const Piece& p, const IndexEntry& e, Batch& b) {
      if (!started_) {
        HMOD_ASSIGN_OR_RETURN(reader_, f_.ReaderFor(p.entry));
        started_ = true;
      }
      if (pos_ == p.length) return false;
      const uint64_t start = p.entry_offset + pos_, stop = p.entry_offset + p.length;
      const uint64_t first = start / kChunkBytes;
      const uint64_t n = std::min<uint64_t>(detail::kBatchChunks, (stop - 1) / kChunkBytes - first + 1);
      const uint64_t from = kStreamHeaderBytes + first * kChunkCiphertextBytes;
      const uint64_t to = std::min(e.stored_length, from + n * kChunkCiphertextBytes);
      HMOD_TRY(f_.source_.ReadAt(e.offset + from, MutableByteSpan(b.in, static_cast<size_t>(to - from))));
      b.kind = BatchKind::kOpen;
      b.keys = reader_->keys();
      b.first_chunk = first;
      b.chunks = static_cast<size_t>(n);
      b.in_bytes = static_cast<size_t>(to - from);
      b.out_skip = static_cast<size_t>(start - first * kChunkBytes);
      b.out_limit = static_cast<size_t>(std::min(stop, (first + n) * kChunkBytes) - start);
      pos_ += b.out_limit;
      plaintext_ += b.out_limit;
      return true;
    }

    const TensorFile& f_;
    const std::vector<Piece>& pieces_;
    size_t at_ = 0;
    bool started_ = false;
    uint64_t pos_ = 0;  // bytes of the current piece produced
    std::shared_ptr<const ChunkKeys> keys_;
    uint64_t chunk_ = 0, chunks_ = 0;
    const ChunkedReader* reader_ = nullptr;
    std::map<size_t, std::unique_ptr<Sha256Stream>> rehash_;
    uint64_t written_ = 0, plaintext_ = 0;
  };

  Producer producer(*this, pieces);
  HMOD_TRY(detail::RunBatches(producer, out, stream));
  uint64_t written = 0;
  for (const auto& p : pieces) written += p.length;
  return written;
}

}  // namespace hmod
