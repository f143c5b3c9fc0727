// Running `hmodctl audit --json` and picking findings out of its report.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/test_util.h"

namespace hmod::testing {

struct AuditRun {
  int exit_code = -1;
  nlohmann::json doc;  // the --json report (null if stdout was not JSON)
  std::string out, err;
};

inline AuditRun RunAudit(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) {
  std::vector<std::string> all = {"audit", "--json"};
  all.insert(all.end(), args.begin(), args.end());
  CliResult r = RunCli(all, {}, env);
  AuditRun run{r.exit_code, nlohmann::json::parse(r.out, nullptr, false), r.out, r.err};
  if (run.doc.is_discarded()) run.doc = nullptr;
  return run;
}

// Findings of `rule` whose location ends with `location_suffix` (any location if empty).
inline std::vector<nlohmann::json> Findings(const nlohmann::json& doc, const std::string& rule,
                                            const std::string& location_suffix = {}) {
  std::vector<nlohmann::json> out;
  if (!doc.is_object() || !doc.contains("findings")) return out;
  for (const auto& f : doc["findings"]) {
    const std::string loc = f["location"].get<std::string>();
    const bool match = location_suffix.empty() ||
                       (loc.size() >= location_suffix.size() &&
                        loc.compare(loc.size() - location_suffix.size(), location_suffix.size(), location_suffix) == 0);
    if (f["rule"] == rule && match) out.push_back(f);
  }
  return out;
}

// The one finding of `rule` at `location_suffix`, or a failed expectation and null.
inline nlohmann::json OneFinding(const AuditRun& run, const std::string& rule, const std::string& location_suffix = {}) {
  auto found = Findings(run.doc, rule, location_suffix);
  EXPECT_EQ(found.size(), 1u) << "rule " << rule << " at '" << location_suffix << "' in:\n" << run.out << "\n" << run.err;
  return found.size() == 1 ? found[0] : nlohmann::json();
}

inline std::string LevelOf(const AuditRun& run, const std::string& rule, const std::string& location_suffix = {}) {
  const auto f = OneFinding(run, rule, location_suffix);
  return f.is_object() ? f["level"].get<std::string>() : "(none)";
}

}  // namespace hmod::testing
