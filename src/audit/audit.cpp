// Targets and the run over them.
#include "audit/audit.h"

#include <algorithm>
#include <cctype>

namespace hmod::audit {
namespace {

bool IsValidBucketName(const std::string& b) {
  // S3 naming rules: 3-63 of [a-z0-9.-], starting and ending with a letter or digit.
  if (b.size() < 3 || b.size() > 63) return false;
  auto alnum = [](char c) { return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)); };
  if (!alnum(b.front()) || !alnum(b.back())) return false;
  return std::all_of(b.begin(), b.end(), [&](char c) { return alnum(c) || c == '.' || c == '-'; });
}

}  // namespace

Result<Target> ParseTarget(const std::string& text) {
  Target t;
  t.text = text;
  if (text.rfind("s3://", 0) == 0) {
    t.kind = Target::Kind::kS3;
    const std::string rest = text.substr(5);
    const auto slash = rest.find('/');
    t.bucket = rest.substr(0, slash);
    if (slash != std::string::npos) t.prefix = rest.substr(slash + 1);
    if (!IsValidBucketName(t.bucket)) {
      return MakeError(ErrorCode::kUsage, "'" + text + "' does not name a valid S3 bucket",
                       "write s3://BUCKET or s3://BUCKET/PREFIX");
    }
    return t;
  }
  if (text.rfind("tls://", 0) == 0) {
    t.kind = Target::Kind::kTls;
    std::string rest = text.substr(6);
    if (!rest.empty() && rest.back() == '/') rest.pop_back();
    std::string port;
    if (!rest.empty() && rest[0] == '[') {
      const auto close = rest.find(']');
      if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
        return MakeError(ErrorCode::kUsage, "'" + text + "' is not tls://[IPv6]:PORT");
      }
      t.host = rest.substr(1, close - 1);
      port = rest.substr(close + 2);
    } else {
      const auto colon = rest.rfind(':');
      if (colon == std::string::npos) {
        return MakeError(ErrorCode::kUsage, "'" + text + "' has no port", "write tls://HOST:PORT, e.g. tls://registry.example:443");
      }
      t.host = rest.substr(0, colon);
      port = rest.substr(colon + 1);
    }
    const bool digits = !port.empty() && port.size() <= 5 &&
                        std::all_of(port.begin(), port.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    if (t.host.empty() || !digits || std::stoul(port) == 0 || std::stoul(port) > 65535) {
      return MakeError(ErrorCode::kUsage, "'" + text + "' is not tls://HOST:PORT");
    }
    t.port = static_cast<uint16_t>(std::stoul(port));
    return t;
  }
  if (text.find("://") != std::string::npos) {
    return MakeError(ErrorCode::kUsage, "unknown target scheme in '" + text + "'",
                     "a target is a local path, s3://bucket[/prefix] or tls://host:port");
  }
  if (text.empty()) return MakeError(ErrorCode::kUsage, "empty target");
  t.path = text;
  return t;
}

Report RunAudit(const std::vector<Target>& targets, const Options& options) {
  Report report;
  for (const auto& t : targets) {
    report.targets.push_back(t.text);
    Status s = t.kind == Target::Kind::kLocal ? AuditLocal(t, options, report)
               : t.kind == Target::Kind::kS3  ? AuditS3(t, options, report)
                                              : AuditTls(t, options, report);
    if (!s.ok()) report.errors.push_back({t.text, s.error().message, s.error().hint});
  }
  return report;
}

int ExitCodeOf(const Report& report, bool fail_on_warn) {
  if (!report.errors.empty()) return 2;
  for (const auto& f : report.findings) {
    if (f.level == Level::kFail || (fail_on_warn && f.level == Level::kWarn)) return 1;
  }
  return 0;
}

}  // namespace hmod::audit
