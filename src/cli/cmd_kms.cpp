// hmodctl kms rotation enable|status|rotate-now KEY: AWS KMS key rotation (docs/KMS_ROTATION.md).
// KMS keeps every key material version of a rotated key, so files wrapped before a rotation
// still open; nothing in any .hmod file changes.
#include <cstdio>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "keys/aws_kms_admin.h"

namespace hmod::cli {
namespace {

// KMS accepts rotation periods from 90 to 2560 days (EnableKeyRotation).
constexpr int kMinPeriodDays = 90;
constexpr int kMaxPeriodDays = 2560;

struct KmsCliOptions {
  std::string key;
  int period_days = 0;  // 0: not given (KMS default: 365)
  OutputOptions out;
};

enum class Action { kEnable, kStatus, kRotateNow };

Result<std::unique_ptr<aws::KmsClient>> Client(std::string& key) {
  std::string region_hint;
  HMOD_ASSIGN_OR_RETURN(key, aws::NormalizeKmsKey(key, region_hint));
  return aws::KmsClient::Create(region_hint, aws::ProcessEnv());
}

nlohmann::json StatusJson(const std::string& key, const aws::KeyRotationStatus& s) {
  nlohmann::json j = {{"ok", true}, {"key", key}, {"key_arn", s.key_arn}, {"rotation_enabled", s.enabled}};
  j["period_days"] = s.period_days ? nlohmann::json(*s.period_days) : nlohmann::json(nullptr);
  if (!s.next_rotation_date.empty()) j["next_rotation_date"] = s.next_rotation_date;
  if (!s.on_demand_rotation_start.empty()) j["on_demand_rotation_start"] = s.on_demand_rotation_start;
  return j;
}

int RunKms(Action action, const KmsCliOptions& o) {
  auto fail = [&](const Error& e) { return ReportError(e, o.out); };
  std::string key = o.key;
  if (action == Action::kEnable && o.period_days != 0 &&
      (o.period_days < kMinPeriodDays || o.period_days > kMaxPeriodDays)) {
    return fail(MakeError(ErrorCode::kUsage, "--period-days must be between 90 and 2560 (AWS KMS limits)"));
  }
  auto client = Client(key);
  if (!client.ok()) return fail(client.error());
  aws::KmsClient& kms = **client;

  if (action == Action::kEnable) {
    std::optional<int> period;
    if (o.period_days != 0) period = o.period_days;
    if (Status st = kms.EnableKeyRotation(key, period); !st.ok()) return fail(st.error());
    auto status = kms.GetKeyRotationStatus(key);
    if (!status.ok()) return fail(status.error());
    if (o.out.json) {
      auto j = StatusJson(key, *status);
      // moto does not report the period; say what was asked for.
      if (period && !status->period_days) j["period_days"] = *period;
      PrintJson(j);
    } else if (!o.out.quiet) {
      std::printf("automatic rotation %s for %s", status->enabled ? "enabled" : "NOT enabled", status->key_arn.c_str());
      if (status->period_days || period) std::printf(" (every %d days)", status->period_days ? *status->period_days : *period);
      std::printf("\n");
    }
    if (!status->enabled) {
      return fail(MakeError(ErrorCode::kIo, "AWS KMS accepted EnableKeyRotation but reports rotation disabled"));
    }
    return kExitOk;
  }

  if (action == Action::kRotateNow) {
    auto rotated = kms.RotateKeyOnDemand(key);
    if (!rotated.ok()) return fail(rotated.error());
    auto arn = kms.KeyArn(key);
    if (!arn.ok()) return fail(arn.error());
    if (o.out.json) {
      PrintJson({{"ok", true}, {"key", key}, {"key_arn", *arn}, {"rotation_started", true}});
    } else if (!o.out.quiet) {
      std::printf("on-demand rotation started for %s: new data keys are wrapped with new key material;\n"
                  "files wrapped before keep opening (KMS keeps every key material version)\n",
                  arn->c_str());
    }
    return kExitOk;
  }

  auto status = kms.GetKeyRotationStatus(key);
  if (!status.ok()) return fail(status.error());
  auto rotations = kms.ListKeyRotations(key);
  if (o.out.json) {
    auto j = StatusJson(key, *status);
    if (rotations.ok()) {
      j["rotations"] = nlohmann::json::array();
      for (const auto& r : *rotations) {
        j["rotations"].push_back({{"rotation_date", r.rotation_date}, {"rotation_type", r.rotation_type}});
      }
    }
    PrintJson(j);
  } else if (!o.out.quiet) {
    std::printf("%s: automatic rotation %s", status->key_arn.c_str(), status->enabled ? "enabled" : "disabled");
    if (status->period_days) std::printf(", every %d days", *status->period_days);
    if (!status->next_rotation_date.empty()) std::printf(", next %s", status->next_rotation_date.c_str());
    std::printf("\n");
    if (!status->on_demand_rotation_start.empty()) {
      std::printf("on-demand rotation in progress since %s\n", status->on_demand_rotation_start.c_str());
    }
    if (rotations.ok()) {
      std::printf("%zu completed rotation(s)\n", rotations->size());
      for (const auto& r : *rotations) std::printf("  %s  %s\n", r.rotation_date.c_str(), r.rotation_type.c_str());
    }
  }
  if (!rotations.ok() && !o.out.quiet && !o.out.json) {
    std::fprintf(stderr, "hmodctl: note: rotation history unavailable: %s\n", rotations.error().message.c_str());
  }
  return kExitOk;
}

CLI::App* AddAction(CLI::App& rotation, const char* name, const char* summary, KmsCliOptions& o) {
  CLI::App* a = rotation.add_subcommand(name, summary);
  a->add_option("key", o.key, "KMS key: key id, key ARN, alias/NAME or alias ARN (aws-kms: prefix accepted)")
      ->required()
      ->type_name("KEY");
  AddOutputOptions(*a, o.out);
  return a;
}

}  // namespace

void SetupKms(CLI::App& sub, std::function<int()>& run) {
  auto o = std::make_shared<KmsCliOptions>();
  sub.description(
      "Manage AWS KMS key rotation for the keys named by aws-kms: URIs. Rotation happens inside KMS:\n"
      "the key id and ARN stay the same, KMS keeps every key material version, and files wrapped\n"
      "before a rotation keep opening. Credentials, region and endpoint as for aws-kms:\n"
      "(docs/providers/aws-kms.md). Needs kms:DescribeKey plus the action's own permission.\n\n"
      "Examples:\n"
      "  hmodctl kms rotation enable alias/models --period-days 180\n"
      "  hmodctl kms rotation status --json aws-kms:arn:aws:kms:us-east-1:111122223333:key/1234abcd-...\n"
      "  hmodctl kms rotation rotate-now alias/models");
  sub.require_subcommand(1);
  CLI::App* rotation = sub.add_subcommand("rotation", "Automatic and on-demand rotation of a KMS key");
  rotation->require_subcommand(1);
  CLI::App* enable = AddAction(*rotation, "enable", "Turn on automatic rotation (EnableKeyRotation)", *o);
  enable->add_option("--period-days", o->period_days, "Days between automatic rotations (90-2560; KMS default 365)")
      ->type_name("N");
  CLI::App* status = AddAction(*rotation, "status", "Show rotation status and completed rotations", *o);
  CLI::App* now = AddAction(*rotation, "rotate-now", "Rotate the key material now (RotateKeyOnDemand)", *o);
  run = [o, enable, status, now] {
    if (enable->parsed()) return RunKms(Action::kEnable, *o);
    if (status->parsed()) return RunKms(Action::kStatus, *o);
    if (now->parsed()) return RunKms(Action::kRotateNow, *o);
    return static_cast<int>(kExitUsage);
  };
}

}  // namespace hmod::cli
