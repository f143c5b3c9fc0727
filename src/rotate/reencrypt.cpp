#include "rotate/reencrypt.h"

#include <fcntl.h>

#include <algorithm>
#include <mutex>

#include "hmod/container.h"
#include "hmod/model_file.h"
#include "hmod/tensor_container.h"
#include "keys/locked_provider.h"
#include "rotate/restored_model_source.h"

namespace hmod::rotate {
namespace {

// Non-owning views of the plan's providers, one of which may also open the file; one lock
// serialises all their calls (a provider need not be thread-safe).
ProviderList Borrow(const KeySetPlan& plan, std::mutex& mu) {
  ProviderList list;
  for (const auto& slot : plan.slots) list.push_back(std::make_unique<LockedProvider>(*slot.wrap_with, mu));
  return list;
}

// Counts what reaches the output.
class CountingSink final : public ByteSink {
 public:
  explicit CountingSink(ByteSink& inner) : inner_(inner) {}
  Status Write(ByteSpan data) override {
    n += data.size();
    return inner_.Write(data);
  }
  uint64_t n = 0;

 private:
  ByteSink& inner_;
};

// fnmatch pattern matching exactly `name`.
std::string LiteralGlob(const std::string& name) {
  std::string g;
  for (char c : name) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') g.push_back('\\');
    g.push_back(c);
  }
  return g;
}

// The file being re-encrypted is replaced at the end, and the kernel then frees all its
// cached pages at once, on the closing thread, after the work (~0.1 s per GiB here). Freed
// as they are read instead, that cost overlaps the crypto.
class DropBehindSource final : public ByteSource {
 public:
  explicit DropBehindSource(InputFile& in) : in_(in) {}
  Result<size_t> Read(MutableByteSpan buf) override {
    HMOD_ASSIGN_OR_RETURN(size_t n, in_.Read(buf));
    read_ += n;
    if (read_ - dropped_ >= kStep) {
      const uint64_t upto = read_ - read_ % kStep;
      ::posix_fadvise(in_.fd(), static_cast<off_t>(dropped_), static_cast<off_t>(upto - dropped_),
                      POSIX_FADV_DONTNEED);
      dropped_ = upto;
    }
    return n;
  }

 private:
  static constexpr uint64_t kStep = 8u << 20;
  InputFile& in_;
  uint64_t read_ = 0, dropped_ = 0;
};

// Stream layout: every chunk opened and sealed again in one pass (ResealChunkedStream).
Result<EncryptSummary> ReencryptStream(const std::string& path, ProviderList& open, ProviderList& wrap,
                                       const StreamOptions& stream, ByteSink& out, std::string& opened_by) {
  HMOD_ASSIGN_OR_RETURN(auto file, InputFile::Open(path));
  DropBehindSource in(*file);
  HMOD_ASSIGN_OR_RETURN(ReencryptSummary r, ReencryptStreamContainer(in, out, open, wrap, stream));
  opened_by = r.opened_by;
  EncryptSummary summary;
  summary.header = std::move(r.header);
  summary.plaintext_bytes = r.plaintext_bytes;
  return summary;
}

Result<EncryptSummary> ReencryptTensors(const std::string& path, ParsedHeader parsed, ProviderList& open,
                                        ProviderList& wrap, const RotateRequest& request, ByteSink& out,
                                        std::string& opened_by) {
  HMOD_ASSIGN_OR_RETURN(auto raw, InputFile::Open(path));
  HMOD_ASSIGN_OR_RETURN(auto file, TensorFile::Open(*raw, std::move(parsed), open, {}));
  opened_by = file->opened_by();
  const TensorLayoutInfo& info = file->layout();
  if (info.is_signed && request.sign_key == nullptr) {
    return MakeError(ErrorCode::kUsage, "the file is signed, and re-encrypting it needs a new signature",
                     "pass --sign-key FILE (the publisher's signing key)");
  }
  HMOD_ASSIGN_OR_RETURN(auto source, RestoredModelSource::Create(*file, *raw));
  const ModelFormat format =
      info.source_format == SourceFormat::kGguf ? ModelFormat::kGguf : ModelFormat::kSafetensors;
  HMOD_ASSIGN_OR_RETURN(ModelLayout layout, ParseModel(*source, format));

  TensorEncryptOptions options;
  options.suite = file->header().suite;
  options.context = file->header().context;
  options.public_index = info.index_mode == IndexMode::kPublic;
  for (const auto& e : file->index().entries) {
    if (e.kind == EntryKind::kTensor && !e.encrypted) options.plaintext_globs.push_back(LiteralGlob(e.name));
  }
  options.sign_key = info.is_signed ? request.sign_key : nullptr;
  options.stream = request.stream;
  source->StartCopy();
  HMOD_ASSIGN_OR_RETURN(EncryptSummary summary, EncryptModelToContainer(*source, layout, out, wrap, options));
  HMOD_TRY(source->CheckPlainDigests());
  return summary;
}

}  // namespace

Result<uint64_t> Reencrypt(const std::string& path, const ParsedHeader& parsed, const KeySetPlan& plan,
                           RotateRequest& request, ByteSink& out, std::string& opened_by,
                           std::string& new_file_id) {
  std::mutex provider_lock;
  ProviderList wrap = Borrow(plan, provider_lock);
  ProviderList open = LockEach(request.open, provider_lock);
  CountingSink counted(out);
  HMOD_ASSIGN_OR_RETURN(EncryptSummary summary,
                        parsed.header.layout == Layout::kTensors
                            ? ReencryptTensors(path, parsed, open, wrap, request, counted, opened_by)
                            : ReencryptStream(path, open, wrap, request.stream, counted, opened_by));
  new_file_id = HexEncode(summary.header.file_id);
  return counted.n;
}

}  // namespace hmod::rotate
