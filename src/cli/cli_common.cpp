#include "cli/cli_common.h"

#include "hmod/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <iostream>

namespace hmod::cli {

int ExitCodeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kUsage: return kExitUsage;
    case ErrorCode::kIo: return kExitIo;
    case ErrorCode::kFormat:
    case ErrorCode::kUnsupported: return kExitFormat;
    case ErrorCode::kNoMatchingKey: return kExitNoKey;
    case ErrorCode::kAuthFailed: return kExitAuth;
    case ErrorCode::kContextMismatch: return kExitContext;
    case ErrorCode::kKeyFile: return kExitKeyFile;
    case ErrorCode::kLimit: return kExitLimit;
    case ErrorCode::kCrypto: return kExitInternal;
  }
  return kExitInternal;
}

void AddOutputOptions(CLI::App& sub, OutputOptions& out) {
  sub.add_flag("--json", out.json, "Print the result as one JSON object (for scripts and CI)");
  sub.add_flag("-q,--quiet", out.quiet, "No progress bar or informational messages");
}

void PrintJson(const nlohmann::json& j, bool result_to_stderr) {
  const std::string text = j.dump() + "\n";
  std::fputs(text.c_str(), result_to_stderr ? stderr : stdout);
  std::fflush(result_to_stderr ? stderr : stdout);
}

int ReportError(const Error& error, const OutputOptions& out, bool result_to_stderr) {
  FinishProgress();
  std::fprintf(stderr, "hmodctl: error: %s\n", error.message.c_str());
  if (!error.hint.empty()) std::fprintf(stderr, "hmodctl: hint: %s\n", error.hint.c_str());
  const int code = ExitCodeFor(error.code);
  if (out.json) {
    nlohmann::json j = {{"ok", false},
                        {"error", {{"code", ErrorCodeName(error.code)}, {"message", error.message}}},
                        {"exit_code", code}};
    if (!error.hint.empty()) j["error"]["hint"] = error.hint;
    PrintJson(j, result_to_stderr);
  }
  return code;
}

void AddKeyOptions(CLI::App& sub, KeyOptions& keys, bool decrypting) {
  sub.add_option("--audit-log", keys.audit_log,
                 "Append one JSON line per key use (wrap/unwrap) to FILE; default $HMOD_AUDIT_LOG")
      ->type_name("FILE");
  if (decrypting) {
    sub.add_option("--decryption-order", keys.decryption_order,
                   "Provider types to try first, comma-separated (default: file,pass,x25519,license,pkcs11,aws-kms\n"
                   "i.e. local before network); default $HMOD_DECRYPTION_ORDER")
        ->type_name("LIST");
  }
}

Result<ProviderList> BuildProviders(const std::vector<std::string>& uris, const KeyOptions& keys,
                                    const std::string& file, bool decrypting) {
  ProviderList list;
  for (const auto& uri : uris) {
    HMOD_ASSIGN_OR_RETURN(auto p, ProviderFromUri(uri));
    list.push_back(std::move(p));
  }
  if (list.empty()) {
    return MakeError(ErrorCode::kUsage, "no key given", "pass --kek file:KEYFILE (see: hmodctl keygen --help)");
  }
  if (decrypting) {
    std::string order = keys.decryption_order;
    if (order.empty() && std::getenv("HMOD_DECRYPTION_ORDER")) order = std::getenv("HMOD_DECRYPTION_ORDER");
    if (order.empty()) order = "file,pass,x25519,license,pkcs11,aws-kms";
    std::vector<std::string> ids;
    for (size_t pos = 0; pos <= order.size();) {
      size_t comma = order.find(',', pos);
      if (comma == std::string::npos) comma = order.size();
      ids.push_back(order.substr(pos, comma - pos));
      pos = comma + 1;
    }
    static const char* kKnown[] = {"file", "pass", "x25519", "license", "pkcs11", "aws-kms"};
    for (const auto& id : ids) {
      if (std::find_if(std::begin(kKnown), std::end(kKnown), [&](const char* k) { return id == k; }) == std::end(kKnown)) {
        return MakeError(ErrorCode::kUsage, "unknown provider type '" + id + "' in --decryption-order",
                         "use a comma-separated list of: file, pass, x25519, license, pkcs11, aws-kms");
      }
    }
    auto rank = [&](const std::unique_ptr<KeyProvider>& p) {
      auto it = std::find(ids.begin(), ids.end(), p->provider_id());
      return it == ids.end() ? ids.size() + (p->is_local() ? 0 : 1) : static_cast<size_t>(it - ids.begin());
    };
    std::stable_sort(list.begin(), list.end(), [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
  }
  std::string audit = keys.audit_log;
  if (audit.empty() && std::getenv("HMOD_AUDIT_LOG")) audit = std::getenv("HMOD_AUDIT_LOG");
  if (!audit.empty()) {
    HMOD_ASSIGN_OR_RETURN(auto log, AuditLog::Open(audit));
    AuditProviders(list, log, file);
  }
  return list;
}

nlohmann::json WrappedKeysJson(const Header& header) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& k : header.wrapped_keys) {
    arr.push_back({{"provider", k.provider_id}, {"key_id", k.key_id}, {"wrapped_bytes", k.wrapped.size()}});
  }
  return arr;
}

nlohmann::json ContextJson(const EncryptionContext& context) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : context) j[k] = v;
  return j;
}

Result<Output> OpenOutput(const std::string& path, const InputFile& input, unsigned mode,
                          bool force) {
  Output out;
  if (path == "-") {
    if (::isatty(STDOUT_FILENO)) {
      return MakeError(ErrorCode::kUsage, "refusing to write binary data to a terminal",
                       "redirect stdout or use -o FILE");
    }
    out.stream_sink = std::make_unique<FdSink>(STDOUT_FILENO, "<stdout>");
    return out;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return MakeError(ErrorCode::kIo, "cannot open " + path + ": " + std::strerror(errno));
    out.device_fd = std::shared_ptr<const int>(new int(fd), [](const int* p) {
      ::close(*p);
      delete p;
    });
    out.stream_sink = std::make_unique<FdSink>(fd, path);
    return out;
  }
  if ((input.path() == path && path != "<stdin>") || IsSameFile(input, path)) {
    return MakeError(ErrorCode::kUsage, "input and output are the same file",
                     "write to a new file; hmodctl never modifies its input");
  }
  HMOD_ASSIGN_OR_RETURN(out.file, AtomicFile::Create(path, mode, force));
  // Either way the output is about the input's size: plaintext + 1/4096 of tags + headers.
  if (input.is_regular()) out.file->Reserve(input.size() + input.size() / 2048 + (1u << 20));
  return out;
}

namespace {
bool g_progress_shown = false;
}

ProgressFn MakeProgress(const char* verb, uint64_t total_bytes, bool quiet) {
  if (quiet || !::isatty(STDERR_FILENO) || total_bytes < (64u << 20)) return nullptr;
  auto start = std::chrono::steady_clock::now();
  auto last = start - std::chrono::seconds(1);
  return [=](uint64_t done) mutable {
    auto now = std::chrono::steady_clock::now();
    if (now - last < std::chrono::milliseconds(100) && done < total_bytes) return;
    last = now;
    const double secs = std::chrono::duration<double>(now - start).count();
    const double pct = total_bytes ? 100.0 * static_cast<double>(done) / static_cast<double>(total_bytes) : 100.0;
    const int width = 30, filled = static_cast<int>(pct / 100.0 * width);
    std::string bar(static_cast<size_t>(std::min(filled, width)), '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r%s [%s] %5.1f%%  %.0f / %.0f MiB  %.0f MiB/s ", verb, bar.c_str(), pct,
                 static_cast<double>(done) / 1048576.0, static_cast<double>(total_bytes) / 1048576.0,
                 secs > 0 ? static_cast<double>(done) / 1048576.0 / secs : 0.0);
    g_progress_shown = true;
  };
}

void FinishProgress() {
  if (g_progress_shown) std::fputs("\n", stderr);
  g_progress_shown = false;
}

}  // namespace hmod::cli

namespace hmod::cli {

Result<std::vector<ContextRequirement>> ParseRequirements(const std::vector<std::string>& args) {
  std::vector<ContextRequirement> out;
  for (const auto& a : args) {
    HMOD_ASSIGN_OR_RETURN(auto r, ParseContextRequirement(a));
    out.push_back(std::move(r));
  }
  return out;
}

nlohmann::json OpenedJson(const DecryptSummary& s) {
  return {{"ok", true},
          {"suite", SuiteName(s.header.suite)},
          {"file_id", HexEncode(s.header.file_id)},
          {"context", ContextJson(s.header.context)},
          {"opened_by", s.opened_by},
          {"plaintext_bytes", s.plaintext_bytes}};
}

}  // namespace hmod::cli
