// Codec for the tensor-layout extension and the tensor index (FORMAT.md §6.2, §6.3).
#include "hmod/tensor_index.h"

#include <set>

#include "format/byte_writer.h"
#include "hmod/chunked_stream.h"

namespace hmod {
namespace {

Error BadIndex(const std::string& what) { return MakeError(ErrorCode::kFormat, "malformed tensor index: " + what); }

class Reader {
 public:
  explicit Reader(ByteSpan b) : b_(b) {}
  bool Has(size_t n) const { return b_.size() - pos_ >= n; }
  template <typename T>
  bool Int(T& v) {
    if (!Has(sizeof(T))) return false;
    v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>(v << 8 | b_[pos_++]);
    return true;
  }
  bool Str(size_t n, std::string& s) {
    if (!Has(n)) return false;
    s.assign(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return true;
  }
  bool Raw(MutableByteSpan out) {
    if (!Has(out.size())) return false;
    std::copy_n(b_.begin() + static_cast<long>(pos_), out.size(), out.begin());
    pos_ += out.size();
    return true;
  }
  bool AtEnd() const { return pos_ == b_.size(); }

 private:
  ByteSpan b_;
  size_t pos_ = 0;
};

uint64_t RoundUp(uint64_t v) { return (v + kEntryAlign - 1) / kEntryAlign * kEntryAlign; }

}  // namespace

Bytes EncodeTensorLayoutInfo(const TensorLayoutInfo& info) {
  ByteWriter w;
  w.U8(static_cast<uint8_t>(info.index_mode));
  w.U8(static_cast<uint8_t>(info.source_format));
  w.U64(info.source_size);
  w.U64(info.index_offset);
  w.U32(info.index_length);
  w.U16(0);
  w.U8(info.is_signed ? 1 : 0);
  return std::move(w.bytes());
}

Result<TensorLayoutInfo> DecodeTensorLayoutInfo(ByteSpan value) {
  if (value.size() != kTensorLayoutExtensionBytes) {
    return MakeError(ErrorCode::kFormat, "malformed header: tensor-layout extension has the wrong length");
  }
  Reader r(value);
  uint8_t mode = 0, format = 0, is_signed = 0;
  uint16_t reserved = 0;
  TensorLayoutInfo info;
  r.Int(mode), r.Int(format), r.Int(info.source_size), r.Int(info.index_offset), r.Int(info.index_length),
      r.Int(reserved), r.Int(is_signed);
  if (mode != 1 && mode != 2) return MakeError(ErrorCode::kUnsupported, "unknown tensor index mode");
  if (format != 1 && format != 2) return MakeError(ErrorCode::kUnsupported, "unknown source format");
  if (reserved != 0 || is_signed > 1 || info.index_offset % kEntryAlign) {
    return MakeError(ErrorCode::kFormat, "malformed header: bad tensor-layout extension");
  }
  info.index_mode = static_cast<IndexMode>(mode);
  info.source_format = static_cast<SourceFormat>(format);
  info.is_signed = is_signed == 1;
  return info;
}

Result<TensorLayoutInfo> TensorLayoutOf(const Header& header) {
  for (const auto& e : header.extensions) {
    if (e.type == kTensorLayoutExtension) return DecodeTensorLayoutInfo(e.value);
  }
  return MakeError(ErrorCode::kFormat, "malformed header: per-tensor layout without its extension");
}

uint64_t IndexPlaintextSize(const TensorIndex& index) {
  uint64_t n = 4 + 1 + 4;
  for (const auto& e : index.entries) {
    n += 1 + 1 + 2 + e.name.size() + 1 + e.dtype.size() + 1 + 8 * e.shape.size() + 8 + 8 + 8 + 4 +
         16 * e.segments.size() + (e.encrypted ? 0 : 32);
  }
  return n;
}

Bytes EncodeIndex(const TensorIndex& index) {
  ByteWriter w;
  w.Raw(std::string_view("HMIX"));
  w.U8(1);
  w.U32(static_cast<uint32_t>(index.entries.size()));
  for (const auto& e : index.entries) {
    w.U8(static_cast<uint8_t>(e.kind));
    w.U8(e.encrypted ? 1 : 0);
    w.U16(static_cast<uint16_t>(e.name.size()));
    w.Raw(e.name);
    w.U8(static_cast<uint8_t>(e.dtype.size()));
    w.Raw(e.dtype);
    w.U8(static_cast<uint8_t>(e.shape.size()));
    for (uint64_t d : e.shape) w.U64(d);
    w.U64(e.offset);
    w.U64(e.stored_length);
    w.U64(e.size);
    w.U32(static_cast<uint32_t>(e.segments.size()));
    for (const auto& s : e.segments) {
      w.U64(s.source_offset);
      w.U64(s.length);
    }
    if (!e.encrypted) w.Raw(ByteSpan(e.sha256));
  }
  return std::move(w.bytes());
}

Result<TensorIndex> ParseIndex(ByteSpan bytes, const TensorLayoutInfo& info, uint32_t region_bytes) {
  Reader r(bytes);
  std::string magic;
  uint8_t version = 0;
  uint32_t count = 0;
  if (!r.Str(4, magic) || magic != "HMIX" || !r.Int(version) || !r.Int(count)) return BadIndex("bad preamble");
  if (version != 1) return BadIndex("index version is not 1");
  if (count == 0) return BadIndex("no entries");
  if (count > kMaxIndexEntries) return MakeError(ErrorCode::kLimit, "tensor index has over 1,000,000 entries");
  TensorIndex index;
  index.entries.reserve(count);
  std::set<std::string> names;
  std::vector<Segment> all_segments;
  uint64_t next_free = region_bytes;  // entries ascend, aligned, after the region
  for (uint32_t i = 0; i < count; ++i) {
    IndexEntry e;
    uint8_t kind = 0, prot = 0, dtype_len = 0, rank = 0;
    uint16_t name_len = 0;
    uint32_t nseg = 0;
    if (!r.Int(kind) || !r.Int(prot) || !r.Int(name_len) || !r.Str(name_len, e.name) || !r.Int(dtype_len) ||
        !r.Str(dtype_len, e.dtype) || !r.Int(rank)) {
      return BadIndex("truncated entry " + std::to_string(i));
    }
    if (kind > 1 || prot > 1) return BadIndex("bad kind or protection in entry " + std::to_string(i));
    if (rank > kMaxRank) return BadIndex("rank over 8 in entry " + std::to_string(i));
    e.kind = static_cast<EntryKind>(kind);
    e.encrypted = prot == 1;
    e.shape.resize(rank);
    for (auto& d : e.shape) {
      if (!r.Int(d)) return BadIndex("truncated shape");
    }
    if (!r.Int(e.offset) || !r.Int(e.stored_length) || !r.Int(e.size) || !r.Int(nseg)) {
      return BadIndex("truncated entry " + std::to_string(i));
    }
    if (!r.Has(static_cast<size_t>(nseg) * 16)) return BadIndex("truncated segments");
    e.segments.resize(nseg);
    uint64_t total = 0;
    for (auto& s : e.segments) {
      r.Int(s.source_offset), r.Int(s.length);
      // Only an empty tensor has an empty segment; skeleton gaps are never empty.
      if ((s.length == 0 && (i == 0 || nseg != 1)) || total + s.length < total) {
        return BadIndex("bad segment length");
      }
      total += s.length;
      all_segments.push_back(s);
    }
    if (!e.encrypted && !r.Raw(e.sha256)) return BadIndex("truncated digest");
    // Shape and naming rules.
    if (i == 0) {
      if (e.kind != EntryKind::kSkeleton || !e.name.empty() || !e.dtype.empty() || rank != 0) {
        return BadIndex("entry 0 is not the skeleton");
      }
    } else {
      if (e.kind != EntryKind::kTensor) return BadIndex("a second skeleton entry");
      if (e.name.empty() || !IsValidUtf8(e.name)) return BadIndex("empty or non-UTF-8 tensor name");
      if (e.name.size() > kMaxTensorNameBytes) return BadIndex("tensor name longer than 4096 bytes");
      if (!names.insert(e.name).second) return BadIndex("duplicate tensor name '" + e.name + "'");
      if (nseg != 1) return BadIndex("tensor '" + e.name + "' must have exactly one segment");
    }
    // Lengths and placement.
    if (total != e.size) return BadIndex("segments do not add up to the entry size");
    const uint64_t expect = e.encrypted ? ChunkedCiphertextSize(e.size) : e.size;
    if (e.stored_length != expect) return BadIndex("stored length does not match size");
    if (e.offset % kEntryAlign || e.offset < next_free || e.offset > info.index_offset ||
        e.stored_length > info.index_offset - e.offset) {
      return BadIndex("entry " + std::to_string(i) + " is misplaced (alignment, order or overlap)");
    }
    next_free = RoundUp(e.offset + e.stored_length);
    index.entries.push_back(std::move(e));
  }
  if (!r.AtEnd()) return BadIndex("trailing bytes");
  // Segments must tile the source exactly.
  std::sort(all_segments.begin(), all_segments.end(),
            [](const Segment& a, const Segment& b) {
              return a.source_offset != b.source_offset ? a.source_offset < b.source_offset
                                                        : a.length < b.length;
            });
  uint64_t pos = 0;
  for (const auto& s : all_segments) {
    if (s.source_offset != pos) return BadIndex("segments do not tile the source (gap or overlap)");
    pos += s.length;
  }
  if (pos != info.source_size) return BadIndex("segments do not cover the source");
  if (next_free > info.index_offset) return BadIndex("entries overlap the index");
  return index;
}

}  // namespace hmod
