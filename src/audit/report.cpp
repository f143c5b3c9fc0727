// The machine-readable reports: hmodctl's own --json document and a SARIF 2.1.0 log
// (docs/AUDIT.md "Output"; shapes checked by tests/vectors/audit/*.schema.json).
#include <cctype>

#include "audit/audit.h"
#include "hmod/crypto.h"
#include "io/percent_encoding.h"

namespace hmod::audit {
namespace {

constexpr const char* kSarifSchema =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

nlohmann::json FindingJson(const Finding& f) {
  nlohmann::json j = {{"rule", f.rule},         {"level", LevelName(f.level)}, {"target", f.target},
                      {"location", f.location}, {"message", f.message},        {"details", f.details}};
  if (!f.remediation.empty()) j["remediation"] = f.remediation;
  return j;
}

// SARIF locations are URI references: percent-encode what RFC 3986 does not allow as is.
// A leading "./" is dropped: code scanning matches repository-relative paths.
std::string UriReference(std::string_view s) {
  while (s.substr(0, 2) == "./") s.remove_prefix(2);
  return PercentEncode(s, "/:@!$&'()*+,;=[]");
}

const char* SarifLevel(Level l) { return l == Level::kFail ? "error" : l == Level::kWarn ? "warning" : "none"; }

}  // namespace

nlohmann::json ReportJson(const Report& report, bool fail_on_warn) {
  nlohmann::json findings = nlohmann::json::array();
  size_t counts[3] = {0, 0, 0};
  for (const auto& f : report.findings) {
    findings.push_back(FindingJson(f));
    ++counts[static_cast<int>(f.level)];
  }
  nlohmann::json errors = nlohmann::json::array();
  for (const auto& e : report.errors) {
    nlohmann::json j = {{"target", e.target}, {"message", e.message}};
    if (!e.hint.empty()) j["hint"] = e.hint;
    errors.push_back(j);
  }
  const int code = ExitCodeOf(report, fail_on_warn);
  return {{"ok", code == 0},
          {"targets", report.targets},
          {"summary", {{"pass", counts[0]}, {"warn", counts[1]}, {"fail", counts[2]}, {"errors", errors.size()}}},
          {"findings", findings},
          {"errors", errors},
          {"fail_on", fail_on_warn ? "warn" : "fail"},
          {"exit_code", code}};
}

nlohmann::json ReportSarif(const Report& report, const std::string& tool_version) {
  const auto& rules = Rules();
  nlohmann::json rules_json = nlohmann::json::array();
  for (const auto& r : rules) {
    rules_json.push_back({{"id", r.id},
                          {"name", r.id},
                          {"shortDescription", {{"text", r.title}}},
                          {"fullDescription", {{"text", r.rationale}}},
                          {"help", {{"text", std::string(r.title) + ": see docs/AUDIT.md"}}},
                          {"defaultConfiguration", {{"level", "warning"}}}});
  }
  // Code scanning turns every result into an alert, so only WARN and FAIL are results; the
  // PASS verdicts stay in --json.
  nlohmann::json results = nlohmann::json::array();
  for (const auto& f : report.findings) {
    if (f.level == Level::kPass) continue;
    size_t index = 0;
    while (index < rules.size() && f.rule != rules[index].id) ++index;
    std::string text = f.message;
    if (!f.remediation.empty()) text += " Fix: " + f.remediation;
    const auto digest = Sha256(AsBytes(f.rule + "\n" + f.location + "\n" + f.message));
    nlohmann::json result = {
        {"ruleId", f.rule},
        {"level", SarifLevel(f.level)},
        {"kind", "fail"},
        {"message", {{"text", text}}},
        {"locations", {{{"physicalLocation", {{"artifactLocation", {{"uri", UriReference(f.location)}}}}}}}},
        {"partialFingerprints", {{"hmodFinding/v1", HexEncode(ByteSpan(digest).first(16))}}},
        {"properties", {{"target", f.target}, {"details", f.details}}}};
    if (index < rules.size()) result["ruleIndex"] = index;
    results.push_back(result);
  }
  nlohmann::json notifications = nlohmann::json::array();
  for (const auto& e : report.errors) {
    notifications.push_back({{"level", "error"},
                             {"message", {{"text", e.target + ": " + e.message + (e.hint.empty() ? "" : " (" + e.hint + ")")}}}});
  }
  nlohmann::json invocation = {{"executionSuccessful", report.errors.empty()}};
  if (!notifications.empty()) invocation["toolExecutionNotifications"] = notifications;
  return {{"$schema", kSarifSchema},
          {"version", "2.1.0"},
          {"runs",
           {{{"tool",
              {{"driver",
                {{"name", "hmodctl"},
                 {"version", tool_version},
                 {"rules", rules_json}}}}},
             {"invocations", {invocation}},
             {"results", results}}}}};
}

}  // namespace hmod::audit
