// hmodctl verify: authenticate the header and every chunk; write nothing.
#include <cstdio>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "cli/legacy_commands.h"
#include "hmod/signature.h"

namespace hmod::cli {
namespace {

struct VerifyCliOptions {
  std::vector<std::string> keks;
  std::vector<std::string> context;
  std::string pubkey;
  std::string input;
  unsigned threads = 0;
  KeyOptions keys;
  OutputOptions out;
  LegacyCliOptions legacy;
};

// Keyless provenance check (FORMAT.md §6.5): the publisher's public key is all it needs.
Status CheckSignature(const VerifyCliOptions& o) {
  HMOD_ASSIGN_OR_RETURN(Ed25519PublicKey pk, LoadPublicKey(o.pubkey));
  HMOD_ASSIGN_OR_RETURN(auto in, InputFile::Open(o.input));
  if (!in->is_regular()) return MakeError(ErrorCode::kUnsupported, "--pubkey needs a file, not a pipe");
  HMOD_ASSIGN_OR_RETURN(ParsedHeader parsed, ReadHeader(*in));
  return VerifyFileSignature(*in, parsed, pk);
}

int RunVerify(const VerifyCliOptions& o) {
  auto fail = [&](const Error& e) { return ReportError(e, o.out); };
  // Legacy ENCMODEL/ENVMODEL inputs (docs/LEGACY.md) are recognised by their magic.
  auto in = InputFile::Open(o.input);
  if (!in.ok()) return fail(in.error());
  SniffedInput sniffed(**in);
  auto legacy = sniffed.Sniff();
  if (!legacy.ok()) return fail(legacy.error());
  if (*legacy) return RunLegacy(**in, **legacy, o.legacy, {"", false, true, o.context, o.out, o.keys.audit_log});
  if (o.keks.empty() && o.pubkey.empty()) {
    return fail(MakeError(ErrorCode::kUsage, "nothing to verify with",
                          "pass --kek URI (integrity: every tag) and/or --pubkey FILE (publisher signature)"));
  }
  if (!o.pubkey.empty()) {
    if (Status st = CheckSignature(o); !st.ok()) return fail(st.error());
    if (o.keks.empty()) {
      if (o.out.json) {
        PrintJson({{"ok", true}, {"input", o.input}, {"signature", "valid"}, {"verified", true}});
      } else if (!o.out.quiet) {
        std::printf("OK %s: publisher signature valid for %s (no decryption key used)\n", o.input.c_str(),
                    o.pubkey.c_str());
      }
      return kExitOk;
    }
  }
  DecryptOptions options;
  auto req = ParseRequirements(o.context);
  if (!req.ok()) return fail(req.error());
  options.required_context = std::move(*req);
  options.stream.threads = o.threads;
  auto providers = BuildProviders(o.keks, o.keys, o.input, true);
  if (!providers.ok()) return fail(providers.error());
  options.stream.progress = MakeProgress("verifying", (*in)->size(), o.out.quiet);

  NullSink discard;
  auto summary = DecryptContainer(SequentialInput(**in, sniffed), discard, *providers, options);
  if (!summary.ok()) return fail(summary.error());
  FinishProgress();
  if (o.out.json) {
    auto j = OpenedJson(*summary);
    j["input"] = (*in)->path();
    j["verified"] = true;
    if (!o.pubkey.empty()) j["signature"] = "valid";
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
      "With --pubkey, checks the publisher's signature over every byte of a signed per-tensor\n"
      "file using only the public key: auditors need no decryption key.\n\n"
      "Examples (CI gates):\n"
      "  hmodctl verify --kek file:team.key --context model=llama --json llama.hmod\n"
      "  hmodctl verify --pubkey publisher.pub llama.hmod\n\n"
      "Legacy ENCMODEL/ENVMODEL files (docs/LEGACY.md): GCM tag and recorded SHA-256, e.g.\n"
      "  hmodctl verify --legacy-key raw.key llama.enc");
  sub.add_option("--kek", o->keks, "Key provider URI to try (repeatable)")->type_name("URI")
      ->allow_extra_args(false);
  sub.add_option("--pubkey", o->pubkey,
                 "Check the publisher's Ed25519 signature with this public key (no decryption key needed)")
      ->type_name("FILE");
  sub.add_option("--context", o->context, "Require context key=value, or a bare key (repeatable)")
      ->type_name("K[=V]")
      ->allow_extra_args(false);
  sub.add_option("input", o->input, "Input .hmod file, or - for stdin")->required();
  sub.add_option("--threads", o->threads, "Crypto threads (default: one per core)");
  AddOutputOptions(sub, o->out);
  AddKeyOptions(sub, o->keys, true);
  AddLegacyOptions(sub, o->legacy);
  run = [o] { return RunVerify(*o); };
}

}  // namespace hmod::cli
