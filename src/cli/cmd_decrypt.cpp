// hmodctl decrypt: open an .hmod with any of the given keys and stream out the plaintext.
#include <cstdio>

#include "cli/cli_common.h"
#include "cli/commands.h"

namespace hmod::cli {
namespace {

struct DecryptCliOptions {
  std::vector<std::string> keks;
  std::vector<std::string> context;
  std::string input, output;
  bool force = false;
  unsigned threads = 0;
  OutputOptions out;
};

int RunDecrypt(const DecryptCliOptions& o) {
  const bool data_on_stdout = o.output == "-";
  auto fail = [&](const Error& e) { return ReportError(e, o.out, data_on_stdout); };

  DecryptOptions options;
  auto req = ParseRequirements(o.context);
  if (!req.ok()) return fail(req.error());
  options.required_context = std::move(*req);
  options.stream.threads = o.threads;
  auto providers = BuildProviders(o.keks);
  if (!providers.ok()) return fail(providers.error());
  auto in = InputFile::Open(o.input);
  if (!in.ok()) return fail(in.error());
  // Plaintext model weights: readable by the owner only.
  auto output = OpenOutput(o.output, **in, 0600, o.force);
  if (!output.ok()) return fail(output.error());
  options.stream.progress = MakeProgress("decrypting", (*in)->size(), o.out.quiet);

  // On failure `output` is destroyed uncommitted: the temporary file is removed and OUT
  // never appears. On stdout only whole authenticated chunks were written.
  auto summary = DecryptContainer(**in, output->sink(), *providers, options);
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
      "  hmodctl decrypt --kek pass: -o - backup.hmod | tar x");
  sub.add_option("--kek", o->keks, "Key provider URI to try (repeatable, tried in order)")
      ->required()
      ->type_name("URI");
  sub.add_option("--context", o->context,
                 "Require context key=value to match, or a bare key to exist (repeatable)")
      ->type_name("K[=V]");
  sub.add_option("-o,--output", o->output, "Output file, or - for stdout")->required();
  sub.add_option("input", o->input, "Input .hmod file, or - for stdin")->required();
  sub.add_flag("-f,--force", o->force, "Replace OUT if it exists");
  sub.add_option("--threads", o->threads, "Crypto threads (default: one per core)");
  AddOutputOptions(sub, o->out);
  run = [o] { return RunDecrypt(*o); };
}

}  // namespace hmod::cli
