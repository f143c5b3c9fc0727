// hmodctl verify: authenticate the header and every chunk; write nothing.
#include <cstdio>

#include "cli/cli_common.h"
#include "cli/commands.h"

namespace hmod::cli {
namespace {

struct VerifyCliOptions {
  std::vector<std::string> keks;
  std::vector<std::string> context;
  std::string input;
  unsigned threads = 0;
  OutputOptions out;
};

int RunVerify(const VerifyCliOptions& o) {
  auto fail = [&](const Error& e) { return ReportError(e, o.out); };
  DecryptOptions options;
  auto req = ParseRequirements(o.context);
  if (!req.ok()) return fail(req.error());
  options.required_context = std::move(*req);
  options.stream.threads = o.threads;
  auto providers = BuildProviders(o.keks);
  if (!providers.ok()) return fail(providers.error());
  auto in = InputFile::Open(o.input);
  if (!in.ok()) return fail(in.error());
  options.stream.progress = MakeProgress("verifying", (*in)->size(), o.out.quiet);

  NullSink discard;
  auto summary = DecryptContainer(**in, discard, *providers, options);
  if (!summary.ok()) return fail(summary.error());
  FinishProgress();
  if (o.out.json) {
    auto j = OpenedJson(*summary);
    j["input"] = (*in)->path();
    j["verified"] = true;
    PrintJson(j);
  } else if (!o.out.quiet) {
    std::printf("OK %s: header and all chunks authentic (%llu bytes, %s, opened by %s)\n",
                (*in)->path().c_str(), static_cast<unsigned long long>(summary->plaintext_bytes),
                SuiteName(summary->header.suite), summary->opened_by.c_str());
  }
  return kExitOk;
}

}  // namespace

void SetupVerify(CLI::App& sub, std::function<int()>& run) {
  auto o = std::make_shared<VerifyCliOptions>();
  sub.description(
      "Check that IN is intact and opens with one of the given keys: the header MAC, the key\n"
      "commitment and every chunk's tag. Nothing is written. Exit code 0 only if all of it\n"
      "holds (6 = tampered or corrupted, 5 = none of the keys can open it).\n\n"
      "Example (CI gate):\n"
      "  hmodctl verify --kek file:team.key --context model=llama --json llama.hmod");
  sub.add_option("--kek", o->keks, "Key provider URI to try (repeatable)")->required()->type_name("URI");
  sub.add_option("--context", o->context, "Require context key=value, or a bare key (repeatable)")
      ->type_name("K[=V]");
  sub.add_option("input", o->input, "Input .hmod file, or - for stdin")->required();
  sub.add_option("--threads", o->threads, "Crypto threads (default: one per core)");
  AddOutputOptions(sub, o->out);
  run = [o] { return RunVerify(*o); };
}

}  // namespace hmod::cli
