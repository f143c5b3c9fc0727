#include "rotate/reencrypt.h"

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

// Stream layout: every chunk opened and sealed again in one pass (ResealChunkedStream).
Result<EncryptSummary> ReencryptStream(const std::string& path, ProviderList& open, ProviderList& wrap,
                                       const StreamOptions& stream, ByteSink& out, std::string& opened_by) {
  HMOD_ASSIGN_OR_RETURN(auto in, InputFile::Open(path));
  HMOD_ASSIGN_OR_RETURN(ReencryptSummary r, ReencryptStreamContainer(*in, out, open, wrap, stream));
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
