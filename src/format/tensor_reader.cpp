// Reads the per-tensor layout (FORMAT.md §6.3, §6.4): the index, single tensors by
// random access, and the whole source restored in order.
#include <algorithm>
#include <cstring>

#include "hmod/tensor_container.h"

namespace hmod {
namespace {

uint64_t RoundUp(uint64_t v) { return (v + kEntryAlign - 1) / kEntryAlign * kEntryAlign; }

// A ByteSource over [offset, offset + length) of a positional source.
class RangeSource final : public ByteSource {
 public:
  RangeSource(const PositionalSource& src, uint64_t offset, uint64_t length)
      : src_(src), pos_(offset), end_(offset + length) {}
  Result<size_t> Read(MutableByteSpan buf) override {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), end_ - pos_));
    if (n == 0) return size_t{0};
    HMOD_TRY(src_.ReadAt(pos_, buf.first(n)));
    pos_ += n;
    return n;
  }

 private:
  const PositionalSource& src_;
  uint64_t pos_, end_;
};

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
  f->verified_.assign(f->index_.entries.size(), false);
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
  // Plain entries are authenticated by their digest: hashed whole once, then read directly.
  HMOD_TRY(VerifyPlain(entry));
  return out.empty() ? OkStatus() : source_.ReadAt(e.offset + offset, out);
}

Status TensorFile::VerifyPlain(size_t entry) const {
  {
    std::lock_guard lock(mu_);
    if (verified_[entry]) return OkStatus();
  }
  const IndexEntry& e = index_.entries[entry];
  Sha256Stream hash;
  Bytes buf(std::min<uint64_t>(e.size, 1 << 20));
  for (uint64_t done = 0; done < e.size;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), e.size - done));
    HMOD_TRY(source_.ReadAt(e.offset + done, MutableByteSpan(buf.data(), n)));
    hash.Update(ByteSpan(buf.data(), n));
    done += n;
  }
  if (!ConstantTimeEquals(hash.Finish(), e.sha256)) {
    return Tampered(e.kind == EntryKind::kSkeleton ? std::string("plaintext skeleton digest mismatch")
                                                   : "plaintext tensor '" + e.name + "' digest mismatch");
  }
  std::lock_guard lock(mu_);
  verified_[entry] = true;
  return OkStatus();
}

Status TensorFile::CheckZero(uint64_t from, uint64_t to) const {
  Bytes pad(to - from);
  HMOD_TRY(source_.ReadAt(from, pad));
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

  uint64_t written = 0;
  Bytes buf;
  for (const auto& p : pieces) {
    const IndexEntry& e = index_.entries[p.entry];
    if (e.kind == EntryKind::kTensor && e.encrypted) {
      // Whole tensors stream through the parallel pipeline.
      RangeSource in(source_, e.offset, e.stored_length);
      std::array<uint8_t, kStreamHeaderBytes> hdr{};
      HMOD_ASSIGN_OR_RETURN(size_t got, in.Read(hdr));
      if (got != hdr.size()) return Tampered("tensor '" + e.name + "' truncated");
      const Bytes ctx = EntryContext(opened_.core_digest, static_cast<uint32_t>(p.entry), e.name);
      HMOD_ASSIGN_OR_RETURN(ChunkKeys keys, ChunkKeys::ForDecryption(header().suite, opened_.payload_key, ctx, hdr));
      HMOD_ASSIGN_OR_RETURN(uint64_t n, DecryptChunkedStream(keys, in, out, stream));
      if (n != e.size) return Tampered("tensor '" + e.name + "' has the wrong length");
    } else if (!e.encrypted) {
      // Plain entry: its digest is checked (once, whole) before any of it is written.
      HMOD_TRY(VerifyPlain(p.entry));
      RangeSource in(source_, e.offset + p.entry_offset, p.length);
      buf.resize(std::min<uint64_t>(p.length, 1 << 20));
      for (;;) {
        HMOD_ASSIGN_OR_RETURN(size_t n, in.Read(buf));
        if (n == 0) break;
        HMOD_TRY(out.Write(ByteSpan(buf.data(), n)));
      }
    } else {
      // Encrypted skeleton pieces: random access into the skeleton entry.
      buf.resize(std::min<uint64_t>(p.length, 1 << 20));
      for (uint64_t done = 0; done < p.length;) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), p.length - done));
        HMOD_TRY(ReadEntry(p.entry, p.entry_offset + done, MutableByteSpan(buf.data(), n)));
        HMOD_TRY(out.Write(ByteSpan(buf.data(), n)));
        done += n;
      }
    }
    written += p.length;
    if (stream.progress) stream.progress(p.source_offset + p.length);
  }
  return written;
}

}  // namespace hmod
