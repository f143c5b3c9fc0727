// The aws-kms provider (FORMAT.md §5.5) against a real, signature-verifying moto_server, and
// its configuration resolution (keys/aws_config.h) against files in a temp dir.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "hmod/crypto.h"
#include "keys/aws_config.h"
#include "keys/aws_kms_provider.h"
#include "support/moto_server.h"
#include "support/test_util.h"

namespace hmod::testing {
namespace {

using nlohmann::json;
using Env = std::map<std::string, std::string>;

std::string AsString(const Bytes& b) { return std::string(b.begin(), b.end()); }

aws::EnvFn EnvFrom(Env env) {
  return [env = std::move(env)](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
}

Env With(Env env, const Env& changes) {
  for (const auto& [k, v] : changes) env[k] = v;
  return env;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// Configuration: no server needed.

class AwsKmsConfig : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(InitCrypto().ok()); }
  // Nothing from the machine running the tests.
  Env Isolated() const {
    return {{"HOME", dir_.path()},
            {"AWS_CONFIG_FILE", dir_ / "no-config"},
            {"AWS_SHARED_CREDENTIALS_FILE", dir_ / "no-credentials"}};
  }
  TempDir dir_;
};

TEST_F(AwsKmsConfig, EnvironmentCredentialsComeFirst) {
  WriteFile(dir_ / "credentials", AsBytes("[default]\naws_access_key_id = AKIAPROFILE\n"
                                          "aws_secret_access_key = profile-secret\n"));
  auto cfg = aws::ResolveServiceConfig(
      "kms", "",
      EnvFrom(With(Isolated(), {{"AWS_SHARED_CREDENTIALS_FILE", dir_ / "credentials"},
                                {"AWS_ACCESS_KEY_ID", "AKIAENV"},
                                {"AWS_SECRET_ACCESS_KEY", "env-secret"},
                                {"AWS_SESSION_TOKEN", "token"},
                                {"AWS_REGION", "eu-west-1"}})));
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->credentials.access_key_id, "AKIAENV");
  EXPECT_EQ(AsString(Bytes(cfg->credentials.secret_access_key.secret().begin(),
                           cfg->credentials.secret_access_key.secret().end())),
            "env-secret");
  EXPECT_EQ(cfg->credentials.session_token, "token");
  EXPECT_EQ(cfg->region, "eu-west-1");
  EXPECT_EQ(cfg->endpoint, "https://kms.eu-west-1.amazonaws.com");
  EXPECT_EQ(cfg->retry.max_attempts, 3);
}

TEST_F(AwsKmsConfig, NamedProfileFromSharedFiles) {
  WriteFile(dir_ / "credentials",
            AsBytes("# comment\n[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = d\n\n"
                    "[ci]\r\nAWS_Access_Key_Id=AKIACI\r\naws_secret_access_key = ci/secret+key\r\n"
                    "aws_session_token = tok\r\n"),
            0600);
  WriteFile(dir_ / "config", AsBytes("[default]\nregion = us-west-2\n[profile ci]\nregion = ap-south-1\n"
                                     "max_attempts = 5\ns3 =\n  max_concurrent_requests = 20\n"
                                     "endpoint_url = https://kms.example.test:8443/\n"));
  auto cfg = aws::ResolveServiceConfig(
      "kms", "",
      EnvFrom(With(Isolated(), {{"AWS_SHARED_CREDENTIALS_FILE", dir_ / "credentials"},
                                {"AWS_CONFIG_FILE", dir_ / "config"},
                                {"AWS_PROFILE", "ci"}})));
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->credentials.access_key_id, "AKIACI");
  EXPECT_TRUE(cfg->credentials.secret_access_key.Equals(SecretBytes::CopyFrom(AsBytes("ci/secret+key"))));
  EXPECT_EQ(cfg->credentials.session_token, "tok");
  EXPECT_TRUE(Contains(cfg->credentials.source, "profile 'ci'"));
  EXPECT_EQ(cfg->region, "ap-south-1");
  EXPECT_EQ(cfg->retry.max_attempts, 5);
  EXPECT_EQ(cfg->endpoint, "https://kms.example.test:8443");
}

TEST_F(AwsKmsConfig, DefaultProfileUnderHome) {
  ASSERT_EQ(::mkdir((dir_ / ".aws").c_str(), 0700), 0);
  WriteFile(dir_ / ".aws/credentials", AsBytes("[default]\naws_access_key_id=AKIAHOME\naws_secret_access_key=h\n"));
  WriteFile(dir_ / ".aws/config", AsBytes("[default]\nregion=cn-north-1\n"));
  auto cfg = aws::ResolveServiceConfig("kms", "", EnvFrom({{"HOME", dir_.path()}, {"AWS_PROFILE", ""}}));
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->credentials.access_key_id, "AKIAHOME");
  EXPECT_EQ(cfg->region, "cn-north-1");
  EXPECT_EQ(cfg->endpoint, "https://kms.cn-north-1.amazonaws.com.cn");
}

TEST_F(AwsKmsConfig, RegionAndEndpointPrecedence) {
  WriteFile(dir_ / "config", AsBytes("[default]\nregion = us-west-2\nendpoint_url = https://profile.test\n"));
  Env env = With(Isolated(), {{"AWS_CONFIG_FILE", dir_ / "config"},
                              {"AWS_ACCESS_KEY_ID", "AKIA"},
                              {"AWS_SECRET_ACCESS_KEY", "s"}});
  auto resolve = [](const Env& e, const std::string& hint = "") {
    auto cfg = aws::ResolveServiceConfig("kms", hint, EnvFrom(e));
    EXPECT_TRUE(cfg.ok()) << cfg.error().message;
    return cfg.ok() ? cfg->region + " " + cfg->endpoint : cfg.error().message;
  };
  EXPECT_EQ(resolve(env), "us-west-2 https://profile.test");
  env["AWS_DEFAULT_REGION"] = "eu-central-1";
  env["AWS_ENDPOINT_URL"] = "https://all.test";
  EXPECT_EQ(resolve(env), "eu-central-1 https://all.test");
  env["AWS_REGION"] = "eu-north-1";
  env["AWS_ENDPOINT_URL_KMS"] = "http://127.0.0.1:4566";
  EXPECT_EQ(resolve(env), "eu-north-1 http://127.0.0.1:4566");
  // A key ARN's region wins: the key lives there.
  EXPECT_EQ(resolve(env, "sa-east-1"), "sa-east-1 http://127.0.0.1:4566");
  env["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true";
  EXPECT_EQ(resolve(env), "eu-north-1 https://kms.eu-north-1.amazonaws.com");
}

TEST_F(AwsKmsConfig, ClearErrors) {
  struct Case {
    Env env;
    ErrorCode code;
    std::string message;
  };
  WriteFile(dir_ / "sso", AsBytes("[profile dev]\nsso_session = corp\nregion = us-east-1\n"));
  WriteFile(dir_ / "half", AsBytes("[default]\naws_access_key_id = AKIA\n"));
  WriteFile(dir_ / "bad", AsBytes("[default]\naws_secret_access_key = TOPSECRETVALUE\nnot a setting\n"));
  const Env creds = {{"AWS_ACCESS_KEY_ID", "AKIA"}, {"AWS_SECRET_ACCESS_KEY", "s"}, {"AWS_REGION", "us-east-1"}};
  const std::vector<Case> cases = {
      {Isolated(), ErrorCode::kUsage, "no AWS credentials found"},
      {With(Isolated(), {{"AWS_ACCESS_KEY_ID", "AKIA"}}), ErrorCode::kUsage, "AWS_SECRET_ACCESS_KEY is not"},
      {With(Isolated(), {{"AWS_PROFILE", "nope"}}), ErrorCode::kUsage, "AWS profile 'nope' is not in"},
      {With(Isolated(), {{"AWS_CONFIG_FILE", dir_ / "sso"}, {"AWS_PROFILE", "dev"}}), ErrorCode::kUnsupported,
       "sso_session"},
      {With(Isolated(), {{"AWS_SHARED_CREDENTIALS_FILE", dir_ / "half"}}), ErrorCode::kUsage,
       "no aws_secret_access_key"},
      {With(Isolated(), {{"AWS_SHARED_CREDENTIALS_FILE", dir_ / "bad"}}), ErrorCode::kKeyFile, "line 3"},
      {With(Isolated(), {{"AWS_SHARED_CREDENTIALS_FILE", dir_.path()}}), ErrorCode::kKeyFile, "not a regular file"},
      {With(Isolated(), {{"AWS_ACCESS_KEY_ID", "AKIA"}, {"AWS_SECRET_ACCESS_KEY", "s"}}), ErrorCode::kUsage,
       "no AWS region"},
      {With(Isolated(), With(creds, {{"AWS_REGION", "us-east-1/../x"}})), ErrorCode::kUsage, "malformed"},
      {With(Isolated(), With(creds, {{"AWS_ENDPOINT_URL_KMS", "http://kms.example.com"}})), ErrorCode::kUsage,
       "refusing plain http"},
      {With(Isolated(), With(creds, {{"AWS_ENDPOINT_URL_KMS", "https://kms.example.com/path"}})), ErrorCode::kUsage,
       "no path"},
      {With(Isolated(), With(creds, {{"AWS_ENDPOINT_URL", "ftp://x"}})), ErrorCode::kUsage, "not an http(s)"},
      {With(Isolated(), With(creds, {{"AWS_MAX_ATTEMPTS", "99"}})), ErrorCode::kUsage, "1 to 10"},
  };
  for (const auto& c : cases) {
    auto cfg = aws::ResolveServiceConfig("kms", "", EnvFrom(c.env));
    ASSERT_FALSE(cfg.ok()) << c.message;
    EXPECT_EQ(cfg.error().code, c.code) << cfg.error().message;
    EXPECT_TRUE(Contains(cfg.error().message, c.message)) << cfg.error().message;
    // A malformed credentials file is named, never quoted.
    EXPECT_FALSE(Contains(cfg.error().message + cfg.error().hint, "TOPSECRETVALUE"));
  }
}

TEST_F(AwsKmsConfig, KeyNamesAreCheckedWithoutNetwork) {
  const Env env = With(Isolated(), {{"AWS_ACCESS_KEY_ID", "AKIA"},
                                    {"AWS_SECRET_ACCESS_KEY", "s"},
                                    {"AWS_REGION", "us-east-1"},
                                    {"AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:1"}});
  for (const std::string& bad : std::vector<std::string>{"", "alias/", "arn:aws:kms:us-east-1:111122223333:other/x", "arn:aws:s3:::bucket",
                                "key with spaces", "alias/x\n"}) {
    auto p = MakeAwsKmsProvider(bad, EnvFrom(env));
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.error().code, ErrorCode::kUsage) << bad;
    EXPECT_FALSE(p.error().hint.empty());
  }
  const std::string arn = "arn:aws:kms:eu-west-3:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
  for (const std::string& good : std::vector<std::string>{"1234abcd-12ab-34cd-56ef-1234567890ab", "alias/models", arn,
                                 "arn:aws:kms:eu-west-3:111122223333:alias/models"}) {
    auto p = MakeAwsKmsProvider(good, EnvFrom(env));
    ASSERT_TRUE(p.ok()) << good << ": " << p.error().message;
    EXPECT_EQ((*p)->provider_id(), "aws-kms");
    EXPECT_FALSE((*p)->is_local());
  }
  // A provider named by key ARN answers "not mine" for another key's record with no call
  // (the endpoint above is closed).
  auto p = MakeAwsKmsProvider(arn, EnvFrom(env));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->key_id(), arn);
  const Bytes file_id(32, 1);
  auto r = (*p)->Unwrap({"aws-kms", arn + "0", Bytes(96, 1)}, {file_id, nullptr});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNoMatchingKey);
  auto uri = ProviderFromUri("aws-kms:");
  ASSERT_FALSE(uri.ok());
  EXPECT_EQ(uri.error().code, ErrorCode::kUsage);
}

// ---------------------------------------------------------------------------------------------
// The HTTP client's retries and timeouts, and error mapping for answers moto never gives, against
// a canned server on 127.0.0.1.

// Answers the n-th connection with responses[n] and closes it; an empty response means "hold
// the connection and never answer". Stopped and joined in the destructor.
class CannedHttpServer {
 public:
  explicit CannedHttpServer(std::vector<std::string> responses) : responses_(std::move(responses)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 || ::pipe2(stop_, O_CLOEXEC) != 0) {
      throw std::runtime_error("cannot start the canned HTTP server");
    }
    endpoint_ = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
    thread_ = std::thread([this] { Serve(); });
  }
  ~CannedHttpServer() {
    const char c = 0;
    (void)!::write(stop_[1], &c, 1);
    thread_.join();
    for (int fd : {fd_, stop_[0], stop_[1]}) ::close(fd);
    for (int fd : held_) ::close(fd);
  }
  const std::string& endpoint() const { return endpoint_; }
  int connections() const { return connections_.load(); }

  static std::string Answer(int status, const std::string& body, const std::string& error_type = "") {
    std::string r = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/x-amz-json-1.1\r\n";
    if (!error_type.empty()) r += "X-Amzn-ErrorType: " + error_type + ":http://internal.amazon.com/coral/\r\n";
    return r + "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  }
  static std::string Error(int status, const std::string& type) {
    return Answer(status, R"({"__type":"com.amazonaws.kms#)" + type + R"(","message":"canned )" + type + "\"}", type);
  }

 private:
  void Serve() {
    while (true) {
      pollfd p[2] = {{fd_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) continue;
      if (p[1].revents) return;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      const size_t n = static_cast<size_t>(connections_++);
      const std::string answer = n < responses_.size() ? responses_[n] : Error(500, "InternalFailure");
      if (answer.empty()) {
        held_.push_back(c);
        continue;
      }
      ReadRequest(c);
      (void)!::write(c, answer.data(), answer.size());
      ::shutdown(c, SHUT_WR);
      ::close(c);
    }
  }
  static void ReadRequest(int c) {
    std::string req;
    char buf[4096];
    size_t need = std::string::npos;
    while (req.size() < need) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 2000) <= 0) return;
      const ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) return;
      req.append(buf, static_cast<size_t>(n));
      const auto end = req.find("\r\n\r\n");
      if (end != std::string::npos && need == std::string::npos) {
        const auto cl = req.find("Content-Length: ");
        need = end + 4 + (cl == std::string::npos ? 0 : std::stoul(req.substr(cl + 16)));
      }
    }
  }

  std::vector<std::string> responses_;
  int fd_ = -1;
  int stop_[2] = {-1, -1};
  std::vector<int> held_;
  std::atomic<int> connections_{0};
  std::string endpoint_;
  std::thread thread_;
};

aws::Credentials TestCredentials() {
  aws::Credentials c;
  c.access_key_id = "AKIATEST";
  c.secret_access_key = SecretBytes::CopyFrom(AsBytes("secret"));
  c.source = "test";
  return c;
}

aws::Request TestRequest(const std::string& endpoint) {
  static const std::string body = "{}";
  return {endpoint, "us-east-1", "kms", "application/x-amz-json-1.1", "TrentService.ListKeys", AsBytes(body)};
}

aws::RetryPolicy FastPolicy() {
  aws::RetryPolicy p;
  p.base_delay = std::chrono::milliseconds(5);
  p.max_delay = std::chrono::milliseconds(20);
  return p;
}

class AwsKmsHttp : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(InitCrypto().ok()); }
};

TEST_F(AwsKmsHttp, RetriesThrottlingAndServerErrorsThenSucceeds) {
  CannedHttpServer server({CannedHttpServer::Error(503, "ServiceUnavailable"),
                           CannedHttpServer::Error(400, "ThrottlingException"),
                           CannedHttpServer::Answer(200, R"({"Keys":[]})")});
  aws::HttpClient http(FastPolicy());
  auto r = http.Post(TestRequest(server.endpoint()), TestCredentials());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->http_status, 200);
  EXPECT_EQ(r->attempts, 3);
  EXPECT_EQ(server.connections(), 3);
}

TEST_F(AwsKmsHttp, GivesUpAfterMaxAttemptsAndDoesNotRetryClientErrors) {
  CannedHttpServer busy({CannedHttpServer::Error(500, "KMSInternalException"),
                         CannedHttpServer::Error(500, "KMSInternalException"),
                         CannedHttpServer::Error(500, "KMSInternalException"),
                         CannedHttpServer::Answer(200, "{}")});
  aws::HttpClient http(FastPolicy());
  auto r = http.Post(TestRequest(busy.endpoint()), TestCredentials());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->http_status, 500);
  EXPECT_EQ(r->error_code, "KMSInternalException");
  EXPECT_EQ(r->error_message, "canned KMSInternalException");
  EXPECT_EQ(busy.connections(), 3);

  CannedHttpServer denied({CannedHttpServer::Error(400, "AccessDeniedException")});
  r = http.Post(TestRequest(denied.endpoint()), TestCredentials());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->error_code, "AccessDeniedException");
  EXPECT_EQ(r->attempts, 1);
  EXPECT_EQ(denied.connections(), 1);
}

TEST_F(AwsKmsHttp, ASilentServerIsBoundedByTheTimeouts) {
  CannedHttpServer silent({"", "", "", ""});
  aws::RetryPolicy policy = FastPolicy();
  policy.attempt_timeout = std::chrono::milliseconds(300);
  policy.total_timeout = std::chrono::milliseconds(800);
  aws::HttpClient http(policy);
  const auto start = std::chrono::steady_clock::now();
  auto r = http.Post(TestRequest(silent.endpoint()), TestCredentials());
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
  EXPECT_TRUE(Contains(r.error().message, "cannot reach AWS KMS at " + silent.endpoint())) << r.error().message;
  EXPECT_TRUE(Contains(r.error().message, "timed out")) << r.error().message;
  EXPECT_LT(took, std::chrono::milliseconds(1500));
  EXPECT_GE(silent.connections(), 2);
}

TEST_F(AwsKmsHttp, KmsErrorsMapToCodesWithHints) {
  // Answers real KMS gives and moto does not (disabled keys, pending deletion, wrong key).
  const std::string arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
  struct Case {
    std::string answer;
    ErrorCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {CannedHttpServer::Error(400, "DisabledException"), ErrorCode::kIo, "is disabled"},
      {CannedHttpServer::Error(400, "KMSInvalidStateException"), ErrorCode::kIo, "cannot be used now"},
      {CannedHttpServer::Error(400, "IncorrectKeyException"), ErrorCode::kAuthFailed, "wrong key or encryption context"},
      {CannedHttpServer::Error(400, "InvalidCiphertextException"), ErrorCode::kAuthFailed, "wrong key or encryption context"},
      {CannedHttpServer::Error(400, "AccessDeniedException"), ErrorCode::kIo, "access denied"},
      {CannedHttpServer::Error(400, "ExpiredTokenException"), ErrorCode::kIo, "expired"},
      {CannedHttpServer::Error(400, "NotFoundException"), ErrorCode::kUsage, "not found"},
      {CannedHttpServer::Answer(200, R"({"KeyId":")" + arn + R"(","Plaintext":"AAEC"})"), ErrorCode::kAuthFailed,
       "32-byte"},
      {CannedHttpServer::Answer(200, R"({"KeyId":")" + arn + "0" + R"(","Plaintext":"AAEC"})"), ErrorCode::kAuthFailed,
       "another key"},
      {CannedHttpServer::Answer(200, "<html>proxy login</html>"), ErrorCode::kIo, "unexpected answer"},
  };
  const Bytes file_id(32, 3);
  for (const auto& c : cases) {
    CannedHttpServer server({c.answer});
    auto provider = MakeAwsKmsProvider(arn, EnvFrom({{"HOME", "/nonexistent"},
                                                     {"AWS_ACCESS_KEY_ID", "AKIATEST"},
                                                     {"AWS_SECRET_ACCESS_KEY", "secret"},
                                                     {"AWS_ENDPOINT_URL_KMS", server.endpoint()},
                                                     {"AWS_MAX_ATTEMPTS", "1"}}));
    ASSERT_TRUE(provider.ok()) << provider.error().message;
    auto r = (*provider)->Unwrap({"aws-kms", arn, Bytes(96, 9)}, {file_id, nullptr});
    ASSERT_FALSE(r.ok()) << c.message;
    EXPECT_EQ(r.error().code, c.code) << r.error().message;
    EXPECT_TRUE(Contains(r.error().message, c.message)) << r.error().message;
    if (c.code != ErrorCode::kAuthFailed) {
      EXPECT_FALSE(r.error().hint.empty()) << r.error().message;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Against moto_server.

class AwsKms : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      server_ = new MotoServer();
      key_arn_ = new std::string(server_->CreateKey());
      server_->CreateAlias(kAlias, *key_arn_);
    } catch (const std::exception& e) {
      start_error_ = new std::string(e.what());
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    delete key_arn_;
    delete start_error_;
    server_ = nullptr;
    key_arn_ = start_error_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    // Not a skip: CI installs moto_server, so its absence is a failure.
    ASSERT_EQ(start_error_, nullptr) << *start_error_;
    ASSERT_NE(server_, nullptr);
  }

  MotoServer& server() { return *server_; }
  const std::string& arn() { return *key_arn_; }
  Env ServerEnv() { return server_->Env(); }
  std::string AliasArn() { return "arn:aws:kms:us-east-1:" + arn().substr(arn().find(":key/") - 12, 12) + ":" + kAlias; }

  CliResult Run(const std::vector<std::string>& args, const Env& env) { return RunCli(args, {}, env); }
  CliResult Run(const std::vector<std::string>& args) { return RunCli(args, {}, ServerEnv()); }

  // Encrypts `plain` to dir_/name.hmod with the given --kek URIs and --context pairs.
  std::string Encrypt(const Bytes& plain, const std::vector<std::string>& keks,
                      const std::vector<std::string>& context = {}, const std::string& name = "p") {
    WriteFile(dir_ / name, plain);
    std::vector<std::string> args = {"encrypt", "-q"};
    for (const auto& k : keks) args.insert(args.end(), {"--kek", k});
    for (const auto& c : context) args.insert(args.end(), {"--context", c});
    args.insert(args.end(), {"-o", dir_ / (name + ".hmod"), dir_ / name});
    CliResult r = Run(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return dir_ / (name + ".hmod");
  }

  static constexpr const char* kAlias = "alias/hmod-models";
  static MotoServer* server_;
  static std::string* key_arn_;
  static std::string* start_error_;
  TempDir dir_;
};

MotoServer* AwsKms::server_ = nullptr;
std::string* AwsKms::key_arn_ = nullptr;
std::string* AwsKms::start_error_ = nullptr;

TEST_F(AwsKms, CliRoundTripByKeyArnAndByAlias) {
  const Bytes plain = TestData(200000, 11);
  const std::string file = Encrypt(plain, {"aws-kms:" + arn()}, {"model=m"});
  CliResult i = Run({"inspect", "--json", file});
  ASSERT_EQ(i.exit_code, 0) << i.err;
  auto doc = json::parse(i.out);
  ASSERT_EQ(doc["wrapped_keys"].size(), 1u);
  EXPECT_EQ(doc["wrapped_keys"][0]["provider"], "aws-kms");
  EXPECT_EQ(doc["wrapped_keys"][0]["key_id"], arn());

  int n = 0;
  for (const std::string& kek : {"aws-kms:" + arn(), std::string("aws-kms:") + kAlias, "aws-kms:" + AliasArn(),
                                 "aws-kms:" + arn().substr(arn().find(":key/") + 5)}) {
    const std::string out = dir_ / ("out" + std::to_string(n++));
    CliResult d = Run({"decrypt", "-q", "--kek", kek, "--context", "model=m", "-o", out, file});
    ASSERT_EQ(d.exit_code, 0) << kek << ": " << d.err;
    EXPECT_TRUE(ReadFile(out) == plain) << kek;
  }

  // Encrypting by alias records the key ARN, never the alias (FORMAT.md §5.5).
  const std::string by_alias = Encrypt(plain, {std::string("aws-kms:") + kAlias}, {}, "q");
  doc = json::parse(Run({"inspect", "--json", by_alias}).out);
  EXPECT_EQ(doc["wrapped_keys"][0]["key_id"], arn());
  CliResult d = Run({"decrypt", "--kek", "aws-kms:" + arn(), "-o", "-", by_alias});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(d.out, AsString(plain));
}

TEST_F(AwsKms, FileWrappedToAKeyFileAndKmsOpensWithEither) {
  const std::string key = MakeKeyFile(dir_);
  const Bytes plain = TestData(50000, 12);
  const std::string file = Encrypt(plain, {"file:" + key, "aws-kms:" + arn()});
  CliResult i = Run({"inspect", "--json", file});
  auto doc = json::parse(i.out);
  ASSERT_EQ(doc["wrapped_keys"].size(), 2u);
  EXPECT_EQ(doc["wrapped_keys"][1]["provider"], "aws-kms");

  // The key file alone, with KMS unreachable: no KMS call is needed.
  CliResult f = Run({"decrypt", "-q", "--kek", "file:" + key, "-o", dir_ / "o1", file},
                    With(ServerEnv(), {{"AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:1"}}));
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_TRUE(ReadFile(dir_ / "o1") == plain);
  // KMS alone.
  CliResult k = Run({"decrypt", "-q", "--kek", "aws-kms:" + arn(), "-o", dir_ / "o2", file});
  ASSERT_EQ(k.exit_code, 0) << k.err;
  EXPECT_TRUE(ReadFile(dir_ / "o2") == plain);
  CliResult v = Run({"verify", "--json", "--kek", std::string("aws-kms:") + kAlias, file});
  ASSERT_EQ(v.exit_code, 0) << v.err;
  EXPECT_TRUE(Contains(json::parse(v.out)["opened_by"].get<std::string>(), arn()));
}

TEST_F(AwsKms, WrongContextFailsOurCheckAndKmsRejectsATamperedOne) {
  const std::string file = Encrypt(TestData(30000, 13), {"aws-kms:" + arn()}, {"model=mmmm-1"});
  // Our own requirement check (FORMAT.md §2.3): exit 7, nothing written.
  CliResult ctx = Run({"decrypt", "--kek", "aws-kms:" + arn(), "--context", "model=other", "-o", dir_ / "o", file});
  EXPECT_EQ(ctx.exit_code, 7) << ctx.err;
  EXPECT_FALSE(Exists(dir_ / "o"));

  // A context altered in the header: KMS refuses the record before our MAC is even checked.
  Bytes bytes = ReadFile(file);
  const std::string s = AsString(bytes);
  const auto at = s.find("mmmm-1");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 5] = '2';
  WriteFile(dir_ / "tampered.hmod", bytes);
  CliResult t = Run({"decrypt", "--kek", "aws-kms:" + arn(), "-o", dir_ / "o", dir_ / "tampered.hmod"});
  EXPECT_EQ(t.exit_code, 6) << t.err;
  EXPECT_TRUE(Contains(t.err, "wrong key or encryption context")) << t.err;
  EXPECT_FALSE(Exists(dir_ / "o"));

  // The provider directly: KMS itself enforces the EncryptionContext and the file id.
  auto provider = MakeAwsKmsProvider(arn(), EnvFrom(ServerEnv()));
  ASSERT_TRUE(provider.ok()) << provider.error().message;
  const SecretBytes data_key = SecretBytes::Random(32);
  const EncryptionContext context = {{"model", "m"}, {"version", "1"}};
  const Bytes file_id = RandomBytes(32);
  auto wrapped = (*provider)->Wrap(data_key, {file_id, &context});
  ASSERT_TRUE(wrapped.ok()) << wrapped.error().message;
  EXPECT_EQ(wrapped->provider_id, "aws-kms");
  EXPECT_EQ(wrapped->key_id, arn());

  auto same = (*provider)->Unwrap(*wrapped, {file_id, &context});
  ASSERT_TRUE(same.ok()) << same.error().message;
  EXPECT_TRUE(same->Equals(data_key));

  const EncryptionContext other = {{"model", "m"}, {"version", "2"}};
  const EncryptionContext fewer = {{"model", "m"}};
  const Bytes other_id = RandomBytes(32);
  for (const auto& [id, ctx] : std::vector<std::pair<const Bytes*, const EncryptionContext*>>{
           {&file_id, &other}, {&file_id, &fewer}, {&file_id, nullptr}, {&other_id, &context}}) {
    auto r = (*provider)->Unwrap(*wrapped, {*id, ctx});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kAuthFailed) << r.error().message;
    EXPECT_TRUE(Contains(r.error().message, "InvalidCiphertextException")) << r.error().message;
  }
  // A flipped blob byte: failed, not "not mine".
  WrappedKey flipped = *wrapped;
  flipped.wrapped.back() ^= 1;
  auto r = (*provider)->Unwrap(flipped, {file_id, &context});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kAuthFailed);
  // A record for another key ARN is "not mine".
  WrappedKey elsewhere = *wrapped;
  elsewhere.key_id = server().CreateKey("another");
  r = (*provider)->Unwrap(elsewhere, {file_id, &context});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNoMatchingKey);
}

TEST_F(AwsKms, ReservedContextKeysAreRefused) {
  WriteFile(dir_ / "p", TestData(10, 14));
  CliResult r = Run({"encrypt", "--kek", "aws-kms:" + arn(), "--context", "hmod:file-id=00", "-o",
                     dir_ / "p.hmod", dir_ / "p"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(Contains(r.err, "reserved")) << r.err;
  EXPECT_FALSE(Exists(dir_ / "p.hmod"));
}

TEST_F(AwsKms, UnknownKeyIsAClearError) {
  WriteFile(dir_ / "p", TestData(10, 15));
  const std::string missing_arn = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000000";
  for (const std::string& kek : {std::string("aws-kms:alias/no-such-alias"), "aws-kms:" + missing_arn}) {
    CliResult r = Run({"encrypt", "--kek", kek, "-o", dir_ / "p.hmod", dir_ / "p"});
    EXPECT_EQ(r.exit_code, 2) << kek << ": " << r.err;
    EXPECT_TRUE(Contains(r.err, "not found")) << r.err;
    EXPECT_TRUE(Contains(r.err, "hint:")) << r.err;
    EXPECT_FALSE(Exists(dir_ / "p.hmod"));
  }
  // Decrypting with an alias that does not exist: the same error, not "no matching key".
  const std::string file = Encrypt(TestData(10, 16), {"aws-kms:" + arn()}, {}, "q");
  CliResult d = Run({"decrypt", "--kek", "aws-kms:alias/no-such-alias", "-o", dir_ / "o", file});
  EXPECT_EQ(d.exit_code, 2) << d.err;
  EXPECT_TRUE(Contains(d.err, "not found")) << d.err;
  EXPECT_FALSE(Exists(dir_ / "o"));
}

TEST_F(AwsKms, WrongSecretKeyFailsTheSignatureCheck) {
  const std::string file = Encrypt(TestData(1000, 17), {"aws-kms:" + arn()});
  const std::string wrong = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzWRONG";
  const Env bad_secret = With(ServerEnv(), {{"AWS_SECRET_ACCESS_KEY", wrong}});
  CliResult e = Run({"encrypt", "--json", "--kek", "aws-kms:" + arn(), "-o", dir_ / "x.hmod", dir_ / "p"},
                    bad_secret);
  EXPECT_EQ(e.exit_code, 3) << e.err;
  EXPECT_TRUE(Contains(e.err, "access denied")) << e.err;
  EXPECT_TRUE(Contains(e.err, "signature")) << e.err;
  EXPECT_FALSE(Exists(dir_ / "x.hmod"));
  CliResult d = Run({"decrypt", "--kek", "aws-kms:" + arn(), "-o", dir_ / "o", file}, bad_secret);
  EXPECT_EQ(d.exit_code, 3) << d.err;
  EXPECT_TRUE(Contains(d.err, "SignatureDoesNotMatch")) << d.err;
  EXPECT_FALSE(Exists(dir_ / "o"));
  for (const auto& r : {e, d}) {
    EXPECT_FALSE(Contains(r.out + r.err, wrong));
    EXPECT_FALSE(Contains(r.out + r.err, server().secret_access_key()));
  }
  CliResult unknown = Run({"decrypt", "--kek", "aws-kms:" + arn(), "-o", dir_ / "o", file},
                          With(ServerEnv(), {{"AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000"}}));
  EXPECT_EQ(unknown.exit_code, 3) << unknown.err;
  EXPECT_TRUE(Contains(unknown.err, "access key id")) << unknown.err;
}

TEST_F(AwsKms, CredentialsFromAProfileFile) {
  const Bytes plain = TestData(5000, 18);
  const std::string file = Encrypt(plain, {"aws-kms:" + arn()});
  WriteFile(dir_ / "credentials",
            AsBytes("[hmod-ci]\naws_access_key_id = " + server().access_key_id() +
                    "\naws_secret_access_key = " + server().secret_access_key() + "\n"),
            0600);
  WriteFile(dir_ / "config", AsBytes("[profile hmod-ci]\nregion = us-east-1\n"));
  const Env profile = With(ServerEnv(), {{"AWS_ACCESS_KEY_ID", ""},
                                         {"AWS_SECRET_ACCESS_KEY", ""},
                                         {"AWS_REGION", ""},
                                         {"AWS_PROFILE", "hmod-ci"},
                                         {"AWS_SHARED_CREDENTIALS_FILE", dir_ / "credentials"},
                                         {"AWS_CONFIG_FILE", dir_ / "config"}});
  CliResult d = Run({"decrypt", "-q", "--kek", std::string("aws-kms:") + kAlias, "-o", dir_ / "o", file}, profile);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_TRUE(ReadFile(dir_ / "o") == plain);

  // The default profile under $HOME/.aws.
  TempDir home;
  ASSERT_EQ(::mkdir((home / ".aws").c_str(), 0700), 0);
  WriteFile(home / ".aws/credentials",
            AsBytes("[default]\naws_access_key_id=" + server().access_key_id() +
                    "\naws_secret_access_key=" + server().secret_access_key() + "\n"),
            0600);
  WriteFile(home / ".aws/config", AsBytes("[default]\nregion=us-east-1\n"));
  const Env by_home = With(profile, {{"HOME", home.path()},
                                     {"AWS_PROFILE", ""},
                                     {"AWS_SHARED_CREDENTIALS_FILE", ""},
                                     {"AWS_CONFIG_FILE", ""}});
  CliResult v = Run({"verify", "-q", "--kek", std::string("aws-kms:") + kAlias, file}, by_home);
  EXPECT_EQ(v.exit_code, 0) << v.err;

  // No credentials anywhere: a usage error that says where it looked.
  CliResult none = Run({"verify", "--kek", "aws-kms:" + arn(), file},
                       With(by_home, {{"HOME", dir_ / "nowhere"}}));
  EXPECT_EQ(none.exit_code, 2) << none.err;
  EXPECT_TRUE(Contains(none.err, "no AWS credentials found")) << none.err;
}

TEST_F(AwsKms, DisabledKeyIsAClearError) {
  // moto still encrypts and decrypts with a disabled key (research/components.md), so this
  // checks the DescribeKey state that an alias lookup sees.
  const std::string key = server().CreateKey("to be disabled");
  server().CreateAlias("alias/hmod-disabled", key);
  const std::string file = Encrypt(TestData(100, 19), {"aws-kms:" + key});
  // moto's DisableKey fails (HTTP 500) when given an ARN: pass the bare key id.
  server().Kms("DisableKey", {{"KeyId", key.substr(key.find(":key/") + 5)}});
  CliResult d = Run({"decrypt", "--kek", "aws-kms:alias/hmod-disabled", "-o", dir_ / "o", file});
  EXPECT_EQ(d.exit_code, 3) << d.err;
  EXPECT_TRUE(Contains(d.err, "Disabled")) << d.err;
  EXPECT_TRUE(Contains(d.err, "enable-key")) << d.err;
  EXPECT_FALSE(Exists(dir_ / "o"));
}

TEST_F(AwsKms, KmsStoppedMidRunFailsClearlyAndQuickly) {
  // Its own server: this one is stopped.
  MotoServer kms;
  const std::string key = kms.CreateKey();
  WriteFile(dir_ / "p", TestData(70000, 20));
  CliResult e = RunCli({"encrypt", "-q", "--kek", "aws-kms:" + key, "-o", dir_ / "p.hmod", dir_ / "p"}, {}, kms.Env());
  ASSERT_EQ(e.exit_code, 0) << e.err;
  kms.Stop();

  const auto start = std::chrono::steady_clock::now();
  CliResult d = RunCli({"decrypt", "--kek", "aws-kms:" + key, "-o", dir_ / "o", dir_ / "p.hmod"}, {}, kms.Env());
  const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 30.0);
  EXPECT_EQ(d.exit_code, 3) << d.err;
  EXPECT_TRUE(Contains(d.err, "cannot reach AWS KMS at " + kms.endpoint())) << d.err;
  EXPECT_TRUE(Contains(d.err, "attempts")) << d.err;
  EXPECT_FALSE(Exists(dir_ / "o"));
  for (const auto& n : dir_.List()) EXPECT_EQ(n.find(".hmod-tmp-"), std::string::npos) << n;
}

}  // namespace
}  // namespace hmod::testing
