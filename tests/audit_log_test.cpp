// The audit log (docs/AUDIT_LOG.md): one JSON line per wrap and unwrap, through --audit-log
// and $HMOD_AUDIT_LOG; private; never a key byte or a passphrase.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <nlohmann/json.hpp>

#include "hmod/key_file.h"
#include "support/test_util.h"

namespace hmod::testing {
namespace {

using nlohmann::json;

std::string AsString(const Bytes& b) { return std::string(b.begin(), b.end()); }

std::vector<json> Lines(const std::string& path) {
  std::vector<json> out;
  const std::string text = AsString(ReadFile(path));
  EXPECT_TRUE(text.empty() || text.back() == '\n') << "the last line must be complete";
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    auto j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
    EXPECT_TRUE(j.is_object()) << line;
    out.push_back(j);
  }
  return out;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class AuditLog : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    key_ = MakeKeyFile(dir_);
    auto k = LoadKeyFile(key_);
    ASSERT_TRUE(k.ok());
    fingerprint_ = KeyFingerprint(*k);
    plain_ = TestData(9000, 42);
    WriteFile(dir_ / "p", plain_);
    log_ = dir_ / "audit.jsonl";
  }
  // Checks one line's fields (and that it has exactly these fields).
  void ExpectLine(const json& j, const std::string& op, const std::string& provider, const std::string& key_id,
                  const std::string& file, const json& context, const std::string& outcome, int64_t after_ms) {
    SCOPED_TRACE(j.dump());
    EXPECT_EQ(j.size(), 7u);
    EXPECT_EQ(j.value("operation", ""), op);
    EXPECT_EQ(j.value("provider", ""), provider);
    EXPECT_EQ(j.value("key_id", ""), key_id);
    EXPECT_EQ(j.value("file", ""), file);
    EXPECT_EQ(j["context"], context);
    EXPECT_EQ(j.value("outcome", ""), outcome);
    ASSERT_TRUE(j["time_unix_ms"].is_number_integer());
    const int64_t t = j["time_unix_ms"].get<int64_t>();
    EXPECT_GE(t, after_ms - 1000);
    EXPECT_LE(t, NowMs() + 1000);
  }
  TempDir dir_;
  std::string key_, fingerprint_, log_;
  Bytes plain_;
};

constexpr const char* kPassphrase = "Tr0ub4dor&3-audit";
constexpr const char* kWrongPassphrase = "n0t-the-passphrase-xyz";

TEST_F(AuditLog, WrapUnwrapAndFailuresAreRecordedWithoutSecrets) {
  const int64_t t0 = NowMs();
  const std::string model = dir_ / "p.hmod";
  CliResult e = RunCli({"encrypt", "-q", "--kek", "file:" + key_, "--kek", "pass:", "--context", "model=m",
                        "--audit-log", log_, "-o", model, dir_ / "p"},
                       {}, {{"HMOD_PASSPHRASE", kPassphrase}});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  struct stat st {};
  ASSERT_EQ(::stat(log_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const json ctx = {{"model", "m"}};
  auto lines = Lines(log_);
  ASSERT_EQ(lines.size(), 2u);
  ExpectLine(lines[0], "wrap", "file", fingerprint_, model, ctx, "ok", t0);
  ExpectLine(lines[1], "wrap", "pass", "argon2id", model, ctx, "ok", t0);

  // A successful unwrap appends one line. The pass record is not tried: the key file is
  // first, and a "not mine" record is not a use of a key.
  CliResult d = RunCli({"decrypt", "-q", "--kek", "file:" + key_, "--kek", "pass:", "--audit-log", log_, "-o",
                        dir_ / "out", model},
                       {}, {{"HMOD_PASSPHRASE", kPassphrase}});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_TRUE(ReadFile(dir_ / "out") == plain_);
  lines = Lines(log_);
  ASSERT_EQ(lines.size(), 3u);
  ExpectLine(lines[2], "unwrap", "file", fingerprint_, model, ctx, "ok", t0);

  // A wrong passphrase: exit 6, and an auth_failed line.
  CliResult bad = RunCli({"verify", "--kek", "pass:", "--audit-log", log_, model}, {},
                         {{"HMOD_PASSPHRASE", kWrongPassphrase}});
  EXPECT_EQ(bad.exit_code, 6) << bad.err;
  lines = Lines(log_);
  ASSERT_EQ(lines.size(), 4u);
  ExpectLine(lines[3], "unwrap", "pass", "argon2id", model, ctx, "auth_failed", t0);

  // A key that is not the file's is not a key use: nothing logged (exit 5).
  const std::string other = MakeKeyFile(dir_, "other.key");
  EXPECT_EQ(RunCli({"verify", "--kek", "file:" + other, "--audit-log", log_, model}).exit_code, 5);
  EXPECT_EQ(Lines(log_).size(), 4u);
  EXPECT_EQ(::stat(log_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "appending must not change the mode";

  // No secret ever appears: not the key (either case), not either passphrase.
  const std::string text = AsString(ReadFile(log_));
  const std::string key_text = AsString(ReadFile(key_));
  const std::string prefix = "hmod-key-v1 ";
  const auto at = key_text.find(prefix);
  ASSERT_NE(at, std::string::npos);
  std::string hex = key_text.substr(at + prefix.size(), 64);
  ASSERT_EQ(hex.size(), 64u);
  EXPECT_EQ(text.find(hex), std::string::npos);
  std::transform(hex.begin(), hex.end(), hex.begin(), [](unsigned char c) { return std::toupper(c); });
  EXPECT_EQ(text.find(hex), std::string::npos);
  // Even a fragment of the key would be a leak.
  EXPECT_EQ(text.find(key_text.substr(at + prefix.size(), 16)), std::string::npos);
  EXPECT_EQ(text.find(kPassphrase), std::string::npos);
  EXPECT_EQ(text.find(kWrongPassphrase), std::string::npos);
}

TEST_F(AuditLog, EnvironmentVariableNamesTheLog) {
  const std::string env_log = dir_ / "env.jsonl";
  const std::map<std::string, std::string> env = {{"HMOD_AUDIT_LOG", env_log}};
  const std::string model = dir_ / "p.hmod";
  const int64_t t0 = NowMs();
  ASSERT_EQ(RunCli({"encrypt", "-q", "--kek", "file:" + key_, "-o", model, dir_ / "p"}, {}, env).exit_code, 0);
  CliResult d = RunCli({"decrypt", "-q", "--kek", "file:" + key_, "-o", dir_ / "out", model}, {}, env);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  auto lines = Lines(env_log);
  ASSERT_EQ(lines.size(), 2u);
  ExpectLine(lines[0], "wrap", "file", fingerprint_, model, json::object(), "ok", t0);
  ExpectLine(lines[1], "unwrap", "file", fingerprint_, model, json::object(), "ok", t0);
  struct stat st {};
  ASSERT_EQ(::stat(env_log.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // --audit-log wins over the environment.
  CliResult v = RunCli({"verify", "-q", "--kek", "file:" + key_, "--audit-log", log_, model}, {}, env);
  ASSERT_EQ(v.exit_code, 0) << v.err;
  EXPECT_EQ(Lines(env_log).size(), 2u);
  ASSERT_EQ(Lines(log_).size(), 1u);
  ExpectLine(Lines(log_)[0], "unwrap", "file", fingerprint_, model, json::object(), "ok", t0);
}

TEST_F(AuditLog, UnwritableLogIsAnErrorAndNothingIsEncrypted) {
  CliResult r = RunCli({"encrypt", "-q", "--kek", "file:" + key_, "--audit-log", dir_ / "no/such/dir/log", "-o",
                        dir_ / "p.hmod", dir_ / "p"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("audit log"), std::string::npos) << r.err;
  EXPECT_FALSE(Exists(dir_ / "p.hmod"));
}

}  // namespace
}  // namespace hmod::testing
