// hmodctl decrypt: open an .hmod with any of the given keys and stream out the plaintext.
#include <cstdio>

#include <algorithm>

#include "cli/cli_common.h"
#include "hmod/tensor_container.h"
#include "cli/commands.h"
#include "cli/legacy_commands.h"

namespace hmod::cli {
namespace {

struct DecryptCliOptions {
  std::vector<std::string> keks;
  std::vector<std::string> context;
  std::string input, output;
  bool force = false;
  std::string tensor;
  unsigned threads = 0;
  KeyOptions keys;
  OutputOptions out;
  LegacyCliOptions legacy;
};

// Writes the raw bytes of one tensor: only its chunks (plus header and index) are read.
// A plain tensor was checked whole against its digest above; it is copied in one more pass,
// hashed again on the way, and its last piece is written only if the digest still matches
// (the file may change between the passes). Reading it piecewise through ReadEntry would hash
// the whole tensor for every piece.
Status CopyPlainEntry(const InputFile& in, const IndexEntry& e, ByteSink& out) {
  Sha256Stream hash;
  Bytes held, buf(std::min<uint64_t>(e.size, 4 << 20));
  for (uint64_t done = 0; done < e.size;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), e.size - done));
    HMOD_TRY(in.ReadAt(e.offset + done, MutableByteSpan(buf.data(), n)));
    hash.Update(ByteSpan(buf.data(), n));
    if (!held.empty()) HMOD_TRY(out.Write(held));
    held.assign(buf.begin(), buf.begin() + static_cast<long>(n));
    done += n;
  }
  if (!ConstantTimeEquals(hash.Finish(), e.sha256)) {
    return MakeError(ErrorCode::kAuthFailed, "plaintext tensor '" + e.name + "' changed while it was being read");
  }
  return held.empty() ? OkStatus() : out.Write(held);
}

Result<DecryptSummary> DecryptOneTensor(InputFile& in, const std::string& name, ByteSink& out,
                                        ProviderList& providers, const DecryptOptions& options) {
  if (!in.is_regular()) return MakeError(ErrorCode::kUnsupported, "--tensor needs a file, not a pipe");
  HMOD_ASSIGN_OR_RETURN(ParsedHeader parsed, ReadHeader(in));
  if (parsed.header.layout != Layout::kTensors) {
    return MakeError(ErrorCode::kUsage, "--tensor: this file was encrypted as a whole file, not per tensor");
  }
  HMOD_ASSIGN_OR_RETURN(auto file, TensorFile::Open(in, std::move(parsed), providers, options.required_context));
  HMOD_ASSIGN_OR_RETURN(size_t entry, file->Find(name));
  const uint64_t size = file->index().entries[entry].size;
  HMOD_TRY(file->ReadEntry(entry, 0, MutableByteSpan()));  // authenticates the entry, even an empty one
  const IndexEntry& e = file->index().entries[entry];
  if (e.encrypted) {
    Bytes buf(std::min<uint64_t>(size, 4 << 20));
    for (uint64_t done = 0; done < size;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - done));
      HMOD_TRY(file->ReadEntry(entry, done, MutableByteSpan(buf.data(), n)));
      HMOD_TRY(out.Write(ByteSpan(buf.data(), n)));
      done += n;
    }
  } else {
    HMOD_TRY(CopyPlainEntry(in, e, out));
  }
  DecryptSummary summary;
  summary.header = file->header();
  summary.opened_by = file->opened_by();
  summary.plaintext_bytes = size;
  return summary;
}

int RunDecrypt(const DecryptCliOptions& o) {
  const bool data_on_stdout = o.output == "-";
  auto fail = [&](const Error& e) { return ReportError(e, o.out, data_on_stdout); };

  DecryptOptions options;
  auto req = ParseRequirements(o.context);
  if (!req.ok()) return fail(req.error());
  options.required_context = std::move(*req);
  options.stream.threads = o.threads;
  std::optional<Result<ProviderList>> built;
  if (!o.keks.empty()) {
    built.emplace(BuildProviders(o.keks, o.keys, o.input, true));
    if (!built->ok()) return fail(built->error());
  }
  auto in = InputFile::Open(o.input);
  if (!in.ok()) return fail(in.error());
  // Legacy ENCMODEL/ENVMODEL inputs (docs/LEGACY.md) are recognised by their magic.
  SniffedInput sniffed(**in);
  auto legacy = sniffed.Sniff();
  if (!legacy.ok()) return fail(legacy.error());
  if (*legacy) return RunLegacy(**in, **legacy, o.legacy, {o.output, o.force, false, o.context, o.out, o.keys.audit_log});
  if (!built) return fail(MakeError(ErrorCode::kUsage, "--kek is required", "pass --kek URI (repeatable)"));
  auto& providers = *built;
  // Plaintext model weights: readable by the owner only.
  auto output = OpenOutput(o.output, **in, 0600, o.force);
  if (!output.ok()) return fail(output.error());
  options.stream.progress = MakeProgress("decrypting", (*in)->size(), o.out.quiet);

  // On failure `output` is destroyed uncommitted: the temporary file is removed and OUT
  // never appears. On stdout only whole authenticated chunks were written.
  auto summary = o.tensor.empty() ? DecryptContainer(SequentialInput(**in, sniffed), output->sink(), *providers, options)
                                  : DecryptOneTensor(**in, o.tensor, output->sink(), *providers, options);
  if (!summary.ok()) return fail(summary.error());
  if (Status st = output->Commit(); !st.ok()) return fail(st.error());
  FinishProgress();

  if (o.out.json) {
    auto j = OpenedJson(*summary);
    j["input"] = (*in)->path();
    j["output"] = o.output;
    PrintJson(j, data_on_stdout);
  } else if (!o.out.quiet && !data_on_stdout) {
    std::fprintf(stderr, "decrypted %s -> %s (%llu bytes, opened by %s)\n", (*in)->path().c_str(),
                 o.output.c_str(), static_cast<unsigned long long>(summary->plaintext_bytes),
                 summary->opened_by.c_str());
  }
  return kExitOk;
}

}  // namespace

void SetupDecrypt(CLI::App& sub, std::function<int()>& run) {
  auto o = std::make_shared<DecryptCliOptions>();
  sub.description(
      "Decrypt an .hmod container IN to OUT with any one of the keys it was wrapped to.\n"
      "Every chunk is authenticated before it is written. OUT (mode 0600) appears only if the\n"
      "whole file authenticates; on any failure it does not exist. With -o - (stdout), only\n"
      "whole authenticated chunks are written and the exit code says whether all of it was.\n\n"
      "Examples:\n"
      "  hmodctl decrypt --kek file:team.key --context model=llama -o llama.safetensors llama.hmod\n"
      "  hmodctl decrypt --kek pass: -o - backup.hmod | tar x\n"
      "  hmodctl decrypt --kek file:team.key --tensor model.embed_tokens.weight -o embed.bin llama.hmod\n\n"
      "Per-tensor models (safetensors/GGUF encrypted tensor by tensor) are read with positional\n"
      "reads, so their IN must be a file, not a pipe.\n\n"
      "Legacy ENCMODEL/ENVMODEL files (docs/LEGACY.md) are recognised by content and need no --kek:\n"
      "  hmodctl decrypt --legacy-key raw.key --legacy-aad llama:3 -o llama.safetensors llama.enc\n"
      "  hmodctl decrypt -o llama.safetensors llama.env      # ENVMODEL: AWS credentials only");
  sub.add_option("--kek", o->keks, "Key provider URI to try (repeatable, tried in order; required for .hmod)")
      ->type_name("URI")
      ->allow_extra_args(false);
  sub.add_option("--context", o->context,
                 "Require context key=value to match, or a bare key to exist (repeatable)")
      ->type_name("K[=V]")
      ->allow_extra_args(false);
  sub.add_option("-o,--output", o->output, "Output file, or - for stdout")->required();
  sub.add_option("input", o->input, "Input .hmod file, or - for stdin")->required();
  sub.add_flag("-f,--force", o->force, "Replace OUT if it exists");
  sub.add_option("--tensor", o->tensor,
                 "Write only this tensor's raw bytes (per-tensor files; reads just its chunks)")
      ->type_name("NAME");
  sub.add_option("--threads", o->threads, "Crypto threads (default: one per core)");
  AddOutputOptions(sub, o->out);
  AddKeyOptions(sub, o->keys, true);
  AddLegacyOptions(sub, o->legacy);
  run = [o] { return RunDecrypt(*o); };
}

}  // namespace hmod::cli
