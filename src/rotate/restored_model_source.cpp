#include "rotate/restored_model_source.h"

#include <algorithm>
#include <cstring>

namespace hmod::rotate {

Result<std::unique_ptr<RestoredModelSource>> RestoredModelSource::Create(const TensorFile& file,
                                                                       const PositionalSource& raw) {
  std::unique_ptr<RestoredModelSource> s(new RestoredModelSource(file, raw));
  const auto& entries = file.index().entries;
  s->size_ = file.layout().source_size;
  s->plain_.resize(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    uint64_t entry_offset = 0;
    for (const auto& seg : entries[i].segments) {
      if (seg.length != 0) s->pieces_.push_back({seg.source_offset, seg.length, i, entry_offset});
      entry_offset += seg.length;
    }
  }
  std::sort(s->pieces_.begin(), s->pieces_.end(),
            [](const Piece& a, const Piece& b) { return a.source_offset < b.source_offset; });
  // The skeleton is read in small overlapping pieces by the model parser: check it whole.
  const IndexEntry& skeleton = entries.at(0);
  if (!skeleton.encrypted) {
    s->plain_skeleton_.resize(skeleton.size);
    HMOD_TRY(file.ReadEntry(0, 0, s->plain_skeleton_));  // hashes before it returns
    if (!ConstantTimeEquals(Sha256(s->plain_skeleton_), skeleton.sha256)) {
      return MakeError(ErrorCode::kAuthFailed, "plaintext skeleton digest mismatch");
    }
  }
  return s;
}

Status RestoredModelSource::ReadPiece(const Piece& p, uint64_t delta, MutableByteSpan out) const {
  const IndexEntry& e = file_.index().entries[p.entry];
  const uint64_t at = p.entry_offset + delta;
  if (e.encrypted) return file_.ReadEntry(p.entry, at, out);
  if (p.entry == 0) {
    std::memcpy(out.data(), plain_skeleton_.data() + at, out.size());
    return OkStatus();
  }
  HMOD_TRY(raw_.ReadAt(e.offset + at, out));
  std::lock_guard lock(mu_);
  if (!copying_) return OkStatus();
  PlainHash& h = plain_[p.entry];
  if (at != h.next) {
    h.out_of_order = true;
  } else {
    h.hash->Update(out);
    h.next += out.size();
  }
  return OkStatus();
}

Status RestoredModelSource::ReadAt(uint64_t offset, MutableByteSpan buf) const {
  if (offset > size_ || buf.size() > size_ - offset) {
    return MakeError(ErrorCode::kFormat, "read past the end of the restored model");
  }
  // First piece that ends after `offset`.
  auto it = std::upper_bound(pieces_.begin(), pieces_.end(), offset,
                             [](uint64_t off, const Piece& p) { return off < p.source_offset; });
  if (it != pieces_.begin()) --it;
  size_t done = 0;
  while (done < buf.size()) {
    if (it == pieces_.end() || it->source_offset > offset + done) {
      return MakeError(ErrorCode::kFormat, "the tensor index leaves a gap in the source file");
    }
    const uint64_t delta = offset + done - it->source_offset;
    if (delta >= it->length) {
      ++it;
      continue;
    }
    const size_t n = static_cast<size_t>(std::min<uint64_t>(it->length - delta, buf.size() - done));
    HMOD_TRY(ReadPiece(*it, delta, buf.subspan(done, n)));
    done += n;
    ++it;
  }
  return OkStatus();
}

void RestoredModelSource::StartCopy() {
  std::lock_guard lock(mu_);
  for (auto& h : plain_) h = PlainHash{};
  copying_ = true;
}

Status RestoredModelSource::CheckPlainDigests() const {
  std::lock_guard lock(mu_);
  const auto& entries = file_.index().entries;
  for (size_t i = 1; i < entries.size(); ++i) {
    const IndexEntry& e = entries[i];
    if (e.encrypted) continue;
    PlainHash& h = plain_[i];
    if (h.out_of_order || h.next != e.size) {
      return MakeError(ErrorCode::kCrypto, "plaintext tensor '" + e.name + "' was not read whole and in order");
    }
    if (!ConstantTimeEquals(h.hash->Finish(), e.sha256)) {
      return MakeError(ErrorCode::kAuthFailed, "plaintext tensor '" + e.name +
                                                   "' does not match its digest in the index: the file was tampered with");
    }
  }
  return OkStatus();
}

}  // namespace hmod::rotate
