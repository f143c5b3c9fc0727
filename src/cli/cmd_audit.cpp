// hmodctl audit: keyless checks of model trees, S3 buckets and TLS endpoints, for people and
// CI (docs/AUDIT.md). Exit codes differ from the other commands: 0 nothing failed, 1 a FAIL
// (or a WARN with --fail-on warn), 2 the audit itself could not run.
#include <algorithm>
#include <cctype>
#include <cstdio>

#include "audit/audit.h"
#include "cli/cli_common.h"
#include "cli/commands.h"

namespace hmod::cli {
namespace {

constexpr int kAuditUsage = 2;
constexpr const char* kToolVersion = "0.1.0";

struct AuditOptions {
  std::vector<std::string> targets;
  bool sarif = false;
  std::string fail_on = "fail";
  std::string ca, cert, key;
  double timeout_s = 5;
  int jobs = 16;
  OutputOptions out;
};

// Paths, object keys and header strings come from others: no control bytes to the terminal.
std::string Printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) out.push_back(c < 0x20 || c == 0x7F ? '?' : static_cast<char>(c));
  return out;
}

void PrintTable(const audit::Report& report, bool quiet) {
  std::vector<const audit::Finding*> rows;
  for (const auto& f : report.findings) {
    if (!quiet || f.level != audit::Level::kPass) rows.push_back(&f);
  }
  // Worst first; discovery order within a level.
  std::stable_sort(rows.begin(), rows.end(), [](auto* a, auto* b) { return a->level > b->level; });
  if (!rows.empty()) std::printf("%-5s %-28s %s\n", "LEVEL", "CHECK", "LOCATION: FINDING");
  for (const auto* f : rows) {
    std::string level = audit::LevelName(f->level);
    for (char& c : level) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::printf("%-5s %-28s %s: %s\n", level.c_str(), f->rule.c_str(), Printable(f->location).c_str(),
                Printable(f->message).c_str());
    if (!f->remediation.empty()) std::printf("%-34s fix: %s\n", "", Printable(f->remediation).c_str());
  }
  size_t counts[3] = {0, 0, 0};
  for (const auto& f : report.findings) ++counts[static_cast<int>(f.level)];
  std::printf("%zu fail, %zu warn, %zu pass", counts[2], counts[1], counts[0]);
  if (!report.errors.empty()) std::printf("; %zu target(s) could not be audited", report.errors.size());
  std::printf("\n");
}

int RunAuditCommand(const AuditOptions& o) {
  std::vector<audit::Target> targets;
  for (const auto& text : o.targets) {
    auto t = audit::ParseTarget(text);
    if (!t.ok()) {
      ReportError(t.error(), o.out);
      return kAuditUsage;
    }
    targets.push_back(*t);
  }
  if (!o.cert.empty() != !o.key.empty()) {
    ReportError(MakeError(ErrorCode::kUsage, "--cert and --key go together"), o.out);
    return kAuditUsage;
  }
  audit::Options options;
  options.ca_file = o.ca;
  options.cert_file = o.cert;
  options.key_file = o.key;
  options.tls_timeout = std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000));
  options.s3_jobs = o.jobs;

  const audit::Report report = audit::RunAudit(targets, options);
  const bool fail_on_warn = o.fail_on == "warn";
  for (const auto& e : report.errors) {
    std::fprintf(stderr, "hmodctl: error: %s: %s\n", Printable(e.target).c_str(), Printable(e.message).c_str());
    if (!e.hint.empty()) std::fprintf(stderr, "hmodctl: hint: %s\n", Printable(e.hint).c_str());
  }
  if (o.sarif) {
    std::printf("%s\n", audit::ReportSarif(report, kToolVersion).dump(2).c_str());
  } else if (o.out.json) {
    PrintJson(audit::ReportJson(report, fail_on_warn));
  } else {
    PrintTable(report, o.out.quiet);
  }
  return audit::ExitCodeOf(report, fail_on_warn);
}

}  // namespace

void SetupAudit(CLI::App& sub, std::function<int()>& run) {
  auto o = std::make_shared<AuditOptions>();
  sub.description(
      "Check, without any key, where model weights are exposed. A TARGET is a local path (searched\n"
      "recursively), s3://bucket[/prefix] (AWS credentials with read access; AWS_ENDPOINT_URL_S3\n"
      "and the other AWS variables apply) or tls://host:port. Each check reports PASS, WARN or\n"
      "FAIL with a remediation (docs/AUDIT.md lists them all).\n"
      "Exit codes: 0 nothing failed, 1 a FAIL (or a WARN with --fail-on warn), 2 the audit\n"
      "could not run (bad arguments, unreachable target, no credentials).\n\n"
      "Examples:\n  hmodctl audit ./models /dev/shm\n"
      "  hmodctl audit --sarif s3://ml-artifacts/models > audit.sarif\n"
      "  hmodctl audit --fail-on warn --ca corp-ca.pem tls://registry.internal:443");
  sub.add_option("targets", o->targets, "Local paths, s3://bucket[/prefix], tls://host:port")->required();
  auto* json = sub.add_flag("--json", o->out.json, "Print the report as one JSON object");
  sub.add_flag("--sarif", o->sarif, "Print the report as SARIF 2.1.0 (CI code scanning)")->excludes(json);
  sub.add_flag("-q,--quiet", o->out.quiet, "Table output: leave out PASS lines");
  sub.add_option("--fail-on", o->fail_on, "Lowest level that makes the exit code 1 (default: fail)")
      ->check(CLI::IsMember({"fail", "warn"}))
      ->type_name("fail|warn");
  sub.add_option("--ca", o->ca, "TLS: trust these CA certificates (PEM) instead of the system store")
      ->type_name("FILE")
      ->check(CLI::ExistingFile);
  sub.add_option("--cert", o->cert, "TLS: present this client certificate (PEM)")->type_name("FILE")->check(CLI::ExistingFile);
  sub.add_option("--key", o->key, "TLS: the client certificate's private key (PEM)")->type_name("FILE")->check(CLI::ExistingFile);
  sub.add_option("--timeout", o->timeout_s, "TLS: seconds per connection (default 5)")
      ->check(CLI::Range(0.1, 120.0))
      ->type_name("SECONDS");
  sub.add_option("--jobs", o->jobs, "S3: concurrent object requests (default 16)")->check(CLI::Range(1, 128))->type_name("N");
  run = [o] { return RunAuditCommand(*o); };
}

}  // namespace hmod::cli
