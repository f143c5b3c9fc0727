// The shapes of `hmodctl audit --json` and `--sarif`, validated against JSON Schemas in
// tests/vectors/audit/ by Python's jsonschema (installed with moto[server], which the AWS tests
// already need), plus the cross-references a schema cannot express.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>

#include "audit/audit.h"
#include "support/audit_fixture.h"
#include "support/model_builder.h"

extern char** environ;

namespace hmod::testing {
namespace {

using nlohmann::json;

const std::string kVectors = std::string(HMOD_VECTORS_DIR) + "/audit/";

// Validates `doc` against `schema_file` with Draft 2020-12 (formats checked where the
// validator can). Returns the validator's complaint, or "" if valid.
std::string Validate(const json& doc, const std::string& schema_file, const TempDir& dir) {
  const std::string doc_file = dir / "doc.json", err_file = dir / "validator.err";
  WriteFile(doc_file, AsBytes(doc.dump()));
  const std::string script =
      "import json, sys, jsonschema\n"
      "schema = json.load(open(sys.argv[1]))\n"
      "doc = json.load(open(sys.argv[2]))\n"
      "jsonschema.Draft202012Validator.check_schema(schema)\n"
      "errors = sorted(jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())"
      ".iter_errors(doc), key=str)\n"
      "for e in errors: print(list(e.absolute_path), e.message, file=sys.stderr)\n"
      "sys.exit(1 if errors else 0)\n";
  std::vector<std::string> args = {"python3", "-c", script, schema_file, doc_file};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, "python3", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return "cannot run python3 (needed with jsonschema: pip install 'moto[server]')";
  int status = 0;
  ::waitpid(pid, &status, 0);
  const Bytes err = ReadFile(err_file);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  return "schema " + schema_file + ": " + std::string(err.begin(), err.end());
}

class AuditReport : public ::testing::Test {
 protected:
  // A tree with one finding at each level, plus a target that cannot be audited.
  void SetUp() override {
    WriteFile(tree_ / "plain model.bin", BuildSafetensors({{"w", "F32", {1}, TestData(4, 1)}}));
    WriteFile(tree_ / "legacy", AsBytes("ENCMODEL\0\0\0\2{}xxxxxxxxxxxxxxxx"));
    MakeKeyFile(tree_, "k.key");
    targets_ = {tree_.path(), tree_ / "missing"};
  }
  TempDir tree_, work_;
  std::vector<std::string> targets_;
};

TEST_F(AuditReport, JsonReportMatchesItsSchemaAndCountsItsFindings) {
  std::vector<std::string> args = {"audit", "--json"};
  args.insert(args.end(), targets_.begin(), targets_.end());
  CliResult r = RunCli(args);
  ASSERT_EQ(r.exit_code, 2) << r.err;
  const json doc = json::parse(r.out);
  EXPECT_EQ(Validate(doc, kVectors + "audit-report.schema.json", work_), "");
  int counts[3] = {0, 0, 0};
  for (const auto& f : doc["findings"]) {
    ++counts[f["level"] == "pass" ? 0 : f["level"] == "warn" ? 1 : 2];
    EXPECT_NE(audit::FindRule(f["rule"].get<std::string>()), nullptr) << f;
  }
  EXPECT_EQ(doc["summary"]["pass"], counts[0]);
  EXPECT_EQ(doc["summary"]["warn"], counts[1]);
  EXPECT_EQ(doc["summary"]["fail"], counts[2]);
  EXPECT_GT(counts[0], 0);
  EXPECT_GT(counts[1], 0);
  EXPECT_GT(counts[2], 0);
  EXPECT_EQ(doc["summary"]["errors"], 1);
  EXPECT_EQ(doc["exit_code"], 2);
  // The schema really constrains: a finding without remediation at FAIL is refused.
  json broken = doc;
  for (auto& f : broken["findings"]) {
    if (f["level"] == "fail") f.erase("remediation");
  }
  EXPECT_NE(Validate(broken, kVectors + "audit-report.schema.json", work_), "");
}

TEST_F(AuditReport, SarifLogMatchesTheSarifSchemaSubsetAndReferencesItsRules) {
  std::vector<std::string> args = {"audit", "--sarif"};
  args.insert(args.end(), targets_.begin(), targets_.end());
  CliResult r = RunCli(args);
  ASSERT_EQ(r.exit_code, 2) << r.err;
  const json log = json::parse(r.out);
  EXPECT_EQ(Validate(log, kVectors + "sarif-2.1.0-subset.schema.json", work_), "");
  EXPECT_EQ(log["version"], "2.1.0");
  ASSERT_EQ(log["runs"].size(), 1u);
  const json& run = log["runs"][0];
  const json& rules = run["tool"]["driver"]["rules"];
  EXPECT_EQ(run["tool"]["driver"]["name"], "hmodctl");
  EXPECT_EQ(rules.size(), audit::Rules().size());
  bool saw_error = false, saw_warning = false;
  for (const auto& res : run["results"]) {
    // ruleIndex points at the rule with that id; PASS verdicts are not results.
    ASSERT_TRUE(res.contains("ruleIndex")) << res;
    EXPECT_EQ(rules[res["ruleIndex"].get<size_t>()]["id"], res["ruleId"]);
    saw_error |= res["level"] == "error";
    saw_warning |= res["level"] == "warning";
    EXPECT_NE(res["level"], "none");
  }
  EXPECT_TRUE(saw_error);
  EXPECT_TRUE(saw_warning);
  // A space in a path is percent-encoded in the artifact URI.
  const std::string dumped = run["results"].dump();
  EXPECT_NE(dumped.find("plain%20model.bin"), std::string::npos) << dumped;
  EXPECT_EQ(run["invocations"][0]["executionSuccessful"], false);
  EXPECT_NE(run["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"].get<std::string>().find("missing"),
            std::string::npos);

  json broken = log;
  broken["version"] = "2.0.0";
  EXPECT_NE(Validate(broken, kVectors + "sarif-2.1.0-subset.schema.json", work_), "");
}

TEST_F(AuditReport, EveryCheckIsDocumented) {
  std::ifstream in(std::string(HMOD_VECTORS_DIR) + "/../../docs/AUDIT.md");
  ASSERT_TRUE(in) << "docs/AUDIT.md is missing";
  std::stringstream text;
  text << in.rdbuf();
  for (const auto& rule : audit::Rules()) {
    EXPECT_NE(text.str().find(std::string("`") + rule.id + "`"), std::string::npos) << rule.id << " is not in docs/AUDIT.md";
  }
}

}  // namespace
}  // namespace hmod::testing
