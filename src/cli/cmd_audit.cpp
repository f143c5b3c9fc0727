// hmodctl audit: placeholder until its implementation lands (owned by one worker).
#include <cstdio>

#include "cli/cli_common.h"
#include "cli/commands.h"

namespace hmod::cli {

void SetupAudit(CLI::App& sub, std::function<int()>& run) {
  (void)sub;
  run = [] {
    std::fputs("hmodctl: error: 'audit' is not implemented yet\n", stderr);
    return kExitInternal;
  };
}

}  // namespace hmod::cli
