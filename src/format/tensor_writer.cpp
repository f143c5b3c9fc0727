// Writes the per-tensor layout (FORMAT.md §6) in one sequential pass over the source.
#include <fnmatch.h>

#include <algorithm>

#include "hmod/tensor_container.h"
#include "stream/batch_pipeline.h"

namespace hmod {
namespace {

uint64_t RoundUp(uint64_t v) { return (v + kEntryAlign - 1) / kEntryAlign * kEntryAlign; }

// Counts bytes written so padding can be computed; hashes them for a signature.
class CountingSink final : public ByteSink {
 public:
  CountingSink(ByteSink& inner, Sha256Stream* hash) : inner_(inner), hash_(hash) {}
  Status Write(ByteSpan data) override {
    HMOD_TRY(inner_.Write(data));
    if (hash_ && hashing_) hash_->Update(data);
    written_ += data.size();
    return OkStatus();
  }
  void StartHashing() { hashing_ = true; }
  uint64_t written() const { return written_; }
  Status PadTo(uint64_t offset) {
    static const uint8_t kZeros[kEntryAlign] = {};
    while (written_ < offset) {
      HMOD_TRY(Write(ByteSpan(kZeros, std::min<uint64_t>(kEntryAlign, offset - written_))));
    }
    return OkStatus();
  }

 private:
  ByteSink& inner_;
  Sha256Stream* hash_;
  bool hashing_ = false;
  uint64_t written_ = 0;
};

// Reads the source bytes of a list of segments, in order, with positional reads; hashes
// them on the way when asked (plain entries).
class SegmentSource final : public ByteSource {
 public:
  SegmentSource(const PositionalSource& src, const std::vector<Segment>& segs, Sha256Stream* hash)
      : src_(src), segs_(segs), hash_(hash) {}
  Result<size_t> Read(MutableByteSpan buf) override {
    size_t done = 0;
    while (done < buf.size() && seg_ < segs_.size()) {
      const Segment& s = segs_[seg_];
      const uint64_t n = std::min<uint64_t>(buf.size() - done, s.length - pos_);
      MutableByteSpan part = buf.subspan(done, n);
      HMOD_TRY(src_.ReadAt(s.source_offset + pos_, part));
      if (hash_) hash_->Update(part);
      done += n;
      pos_ += n;
      if (pos_ == s.length) ++seg_, pos_ = 0;
    }
    return done;
  }

 private:
  const PositionalSource& src_;
  const std::vector<Segment>& segs_;
  Sha256Stream* hash_;
  size_t seg_ = 0;
  uint64_t pos_ = 0;
};

bool MatchesAny(const std::string& name, const std::vector<std::string>& globs) {
  return std::any_of(globs.begin(), globs.end(),
                     [&](const std::string& g) { return ::fnmatch(g.c_str(), name.c_str(), 0) == 0; });
}

// Entries in source order: the skeleton (all gaps between tensors), then the tensors.
Result<TensorIndex> PlanEntries(const ModelLayout& layout, const TensorEncryptOptions& options) {
  TensorIndex index;
  IndexEntry skeleton;
  skeleton.kind = EntryKind::kSkeleton;
  skeleton.encrypted = !options.public_index;
  index.entries.push_back(std::move(skeleton));
  uint64_t pos = 0;
  for (const auto& t : layout.tensors) {
    if (t.offset < pos) return MakeError(ErrorCode::kFormat, "tensors overlap in the source");
    if (t.offset > pos) index.entries[0].segments.push_back({pos, t.offset - pos});
    if (t.shape.size() > kMaxRank) return MakeError(ErrorCode::kLimit, "tensor '" + t.name + "' has rank over 8");
    if (t.name.size() > kMaxTensorNameBytes || t.dtype.size() > 255) {
      return MakeError(ErrorCode::kLimit, "a tensor name is longer than 4096 bytes (or its dtype than 255)");
    }
    IndexEntry e;
    e.kind = EntryKind::kTensor;
    e.encrypted = !MatchesAny(t.name, options.plaintext_globs);
    e.name = t.name;
    e.dtype = t.dtype;
    e.shape = t.shape;
    e.size = t.size;
    e.segments.push_back({t.offset, t.size});
    index.entries.push_back(std::move(e));
    pos = t.offset + t.size;
  }
  if (pos < layout.file_size) index.entries[0].segments.push_back({pos, layout.file_size - pos});
  for (const auto& s : index.entries[0].segments) index.entries[0].size += s.length;
  if (index.entries.size() > kMaxIndexEntries) return MakeError(ErrorCode::kLimit, "too many tensors");
  return index;
}

}  // namespace

Result<EncryptSummary> EncryptModelToContainer(const PositionalSource& source, const ModelLayout& layout,
                                               ByteSink& out_sink, ProviderList& providers,
                                               const TensorEncryptOptions& options) {
  HMOD_ASSIGN_OR_RETURN(TensorIndex index, PlanEntries(layout, options));
  TensorLayoutInfo info;
  info.index_mode = options.public_index ? IndexMode::kPublic : IndexMode::kEncrypted;
  info.source_format = layout.format == ModelFormat::kGguf ? SourceFormat::kGguf : SourceFormat::kSafetensors;
  info.source_size = layout.file_size;
  info.is_signed = options.sign_key != nullptr;

  // Seal once with a placeholder extension of the final size to learn the region size,
  // then fill in the offsets and re-seal (same data key and wrapped keys).
  std::vector<Extension> ext = {{kTensorLayoutExtension, EncodeTensorLayoutInfo(info)}};
  HMOD_ASSIGN_OR_RETURN(SealedHeader sealed,
                        SealNewHeader(Layout::kTensors, options.suite, options.context, ext, providers));
  const uint64_t region = sealed.region.size();
  uint64_t offset = region;
  for (auto& e : index.entries) {
    e.offset = RoundUp(offset);
    e.stored_length = e.encrypted ? ChunkedCiphertextSize(e.size) : e.size;
    offset = e.offset + e.stored_length;
  }
  info.index_offset = RoundUp(offset);
  const uint64_t index_plain = IndexPlaintextSize(index);
  const uint64_t index_stored = options.public_index ? index_plain + 32 : ChunkedCiphertextSize(index_plain);
  if (index_stored > UINT32_MAX) return MakeError(ErrorCode::kLimit, "tensor index too large");
  info.index_length = static_cast<uint32_t>(index_stored);
  sealed.header.extensions[0].value = EncodeTensorLayoutInfo(info);
  HMOD_TRY(ResealHeader(sealed));
  if (sealed.region.size() != region) return MakeError(ErrorCode::kCrypto, "header size changed on reseal");

  Sha256Stream body_hash;
  CountingSink out(out_sink, options.sign_key ? &body_hash : nullptr);
  HMOD_TRY(out.Write(sealed.region));
  out.StartHashing();  // the signature covers the region, and every byte after it

  // Every entry goes through one pipeline: the source is read once, in order, on this
  // thread; the chunks of all encrypted entries are sealed by one pool of workers, each
  // batch with its own entry's keys; one writer writes headers, padding, ciphertext and
  // plain entries in file order. (A pipeline per tensor paid its start-up and drain per
  // tensor.)
  using detail::Batch;
  using detail::BatchKind;
  class Producer final : public detail::BatchProducer {
   public:
    Producer(const PositionalSource& source, TensorIndex& index, const SealedHeader& sealed, Suite suite,
             uint64_t start)
        : source_(source), index_(index), sealed_(sealed), suite_(suite), offset_(start) {}

    Result<bool> Next(Batch& b) override {
      while (at_ < index_.entries.size()) {
        IndexEntry& e = index_.entries[at_];
        if (!started_) HMOD_TRY(Start(e));
        HMOD_ASSIGN_OR_RETURN(bool got, e.encrypted ? Seal(e, b) : Copy(e, b));
        if (got) {
          b.prefix = std::move(pending_);
          pending_.clear();
          b.report_progress = true;
          b.progress = consumed_;
          return true;
        }
        ++at_;
        started_ = false;
      }
      if (!pending_.empty()) {  // padding or a header not yet carried by a batch
        b.kind = BatchKind::kCopy;
        b.prefix = std::move(pending_);
        pending_.clear();
        return true;
      }
      return false;
    }

   private:
    Status Start(IndexEntry& e) {
      if (e.offset < offset_) return MakeError(ErrorCode::kCrypto, "internal: entries overlap");
      pending_.resize(pending_.size() + static_cast<size_t>(e.offset - offset_), 0);  // zero padding
      offset_ = e.offset + e.stored_length;
      in_ = std::make_unique<SegmentSource>(source_, e.segments, nullptr);
      remaining_ = e.size;
      if (e.encrypted) {
        const Bytes ctx = EntryContext(sealed_.core_digest, static_cast<uint32_t>(at_), e.name);
        HMOD_ASSIGN_OR_RETURN(ChunkKeys keys, ChunkKeys::ForEncryption(suite_, sealed_.payload_key, ctx));
        keys_ = std::make_shared<const ChunkKeys>(std::move(keys));
        pending_.insert(pending_.end(), keys_->stream_header().begin(), keys_->stream_header().end());
        chunk_ = 0;
        sealed_final_ = false;
      } else {
        hash_ = std::make_unique<Sha256Stream>();
      }
      started_ = true;
      return OkStatus();
    }

    Status ReadSource(uint8_t* buf, size_t n) {
      HMOD_ASSIGN_OR_RETURN(size_t got, in_->Read(MutableByteSpan(buf, n)));
      if (got != n) return MakeError(ErrorCode::kIo, "source changed while it was being encrypted");
      remaining_ -= n;
      consumed_ += n;
      return OkStatus();
    }

    Result<bool> Seal(IndexEntry&, Batch& b) {
      if (sealed_final_) return false;
      const size_t n = static_cast<size_t>(std::min<uint64_t>(detail::kBatchPlainBytes, remaining_));
      const bool last = remaining_ == n;  // this batch ends with the final chunk
      HMOD_TRY(ReadSource(b.in, n));
      b.kind = BatchKind::kSeal;
      b.keys = keys_;
      b.first_chunk = chunk_;
      b.in_bytes = n;
      b.chunks = detail::SealChunks(n, last);
      chunk_ += b.chunks;
      sealed_final_ = last;
      return true;
    }

    // Plain entries are hashed on the way; the digest goes into the index.
    Result<bool> Copy(IndexEntry& e, Batch& b) {
      if (remaining_ == 0) {
        if (hash_) e.sha256 = hash_->Finish();
        hash_.reset();
        return false;
      }
      const size_t n = static_cast<size_t>(std::min<uint64_t>(detail::kBatchBufferBytes, remaining_));
      HMOD_TRY(ReadSource(b.in, n));
      hash_->Update(ByteSpan(b.in, n));
      b.kind = BatchKind::kCopy;
      b.in_bytes = n;
      return true;
    }

    const PositionalSource& source_;
    TensorIndex& index_;
    const SealedHeader& sealed_;
    Suite suite_;
    uint64_t offset_;  // file offset just past everything produced so far (planned)
    size_t at_ = 0;
    bool started_ = false, sealed_final_ = false;
    Bytes pending_;
    std::unique_ptr<SegmentSource> in_;
    uint64_t remaining_ = 0, consumed_ = 0, chunk_ = 0;
    std::shared_ptr<const ChunkKeys> keys_;
    std::unique_ptr<Sha256Stream> hash_;
  };

  Producer producer(source, index, sealed, options.suite, region);
  HMOD_TRY(detail::RunBatches(producer, out, options.stream));
  const IndexEntry& last = index.entries.back();
  if (out.written() != last.offset + last.stored_length) {
    return MakeError(ErrorCode::kIo, "source changed while it was being encrypted");
  }

  // The index goes last: it holds the digests of plain entries, known only now.
  HMOD_TRY(out.PadTo(info.index_offset));
  const Bytes plain_index = EncodeIndex(index);
  if (options.public_index) {
    HMOD_ASSIGN_OR_RETURN(FileKeys keys, DeriveFileKeys(sealed.data_key, sealed.header.file_id));
    Bytes mac_input(sealed.core_digest.begin(), sealed.core_digest.end());
    mac_input.insert(mac_input.end(), plain_index.begin(), plain_index.end());
    const auto mac = HmacSha256(keys.index_mac_key.secret(), mac_input);
    HMOD_TRY(out.Write(plain_index));
    HMOD_TRY(out.Write(mac));
  } else {
    const Bytes ctx = EntryContext(sealed.core_digest, kIndexEntryNumber, kIndexEntryName);
    HMOD_ASSIGN_OR_RETURN(ChunkKeys keys, ChunkKeys::ForEncryption(options.suite, sealed.payload_key, ctx));
    MemorySource in(plain_index);
    HMOD_TRY(EncryptChunkedStream(keys, in, out, options.stream));
  }
  if (options.sign_key) {
    HMOD_ASSIGN_OR_RETURN(Bytes trailer, MakeSignatureTrailer(*options.sign_key, sealed.region, body_hash.Finish()));
    HMOD_TRY(out_sink.Write(trailer));
  }
  EncryptSummary summary;
  summary.header = std::move(sealed.header);
  summary.plaintext_bytes = layout.file_size;
  return summary;
}

}  // namespace hmod
