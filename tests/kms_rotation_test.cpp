// `hmodctl kms rotation enable|status|rotate-now` (docs/KMS_ROTATION.md) against a real,
// signature-verifying moto_server: EnableKeyRotation, GetKeyRotationStatus, RotateKeyOnDemand
// and ListKeyRotations; files wrapped before a rotation still open after it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "hmod/crypto.h"
#include "keys/aws_kms_admin.h"
#include "support/moto_server.h"
#include "support/test_util.h"

namespace hmod::testing {
namespace {

using nlohmann::json;
using Env = std::map<std::string, std::string>;

class KmsRotation : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    // Not a skip: CI installs moto_server, so its absence is a failure.
    try {
      server_ = std::make_unique<MotoServer>();
      arn_ = server_->CreateKey("rotation test key");
      server_->CreateAlias(kAlias, arn_);
    } catch (const std::exception& e) {
      FAIL() << e.what();
    }
  }

  CliResult Run(const std::vector<std::string>& args) { return RunCli(args, {}, server_->Env()); }
  json RunJson(const std::vector<std::string>& args) {
    CliResult r = Run(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? json::parse(r.out) : json::object();
  }
  std::string KeyId() const { return arn_.substr(arn_.find(":key/") + 5); }

  static constexpr const char* kAlias = "alias/hmod-rotation";
  std::unique_ptr<MotoServer> server_;
  std::string arn_;
  TempDir dir_;
};

TEST_F(KmsRotation, EnableThenStatusByIdArnAliasAndPrefixedUri) {
  json before = RunJson({"kms", "rotation", "status", "--json", arn_});
  EXPECT_EQ(before["ok"], true);
  EXPECT_EQ(before["rotation_enabled"], false);
  EXPECT_EQ(before["key_arn"], arn_);

  json enabled = RunJson({"kms", "rotation", "enable", "--json", "--period-days", "180", kAlias});
  EXPECT_EQ(enabled["rotation_enabled"], true);
  EXPECT_EQ(enabled["key_arn"], arn_);
  EXPECT_EQ(enabled["period_days"], 180);

  for (const std::string& key : {arn_, KeyId(), std::string(kAlias), "aws-kms:" + arn_, std::string("aws-kms:") + kAlias}) {
    json s = RunJson({"kms", "rotation", "status", "--json", key});
    EXPECT_EQ(s["rotation_enabled"], true) << key;
    EXPECT_EQ(s["key_arn"], arn_) << key;
  }
  CliResult human = Run({"kms", "rotation", "status", KeyId()});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("automatic rotation enabled"), std::string::npos) << human.out;
}

TEST_F(KmsRotation, RotateNowKeepsOldFilesOpeningAndNewOnesWork) {
  const Bytes before_plain = TestData(300000, 1);
  WriteFile(dir_ / "a", before_plain);
  CliResult e = Run({"encrypt", "-q", "--kek", "aws-kms:" + arn_, "--context", "model=m", "-o", dir_ / "a.hmod", dir_ / "a"});
  ASSERT_EQ(e.exit_code, 0) << e.err;

  json rotated = RunJson({"kms", "rotation", "rotate-now", "--json", "aws-kms:" + std::string(kAlias)});
  EXPECT_EQ(rotated["ok"], true);
  EXPECT_EQ(rotated["key_arn"], arn_);
  EXPECT_EQ(rotated["rotation_started"], true);

  // moto 5.2.1 records on-demand rotations in ListKeyRotations.
  json status = RunJson({"kms", "rotation", "status", "--json", arn_});
  ASSERT_TRUE(status.contains("rotations")) << status.dump();
  ASSERT_GE(status["rotations"].size(), 1u) << status.dump();
  EXPECT_EQ(status["rotations"].back()["rotation_type"], "ON_DEMAND");

  // Wrapped before the rotation, opened after it.
  CliResult d = Run({"decrypt", "-q", "--kek", "aws-kms:" + arn_, "--context", "model=m", "-o", dir_ / "a.out", dir_ / "a.hmod"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_TRUE(ReadFile(dir_ / "a.out") == before_plain);
  CliResult v = Run({"verify", "-q", "--kek", std::string("aws-kms:") + kAlias, dir_ / "a.hmod"});
  EXPECT_EQ(v.exit_code, 0) << v.err;

  // And a file wrapped after it.
  const Bytes after_plain = TestData(5000, 2);
  WriteFile(dir_ / "b", after_plain);
  ASSERT_EQ(Run({"encrypt", "-q", "--kek", "aws-kms:" + arn_, "-o", dir_ / "b.hmod", dir_ / "b"}).exit_code, 0);
  CliResult d2 = Run({"decrypt", "-q", "--kek", "aws-kms:" + arn_, "-o", dir_ / "b.out", dir_ / "b.hmod"});
  ASSERT_EQ(d2.exit_code, 0) << d2.err;
  EXPECT_TRUE(ReadFile(dir_ / "b.out") == after_plain);

  // A second on-demand rotation is recorded too.
  ASSERT_EQ(Run({"kms", "rotation", "rotate-now", "-q", KeyId()}).exit_code, 0);
  json again = RunJson({"kms", "rotation", "status", "--json", arn_});
  EXPECT_EQ(again["rotations"].size(), status["rotations"].size() + 1) << again.dump();
  EXPECT_EQ(Run({"decrypt", "-q", "-f", "--kek", "aws-kms:" + arn_, "-o", dir_ / "a.out", dir_ / "a.hmod"}).exit_code, 0);
}

TEST_F(KmsRotation, ClearErrorsAndExitCodes) {
  CliResult unknown = Run({"kms", "rotation", "status", "--json", "alias/nope"});
  EXPECT_EQ(unknown.exit_code, 2) << unknown.err;
  EXPECT_NE(unknown.err.find("not found"), std::string::npos) << unknown.err;
  EXPECT_EQ(json::parse(unknown.out)["error"]["code"], "usage");

  CliResult malformed = Run({"kms", "rotation", "enable", "not a key"});
  EXPECT_EQ(malformed.exit_code, 2) << malformed.err;
  CliResult period = Run({"kms", "rotation", "enable", "--period-days", "30", arn_});
  EXPECT_EQ(period.exit_code, 2) << period.err;
  EXPECT_NE(period.err.find("90"), std::string::npos);
  CliResult missing = Run({"kms", "rotation", "rotate-now"});
  EXPECT_EQ(missing.exit_code, 2);
  CliResult no_action = Run({"kms", "rotation"});
  EXPECT_EQ(no_action.exit_code, 2);

  // Wrong secret: moto verifies signatures.
  Env bad = server_->Env();
  bad["AWS_SECRET_ACCESS_KEY"] = "wrong";
  CliResult denied = RunCli({"kms", "rotation", "status", arn_}, {}, bad);
  EXPECT_EQ(denied.exit_code, 3) << denied.err;
  EXPECT_NE(denied.err.find("signature"), std::string::npos) << denied.err;

  // Unreachable endpoint: an I/O error, quickly.
  Env gone = server_->Env();
  gone["AWS_ENDPOINT_URL_KMS"] = "http://127.0.0.1:1";
  gone["AWS_MAX_ATTEMPTS"] = "1";
  CliResult down = RunCli({"kms", "rotation", "rotate-now", arn_}, {}, gone);
  EXPECT_EQ(down.exit_code, 3) << down.err;
}

TEST_F(KmsRotation, LibraryReportsRotationsInOrder) {
  const Env env = server_->Env();
  auto client = aws::KmsClient::Create("", [env](const std::string& n) -> std::optional<std::string> {
    auto it = env.find(n);
    return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
  });
  ASSERT_TRUE(client.ok()) << client.error().message;
  ASSERT_TRUE((*client)->EnableKeyRotation(arn_, std::nullopt).ok());
  auto s = (*client)->GetKeyRotationStatus(kAlias);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_TRUE(s->enabled);
  auto none = (*client)->ListKeyRotations(arn_);
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none->empty());
  auto r = (*client)->RotateKeyOnDemand(arn_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto list = (*client)->ListKeyRotations(arn_);
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].rotation_type, "ON_DEMAND");
  EXPECT_FALSE((*list)[0].rotation_date.empty());
}

}  // namespace
}  // namespace hmod::testing
