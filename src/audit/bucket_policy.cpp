#include "audit/bucket_policy.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace hmod::audit {
namespace {

using nlohmann::json;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// IAM lets most fields be a string or an array of strings.
std::vector<std::string> Strings(const json& v) {
  std::vector<std::string> out;
  if (v.is_string()) out.push_back(v.get<std::string>());
  if (v.is_boolean()) out.push_back(v.get<bool>() ? "true" : "false");
  if (v.is_array()) {
    for (const auto& e : v) {
      auto more = Strings(e);
      out.insert(out.end(), more.begin(), more.end());
    }
  }
  return out;
}

bool AppliesToEveryone(const json& st) {
  if (st.contains("NotPrincipal") || !st.contains("Principal")) return false;
  const json& p = st["Principal"];
  if (p.is_string()) return p == "*";
  if (p.is_object() && p.contains("AWS")) {
    auto aws = Strings(p["AWS"]);
    return std::find(aws.begin(), aws.end(), "*") != aws.end();
  }
  return false;
}

bool CoversAction(const json& st, const std::string& action) {
  if (!st.contains("Action")) return false;
  for (const auto& a : Strings(st["Action"])) {
    const std::string l = Lower(a);
    if (l == "*" || l == "s3:*" || l == Lower(action)) return true;
  }
  return false;
}

// The values of condition `key` under any of `operators` (names compared case-insensitively).
std::vector<std::string> ConditionValues(const json& st, std::initializer_list<const char*> operators,
                                         const std::string& key) {
  std::vector<std::string> out;
  if (!st.contains("Condition") || !st["Condition"].is_object()) return out;
  for (const auto& [op, body] : st["Condition"].items()) {
    // A named copy: clang 14 cannot capture a structured binding in a lambda (the fuzz build).
    const std::string op_name = Lower(op);
    const bool wanted =
        std::any_of(operators.begin(), operators.end(), [&](const char* o) { return op_name == Lower(o); });
    if (!wanted || !body.is_object()) continue;
    for (const auto& [k, v] : body.items()) {
      if (Lower(k) == Lower(key)) {
        auto vals = Strings(v);
        out.insert(out.end(), vals.begin(), vals.end());
      }
    }
  }
  return out;
}

}  // namespace

Result<PolicyFacts> AnalysePolicy(const std::string& policy_json) {
  const json doc = json::parse(policy_json, nullptr, false);
  if (!doc.is_object() || !doc.contains("Statement")) {
    return MakeError(ErrorCode::kFormat, "the bucket policy is not a JSON policy document");
  }
  json statements = doc["Statement"];
  if (statements.is_object()) statements = json::array({statements});
  PolicyFacts facts;
  for (const auto& st : statements) {
    if (!st.is_object() || st.value("Effect", "") != "Deny" || !AppliesToEveryone(st)) continue;
    const auto transport = ConditionValues(st, {"Bool", "BoolIfExists"}, "aws:SecureTransport");
    if (std::find(transport.begin(), transport.end(), "false") != transport.end() && CoversAction(st, "s3:GetObject")) {
      facts.denies_insecure_transport = true;
    }
    if (!CoversAction(st, "s3:PutObject")) continue;
    const auto required = ConditionValues(st, {"StringNotEquals", "StringNotEqualsIfExists"}, "s3:x-amz-server-side-encryption");
    const auto null = ConditionValues(st, {"Null"}, "s3:x-amz-server-side-encryption");
    if (!required.empty()) {
      facts.denies_unencrypted_uploads = true;
      facts.required_encryption = required.front();
    } else if (std::find(null.begin(), null.end(), "true") != null.end()) {
      facts.denies_unencrypted_uploads = true;
    }
  }
  return facts;
}

}  // namespace hmod::audit
