// Whole-file (stream layout) .hmod encryption and decryption (FORMAT.md §2-§4).
#include "hmod/container.h"

#include "format/byte_writer.h"
#include "hmod/tensor_container.h"

namespace hmod {

Bytes EntryContext(const std::array<uint8_t, 32>& core_digest, uint32_t index,
                   std::string_view name) {
  ByteWriter w;
  w.Raw(std::string_view("hmod/v1 entry"));
  w.U8(0);
  w.Raw(ByteSpan(core_digest));
  w.U32(index);
  w.Raw(name);
  return std::move(w.bytes());
}

namespace {

// The keys of a stream-layout payload: its 56-byte message header is read from `in` and its
// commitment checked against the opened header's payload key.
Result<ChunkKeys> ReadPayloadKeys(ByteSource& in, const OpenedHeader& opened) {
  std::array<uint8_t, kStreamHeaderBytes> stream_header{};
  HMOD_ASSIGN_OR_RETURN(size_t got, in.Read(stream_header));
  if (got != stream_header.size()) {
    return MakeError(ErrorCode::kAuthFailed, "payload truncated: its header is incomplete");
  }
  return ChunkKeys::ForDecryption(opened.parsed.header.suite, opened.payload_key,
                                  EntryContext(opened.core_digest, 0, ""), stream_header);
}

}  // namespace

Result<EncryptSummary> EncryptToContainer(ByteSource& in, ByteSink& out, ProviderList& providers,
                                          const EncryptOptions& options) {
  HMOD_ASSIGN_OR_RETURN(SealedHeader sealed,
                        SealNewHeader(Layout::kStream, options.suite, options.context, {}, providers));
  HMOD_TRY(out.Write(sealed.region));
  const Bytes ctx = EntryContext(sealed.core_digest, 0, "");
  HMOD_ASSIGN_OR_RETURN(ChunkKeys keys, ChunkKeys::ForEncryption(options.suite, sealed.payload_key, ctx));
  // Count plaintext as it passes through.
  struct CountingSource : ByteSource {
    ByteSource& inner;
    uint64_t n = 0;
    explicit CountingSource(ByteSource& s) : inner(s) {}
    Result<size_t> Read(MutableByteSpan buf) override {
      auto r = inner.Read(buf);
      if (r.ok()) n += *r;
      return r;
    }
  } counting(in);
  HMOD_TRY(EncryptChunkedStream(keys, counting, out, options.stream));
  EncryptSummary summary;
  summary.header = std::move(sealed.header);
  summary.plaintext_bytes = counting.n;
  return summary;
}

Result<DecryptSummary> DecryptContainer(ByteSource& in, ByteSink& out, ProviderList& providers,
                                        const DecryptOptions& options) {
  HMOD_ASSIGN_OR_RETURN(ParsedHeader parsed, ReadHeader(in));
  if (parsed.header.layout == Layout::kTensors) {
    // The index sits at the end (it holds digests known only after the last tensor), so
    // per-tensor files are read with positional reads.
    const auto* positional = dynamic_cast<const PositionalSource*>(&in);
    const auto* file = dynamic_cast<const InputFile*>(&in);
    if (positional == nullptr || (file != nullptr && !file->is_regular())) {
      return MakeError(ErrorCode::kUnsupported, "a per-tensor .hmod must be read from a file, not a pipe",
                       "save it to a file first, then decrypt that file");
    }
    HMOD_ASSIGN_OR_RETURN(auto tensors, TensorFile::Open(*positional, std::move(parsed), providers,
                                                        options.required_context));
    HMOD_ASSIGN_OR_RETURN(uint64_t n, tensors->Restore(out, options.stream));
    DecryptSummary summary;
    summary.header = tensors->header();
    summary.opened_by = tensors->opened_by();
    summary.plaintext_bytes = n;
    return summary;
  }
  HMOD_ASSIGN_OR_RETURN(OpenedHeader opened, OpenHeader(std::move(parsed), providers));
  const Header& h = opened.parsed.header;
  HMOD_TRY(CheckContext(h.context, options.required_context));

  HMOD_ASSIGN_OR_RETURN(ChunkKeys keys, ReadPayloadKeys(in, opened));
  HMOD_ASSIGN_OR_RETURN(uint64_t n, DecryptChunkedStream(keys, in, out, options.stream));
  DecryptSummary summary;
  summary.header = h;
  summary.opened_by = opened.opened_by;
  summary.plaintext_bytes = n;
  return summary;
}

Result<ReencryptSummary> ReencryptStreamContainer(ByteSource& in, ByteSink& out, ProviderList& open,
                                                  ProviderList& wrap, const StreamOptions& stream) {
  HMOD_ASSIGN_OR_RETURN(ParsedHeader parsed, ReadHeader(in));
  if (parsed.header.layout != Layout::kStream) {
    return MakeError(ErrorCode::kUnsupported, "internal: not a stream-layout file");
  }
  HMOD_ASSIGN_OR_RETURN(OpenedHeader opened, OpenHeader(std::move(parsed), open));
  const Header& h = opened.parsed.header;
  HMOD_ASSIGN_OR_RETURN(ChunkKeys old_keys, ReadPayloadKeys(in, opened));
  // A new data key, file id and salt; the suite and the encryption context stay.
  HMOD_ASSIGN_OR_RETURN(SealedHeader sealed, SealNewHeader(Layout::kStream, h.suite, h.context, {}, wrap));
  HMOD_TRY(out.Write(sealed.region));
  HMOD_ASSIGN_OR_RETURN(ChunkKeys new_keys,
                        ChunkKeys::ForEncryption(h.suite, sealed.payload_key,
                                                 EntryContext(sealed.core_digest, 0, "")));
  HMOD_ASSIGN_OR_RETURN(uint64_t n, ResealChunkedStream(old_keys, new_keys, in, out, stream));
  ReencryptSummary summary;
  summary.header = std::move(sealed.header);
  summary.opened_by = opened.opened_by;
  summary.plaintext_bytes = n;
  return summary;
}

}  // namespace hmod
