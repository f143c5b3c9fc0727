#include "rotate/reencrypt.h"

#include <algorithm>
#include <mutex>
#include <thread>

#include "hmod/container.h"
#include "hmod/model_file.h"
#include "hmod/tensor_container.h"
#include "keys/locked_provider.h"
#include "rotate/byte_channel.h"
#include "rotate/restored_model_source.h"

namespace hmod::rotate {
namespace {

// The decrypting thread unwraps while the encrypting one wraps, possibly with the same
// provider: one lock serialises all their calls.
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

// Stream layout: one thread decrypts into a bounded channel, this one encrypts from it.
Result<EncryptSummary> ReencryptStream(const std::string& path, const Header& old, ProviderList& open,
                                       ProviderList& wrap, const StreamOptions& stream, ByteSink& out,
                                       std::string& opened_by) {
  HMOD_ASSIGN_OR_RETURN(auto in, InputFile::Open(path));
  ByteChannel channel;
  ByteChannel::Sink to_channel(channel);
  ByteChannel::Source from_channel(channel);
  Status decrypted = OkStatus();
  std::thread producer([&] {
    DecryptOptions d;
    d.stream.threads = stream.threads;
    auto r = DecryptContainer(*in, to_channel, open, d);
    if (r.ok()) {
      opened_by = r->opened_by;
      channel.Close(OkStatus());
    } else {
      decrypted = r.error();
      channel.Close(r.error());
    }
  });
  EncryptOptions e;
  e.suite = old.suite;
  e.context = old.context;
  e.stream = stream;
  auto encrypted = EncryptToContainer(from_channel, out, wrap, e);
  if (!encrypted.ok()) channel.Abandon();
  producer.join();
  if (!decrypted.ok()) return decrypted.error();  // the cause, not the consumer's echo of it
  return encrypted;
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
                            : ReencryptStream(path, parsed.header, open, wrap, request.stream, counted, opened_by));
  new_file_id = HexEncode(summary.header.file_id);
  return counted.n;
}

}  // namespace hmod::rotate
