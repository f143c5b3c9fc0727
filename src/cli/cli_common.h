// Shared by the subcommands: exit codes, error and JSON output, providers, progress.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hmod/container.h"
#include "hmod/io.h"
#include "hmod/key_provider.h"

namespace hmod::cli {

// Exit codes (docs/CLI.md). Stable: scripts and CI jobs gate on them.
enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 2,
  kExitIo = 3,
  kExitFormat = 4,
  kExitNoKey = 5,
  kExitAuth = 6,
  kExitContext = 7,
  kExitKeyFile = 8,
  kExitLimit = 9,
  kExitInternal = 10,
};

int ExitCodeFor(ErrorCode code);

// A subcommand: `setup` declares its options on `sub` and stores its runner in `run`.
struct Command {
  const char* name;
  const char* summary;
  void (*setup)(CLI::App& sub, std::function<int()>& run);
};

// Output conventions shared by all subcommands.
struct OutputOptions {
  bool json = false;
  bool quiet = false;
};
void AddOutputOptions(CLI::App& sub, OutputOptions& out);

// Prints "hmodctl: error: ..." (and "hint: ...") to stderr, plus a JSON error object on
// the result stream with --json. Returns the exit code for the error.
int ReportError(const Error& error, const OutputOptions& out, bool result_to_stderr = false);
// Prints a JSON result (with "ok": true) to stdout, or stderr if stdout carries data.
void PrintJson(const nlohmann::json& j, bool result_to_stderr = false);

// How keys are used: the audit log, and the order providers are tried in.
struct KeyOptions {
  std::string audit_log;         // --audit-log, else $HMOD_AUDIT_LOG
  std::string decryption_order;  // --decryption-order, else $HMOD_DECRYPTION_ORDER
};
void AddKeyOptions(CLI::App& sub, KeyOptions& keys, bool decrypting);

// Builds the providers named by --kek URIs. When decrypting they are tried in the
// decryption order (default: local providers before network ones); with an audit log, every
// wrap and unwrap of `file` is recorded.
Result<ProviderList> BuildProviders(const std::vector<std::string>& uris, const KeyOptions& keys,
                                    const std::string& file, bool decrypting);

// JSON description of the header fields that say who can open a file.
nlohmann::json WrappedKeysJson(const Header& header);
nlohmann::json ContextJson(const EncryptionContext& context);

// Output path handling: "-" is stdout (refused if it is a terminal); anything else is an
// AtomicFile created with `mode`. Refuses writing onto the input itself.
// Where OUT goes: a new file (atomic), stdout ("-"), or a device or FIFO that already
// exists (/dev/null, a named pipe), written as it is, like a pipe.
struct Output {
  std::unique_ptr<AtomicFile> file;  // null for stdout and devices
  std::unique_ptr<FdSink> stream_sink;
  std::shared_ptr<const int> device_fd;  // closes the device when the last copy goes
  ByteSink& sink() { return file ? static_cast<ByteSink&>(*file) : *stream_sink; }
  Status Commit() { return file ? file->Commit() : OkStatus(); }
};
Result<Output> OpenOutput(const std::string& path, const InputFile& input, unsigned mode,
                          bool force);

// A progress bar on stderr when it is a terminal and the work is large enough.
ProgressFn MakeProgress(const char* verb, uint64_t total_bytes, bool quiet);
void FinishProgress();

}  // namespace hmod::cli

namespace hmod::cli {
// Parses repeated --context arguments for decrypt/verify: k=v must match, bare k must exist.
Result<std::vector<ContextRequirement>> ParseRequirements(const std::vector<std::string>& args);
// The JSON fields decrypt and verify both report.
nlohmann::json OpenedJson(const DecryptSummary& s);
}  // namespace hmod::cli
