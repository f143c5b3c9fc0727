// Canonical encoding and strict parsing of the header region (FORMAT.md §2).
#include <algorithm>
#include <cstring>

#include "format/byte_writer.h"
#include "hmod/envelope.h"
#include "hmod/header.h"
#include "hmod/tensor_index.h"

namespace hmod {
namespace {

Error Malformed(const std::string& what) {
  return MakeError(ErrorCode::kFormat, "malformed header: " + what);
}

bool IsValidProviderId(std::string_view id) {
  if (id.empty() || id.size() > kMaxProviderIdBytes) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// Reads the header from a ByteSource on demand, in 4096-byte blocks. Because the region
// is a multiple of 4096 bytes, a block read never consumes payload bytes while the
// parse position is inside the region.
class Cursor {
 public:
  explicit Cursor(ByteSource& in) : in_(in) {}

  Status Need(size_t n) {
    if (pos_ + n > kMaxRegionBytes) return MakeError(ErrorCode::kLimit, "header exceeds 16 MiB");
    while (buf_.size() < pos_ + n) {
      const size_t old = buf_.size();
      buf_.resize(old + kRegionAlign);
      HMOD_ASSIGN_OR_RETURN(size_t got, in_.Read(MutableByteSpan(buf_.data() + old, kRegionAlign)));
      buf_.resize(old + got);
      if (got < kRegionAlign && buf_.size() < pos_ + n) return Malformed("file truncated inside the header");
    }
    return OkStatus();
  }
  Result<uint8_t> U8() {
    HMOD_TRY(Need(1));
    return buf_[pos_++];
  }
  Result<uint16_t> U16() {
    HMOD_TRY(Need(2));
    uint16_t v = static_cast<uint16_t>(buf_[pos_] << 8 | buf_[pos_ + 1]);
    pos_ += 2;
    return v;
  }
  Result<uint32_t> U32() {
    HMOD_ASSIGN_OR_RETURN(uint16_t hi, U16());
    HMOD_ASSIGN_OR_RETURN(uint16_t lo, U16());
    return static_cast<uint32_t>(hi) << 16 | lo;
  }
  Result<ByteSpan> Take(size_t n) {
    HMOD_TRY(Need(n));
    ByteSpan s(buf_.data() + pos_, n);
    pos_ += n;
    return s;
  }
  Result<std::string> String(size_t n) {
    HMOD_ASSIGN_OR_RETURN(ByteSpan s, Take(n));
    return std::string(reinterpret_cast<const char*>(s.data()), s.size());
  }
  size_t pos() const { return pos_; }
  Bytes& buffer() { return buf_; }

 private:
  ByteSource& in_;
  Bytes buf_;
  size_t pos_ = 0;
};

Status EncodeKeyBlock(const Header& h, uint32_t region_bytes, ByteWriter& w) {
  if (h.wrapped_keys.empty() || h.wrapped_keys.size() > kMaxWrappedKeys) {
    return MakeError(ErrorCode::kLimit, "a file needs 1..64 wrapped keys");
  }
  w.U32(region_bytes);
  w.U16(static_cast<uint16_t>(h.wrapped_keys.size()));
  for (const auto& k : h.wrapped_keys) {
    if (!IsValidProviderId(k.provider_id) || k.key_id.size() > kMaxKeyIdBytes ||
        !IsValidUtf8(k.key_id) || k.wrapped.empty() || k.wrapped.size() > kMaxWrappedKeyBytes) {
      return MakeError(ErrorCode::kLimit, "wrapped key record out of bounds");
    }
    w.U8(static_cast<uint8_t>(k.provider_id.size()));
    w.Raw(k.provider_id);
    w.U16(static_cast<uint16_t>(k.key_id.size()));
    w.Raw(k.key_id);
    w.U16(static_cast<uint16_t>(k.wrapped.size()));
    w.Raw(k.wrapped);
  }
  return OkStatus();
}

}  // namespace

Result<Bytes> EncodeCore(const Header& h) {
  HMOD_TRY(ValidateContext(h.context));
  if (h.extensions.size() > kMaxExtensions) return MakeError(ErrorCode::kLimit, "too many extensions");
  ByteWriter w;
  w.Raw(ByteSpan(kMagic));
  w.U8(kFormatVersion);
  w.U8(static_cast<uint8_t>(h.layout));
  w.U16(static_cast<uint16_t>(h.suite));
  w.Raw(ByteSpan(h.file_id));
  w.U16(static_cast<uint16_t>(h.context.size()));
  for (const auto& [k, v] : h.context) {  // std::map: ascending by unsigned bytes
    w.U16(static_cast<uint16_t>(k.size()));
    w.Raw(k);
    w.U16(static_cast<uint16_t>(v.size()));
    w.Raw(v);
  }
  w.U16(static_cast<uint16_t>(h.extensions.size()));
  for (size_t i = 0; i < h.extensions.size(); ++i) {
    const auto& e = h.extensions[i];
    if (i > 0 && e.type <= h.extensions[i - 1].type) {
      return MakeError(ErrorCode::kFormat, "extension types must be strictly ascending");
    }
    w.U16(e.type);
    w.U32(static_cast<uint32_t>(e.value.size()));
    w.Raw(e.value);
  }
  return std::move(w.bytes());
}

Result<Bytes> EncodeHeaderRegion(const Header& h, const SecretBytes& mac_key) {
  HMOD_ASSIGN_OR_RETURN(Bytes core, EncodeCore(h));
  // Size the key block once with a placeholder length to learn the region size.
  ByteWriter probe;
  HMOD_TRY(EncodeKeyBlock(h, 0, probe));
  const size_t mac_end = core.size() + probe.size() + kHeaderMacBytes;
  const size_t minimal = (mac_end + kRegionAlign - 1) / kRegionAlign * kRegionAlign;
  const size_t region = std::max<size_t>(minimal, h.region_bytes);
  if (region > kMaxRegionBytes || region % kRegionAlign) {
    return MakeError(ErrorCode::kLimit, "header region exceeds 16 MiB");
  }
  ByteWriter w;
  w.Raw(core);
  HMOD_TRY(EncodeKeyBlock(h, static_cast<uint32_t>(region), w));
  // FORMAT.md §3.2: HMAC-SHA-256 over every byte before the MAC.
  const auto mac = HmacSha256(mac_key.secret(), w.bytes());
  w.Raw(ByteSpan(mac));
  w.bytes().resize(region, 0);
  return std::move(w.bytes());
}

Result<ParsedHeader> ReadHeader(ByteSource& in) {
  Cursor c(in);
  ParsedHeader p;
  Header& h = p.header;

  HMOD_ASSIGN_OR_RETURN(ByteSpan magic, c.Take(kMagic.size()));
  if (!std::equal(magic.begin(), magic.end(), kMagic.begin())) {
    return MakeError(ErrorCode::kFormat, "not an .hmod file (bad magic)");
  }
  HMOD_ASSIGN_OR_RETURN(uint8_t version, c.U8());
  if (version != kFormatVersion) {
    return MakeError(ErrorCode::kUnsupported, "unsupported .hmod format version " + std::to_string(version),
                     "this hmodctl reads version 1; upgrade hmodctl");
  }
  HMOD_ASSIGN_OR_RETURN(uint8_t layout, c.U8());
  if (layout != static_cast<uint8_t>(Layout::kStream) && layout != static_cast<uint8_t>(Layout::kTensors)) {
    return MakeError(ErrorCode::kUnsupported, "unsupported payload layout " + std::to_string(layout));
  }
  h.layout = static_cast<Layout>(layout);
  HMOD_ASSIGN_OR_RETURN(uint16_t suite, c.U16());
  if (!IsKnownSuite(suite)) {
    return MakeError(ErrorCode::kUnsupported, "unknown suite id " + std::to_string(suite));
  }
  h.suite = static_cast<Suite>(suite);
  HMOD_ASSIGN_OR_RETURN(ByteSpan file_id, c.Take(kFileIdBytes));
  std::copy(file_id.begin(), file_id.end(), h.file_id.begin());

  HMOD_ASSIGN_OR_RETURN(uint16_t pairs, c.U16());
  if (pairs > kMaxContextPairs) return MakeError(ErrorCode::kLimit, "encryption context has over 64 pairs");
  const std::string* prev_key = nullptr;
  for (uint16_t i = 0; i < pairs; ++i) {
    HMOD_ASSIGN_OR_RETURN(uint16_t klen, c.U16());
    if (klen == 0 || klen > kMaxContextKeyBytes) return Malformed("context key length out of range");
    HMOD_ASSIGN_OR_RETURN(std::string key, c.String(klen));
    HMOD_ASSIGN_OR_RETURN(uint16_t vlen, c.U16());
    if (vlen > kMaxContextValueBytes) return Malformed("context value too long");
    HMOD_ASSIGN_OR_RETURN(std::string value, c.String(vlen));
    if (!IsValidUtf8(key) || !IsValidUtf8(value)) return Malformed("context is not valid UTF-8");
    if (prev_key && !(*prev_key < key)) return Malformed("context keys not strictly ascending");
    prev_key = &h.context.emplace(std::move(key), std::move(value)).first->first;
  }

  HMOD_ASSIGN_OR_RETURN(uint16_t n_ext, c.U16());
  if (n_ext > kMaxExtensions) return MakeError(ErrorCode::kLimit, "too many header extensions");
  for (uint16_t i = 0; i < n_ext; ++i) {
    Extension e;
    HMOD_ASSIGN_OR_RETURN(e.type, c.U16());
    HMOD_ASSIGN_OR_RETURN(uint32_t len, c.U32());
    if (len > kMaxRegionBytes) return MakeError(ErrorCode::kLimit, "extension too large");
    if (!h.extensions.empty() && e.type <= h.extensions.back().type) {
      return Malformed("extension types not strictly ascending");
    }
    // An unknown critical extension cannot be ignored (FORMAT.md §2.2).
    if ((e.type & kCriticalExtension) && e.type != kTensorLayoutExtension) {
      return MakeError(ErrorCode::kUnsupported,
                       "unknown critical header extension " + std::to_string(e.type));
    }
    HMOD_ASSIGN_OR_RETURN(ByteSpan v, c.Take(len));
    e.value.assign(v.begin(), v.end());
    h.extensions.push_back(std::move(e));
  }
  p.core_bytes = c.pos();
  // FORMAT.md §6.2: the tensor layout and its extension come together.
  const bool has_layout_ext = std::any_of(h.extensions.begin(), h.extensions.end(),
                                          [](const Extension& e) { return e.type == kTensorLayoutExtension; });
  if (has_layout_ext != (h.layout == Layout::kTensors)) {
    return Malformed("tensor-layout extension and layout disagree");
  }
  if (has_layout_ext) HMOD_TRY(TensorLayoutOf(h));

  HMOD_ASSIGN_OR_RETURN(h.region_bytes, c.U32());
  if (h.region_bytes < kRegionAlign || h.region_bytes % kRegionAlign || h.region_bytes > kMaxRegionBytes) {
    return Malformed("region length " + std::to_string(h.region_bytes) + " is not a multiple of 4096 in [4096, 16 MiB]");
  }
  HMOD_ASSIGN_OR_RETURN(uint16_t n_keys, c.U16());
  if (n_keys == 0) return Malformed("no wrapped keys");
  if (n_keys > kMaxWrappedKeys) return MakeError(ErrorCode::kLimit, "more than 64 wrapped keys");
  for (uint16_t i = 0; i < n_keys; ++i) {
    WrappedKey k;
    HMOD_ASSIGN_OR_RETURN(uint8_t plen, c.U8());
    HMOD_ASSIGN_OR_RETURN(k.provider_id, c.String(plen));
    if (!IsValidProviderId(k.provider_id)) return Malformed("invalid provider id");
    HMOD_ASSIGN_OR_RETURN(uint16_t klen, c.U16());
    if (klen > kMaxKeyIdBytes) return Malformed("key id too long");
    HMOD_ASSIGN_OR_RETURN(k.key_id, c.String(klen));
    if (!IsValidUtf8(k.key_id)) return Malformed("key id is not valid UTF-8");
    HMOD_ASSIGN_OR_RETURN(uint16_t wlen, c.U16());
    if (wlen == 0 || wlen > kMaxWrappedKeyBytes) return Malformed("wrapped key length out of range");
    HMOD_ASSIGN_OR_RETURN(ByteSpan w, c.Take(wlen));
    k.wrapped.assign(w.begin(), w.end());
    h.wrapped_keys.push_back(std::move(k));
  }
  p.mac_offset = c.pos();
  HMOD_ASSIGN_OR_RETURN(ByteSpan mac, c.Take(kHeaderMacBytes));
  std::copy(mac.begin(), mac.end(), p.mac.begin());
  if (c.pos() > h.region_bytes) return Malformed("header is longer than its stated region");
  HMOD_ASSIGN_OR_RETURN(ByteSpan padding, c.Take(h.region_bytes - c.pos()));
  if (!std::all_of(padding.begin(), padding.end(), [](uint8_t b) { return b == 0; })) {
    return Malformed("non-zero padding after the header MAC");
  }
  p.region = std::move(c.buffer());
  p.region.resize(h.region_bytes);
  return p;
}

Result<ParsedHeader> ParseHeader(ByteSpan bytes) {
  MemorySource src(bytes);
  return ReadHeader(src);
}

}  // namespace hmod
