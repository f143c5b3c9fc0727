// One setup function per subcommand, each in its own cmd_<name>.cpp.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace hmod::cli {

void SetupKeygen(CLI::App& sub, std::function<int()>& run);
void SetupEncrypt(CLI::App& sub, std::function<int()>& run);
void SetupDecrypt(CLI::App& sub, std::function<int()>& run);
void SetupVerify(CLI::App& sub, std::function<int()>& run);
void SetupInspect(CLI::App& sub, std::function<int()>& run);
void SetupLicense(CLI::App& sub, std::function<int()>& run);
void SetupRotate(CLI::App& sub, std::function<int()>& run);
void SetupKms(CLI::App& sub, std::function<int()>& run);
void SetupAudit(CLI::App& sub, std::function<int()>& run);

}  // namespace hmod::cli
