// hmodctl: parse, dispatch, exit. Each subcommand lives in src/cli/cmd_<name>.cpp.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "hmod/crypto.h"

namespace {

constexpr hmod::cli::Command kCommands[] = {
    {"keygen", "Create a key file", hmod::cli::SetupKeygen},
    {"encrypt", "Encrypt a file into an .hmod container", hmod::cli::SetupEncrypt},
    {"decrypt", "Decrypt an .hmod container", hmod::cli::SetupDecrypt},
    {"verify", "Check every tag of an .hmod container without writing anything", hmod::cli::SetupVerify},
    {"inspect", "Show who can open an .hmod file and what it holds (no key needed)", hmod::cli::SetupInspect},
    {"license", "Issue per-device licenses for one shared model", hmod::cli::SetupLicense},
    {"rotate", "Re-wrap data keys for a new set of KEKs (or --reencrypt everything)", hmod::cli::SetupRotate},
    {"kms", "Manage AWS KMS key rotation (enable, status, rotate-now)", hmod::cli::SetupKms},
    {"audit", "Find unprotected models, keys, buckets and endpoints (no key needed)", hmod::cli::SetupAudit},
};

}  // namespace

int main(int argc, char** argv) {
  if (!hmod::InitCrypto().ok()) {
    std::fputs("hmodctl: error: crypto library failed to initialise\n", stderr);
    return hmod::cli::kExitInternal;
  }
  CLI::App app{"hmodctl: keep ML model weights encrypted at rest and in transit.\n"
               "Run 'hmodctl COMMAND --help' for the options and an example of each command.\n"
               "Exit codes: 0 ok, 2 usage, 3 I/O, 4 format, 5 no key, 6 authentication failed,\n"
               "7 context mismatch, 8 key file, 9 limit, 10 internal (docs/CLI.md)."};
  app.set_version_flag("--version", "hmodctl 0.1.0 (.hmod format v1)");
  app.require_subcommand(1);
  constexpr size_t kCount = sizeof(kCommands) / sizeof(kCommands[0]);
  std::function<int()> runners[kCount];
  CLI::App* subs[kCount];
  for (size_t i = 0; i < kCount; ++i) {
    subs[i] = app.add_subcommand(kCommands[i].name, kCommands[i].summary);
    kCommands[i].setup(*subs[i], runners[i]);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : hmod::cli::kExitUsage;
  }
  for (size_t i = 0; i < kCount; ++i) {
    if (subs[i]->parsed()) return runners[i]();
  }
  return hmod::cli::kExitUsage;
}
