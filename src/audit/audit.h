// `hmodctl audit` (docs/AUDIT.md): keyless checks of local model trees, S3 buckets and TLS
// endpoints. Every check yields findings at PASS, WARN or FAIL; a target that cannot be
// audited at all (unreachable, no credentials) is an error, which is not a finding.
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "hmod/result.h"

namespace hmod::audit {

enum class Level { kPass, kWarn, kFail };
// "pass", "warn", "fail".
const char* LevelName(Level level);

// One check's verdict on one subject.
struct Finding {
  std::string rule;         // a Rule id: "local.plaintext-model"
  Level level = Level::kPass;
  std::string target;       // the TARGET argument this came from
  std::string location;     // the subject: a path, s3://bucket/key, tls://host:port
  std::string message;      // one line: what was found
  std::string remediation;  // one line: what to do; empty on PASS
  nlohmann::json details = nlohmann::json::object();  // structured facts for --json
};

// A target that could not be audited (exit code 2).
struct TargetError {
  std::string target;
  std::string message;
  std::string hint;
};

struct Report {
  std::vector<std::string> targets;
  std::vector<Finding> findings;
  std::vector<TargetError> errors;
};

// The catalogue of checks: ids are stable (SARIF ruleId, docs/AUDIT.md).
struct Rule {
  const char* id;
  const char* title;      // short description
  const char* rationale;  // why it matters; SARIF fullDescription
};
const std::vector<Rule>& Rules();
const Rule* FindRule(std::string_view id);

// A parsed TARGET argument.
struct Target {
  enum class Kind { kLocal, kS3, kTls };
  Kind kind = Kind::kLocal;
  std::string text;    // as given
  std::string path;    // kLocal
  std::string bucket;  // kS3
  std::string prefix;  // kS3, may be empty
  std::string host;    // kTls
  uint16_t port = 0;   // kTls
};
// "PATH", "s3://bucket[/prefix]" or "tls://host:port" ("tls://[::1]:443" for IPv6).
Result<Target> ParseTarget(const std::string& text);

// Looks up an environment variable (AWS settings); tests pass their own.
using EnvFn = std::function<std::optional<std::string>(const std::string& name)>;

struct Options {
  // TLS: trust anchors (PEM) instead of the system store, and a client certificate to present.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::chrono::milliseconds tls_timeout{5000};
  int s3_jobs = 16;               // concurrent object requests
  int s3_page_size = 1000;        // ListObjectsV2 max-keys (tests use small pages)
  EnvFn env;                      // AWS settings; null means the process environment
};

// Each runs every check of its kind against one target and appends the findings to
// `report`. An error means the target could not be audited; findings already appended stay.
Status AuditLocal(const Target& target, const Options& options, Report& report);
Status AuditS3(const Target& target, const Options& options, Report& report);
Status AuditTls(const Target& target, const Options& options, Report& report);

// Runs every target (errors are recorded in report.errors, never returned).
Report RunAudit(const std::vector<Target>& targets, const Options& options);

// 0 nothing failed, 1 a FAIL (or a WARN when fail_on_warn), 2 some target could not be audited.
int ExitCodeOf(const Report& report, bool fail_on_warn);

// The --json document and the SARIF 2.1.0 log (docs/AUDIT.md).
nlohmann::json ReportJson(const Report& report, bool fail_on_warn);
nlohmann::json ReportSarif(const Report& report, const std::string& tool_version);

}  // namespace hmod::audit
