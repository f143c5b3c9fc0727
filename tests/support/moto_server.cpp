#include "support/moto_server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <mutex>
#include <regex>
#include <stdexcept>
#include <vector>

#include "io/percent_encoding.h"
#include "keys/aws_http.h"

extern char** environ;

namespace hmod::testing {
namespace {

using Clock = std::chrono::steady_clock;

// IAM CreateUser, CreateAccessKey and PutUserPolicy; moto verifies every call after these.
constexpr int kUnauthenticatedCalls = 3;
constexpr auto kStartTimeout = std::chrono::seconds(30);
constexpr size_t kLogTailBytes = 16 * 1024;

std::string XmlElement(const std::string& xml, const std::string& tag) {
  const auto a = xml.find("<" + tag + ">");
  const auto b = xml.find("</" + tag + ">");
  if (a == std::string::npos || b == std::string::npos) return {};
  return xml.substr(a + tag.size() + 2, b - a - tag.size() - 2);
}

aws::Credentials MakeCredentials(const std::string& id, const std::string& secret) {
  aws::Credentials c;
  c.access_key_id = id;
  c.secret_access_key = SecretBytes::CopyFrom(AsBytes(secret));
  c.source = "the moto test fixture";
  return c;
}

}  // namespace

struct MotoServer::Log {
  std::mutex mu;
  std::string tail;
  void Append(const char* data, size_t n) {
    std::lock_guard<std::mutex> lock(mu);
    tail.append(data, n);
    if (tail.size() > kLogTailBytes) tail.erase(0, tail.size() - kLogTailBytes);
  }
};

MotoServer::MotoServer() : log_(std::make_shared<Log>()) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);  // its own group: Stop() signals exactly what we started

  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) {
    if (std::strncmp(*e, "INITIAL_NO_AUTH_ACTION_COUNT=", 29) != 0) env_s.emplace_back(*e);
  }
  env_s.push_back("INITIAL_NO_AUTH_ACTION_COUNT=" + std::to_string(kUnauthenticatedCalls));
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = {"moto_server", "-H", "127.0.0.1", "-p", "0"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const int rc = posix_spawnp(&pid_, "moto_server", &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    pid_ = -1;
    throw std::runtime_error(std::string("cannot start moto_server (") + std::strerror(rc) +
                             "): the AWS KMS tests need it on PATH; install it with "
                             "pip install 'moto[server]'");
  }
  out_fd_ = fds[0];

  // Werkzeug prints " * Running on http://127.0.0.1:PORT" once the socket is listening.
  const std::regex running(R"(Running on http://127\.0\.0\.1:(\d+))");
  std::string seen;
  const auto deadline = Clock::now() + kStartTimeout;
  std::smatch m;
  while (!std::regex_search(seen, m, running)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{out_fd_, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0) {
      Stop();
      throw std::runtime_error("moto_server printed no port within 30 s; output:\n" + seen);
    }
    char buf[4096];
    const ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n <= 0) {
      Stop();
      throw std::runtime_error("moto_server exited before listening (is it installed? "
                               "pip install 'moto[server]'); output:\n" + seen);
    }
    seen.append(buf, static_cast<size_t>(n));
  }
  endpoint_ = "http://127.0.0.1:" + m[1].str();
  log_->Append(seen.data(), seen.size());
  // moto logs every request: keep draining so it never blocks on a full pipe.
  drain_ = std::thread([fd = out_fd_, log = log_] {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) log->Append(buf, static_cast<size_t>(n));
  });

  try {
    // The unauthenticated calls (kUnauthenticatedCalls of them).
    IamCall("Action=CreateUser&UserName=hmod-test&Version=2010-05-08");
    const std::string key = IamCall("Action=CreateAccessKey&UserName=hmod-test&Version=2010-05-08");
    access_key_id_ = XmlElement(key, "AccessKeyId");
    secret_access_key_ = XmlElement(key, "SecretAccessKey");
    const std::string policy =
        R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]})";
    IamCall("Action=PutUserPolicy&UserName=hmod-test&PolicyName=all&PolicyDocument=" + PercentEncode(policy) +
            "&Version=2010-05-08");
    if (access_key_id_.empty() || secret_access_key_.empty()) {
      throw std::runtime_error("moto IAM CreateAccessKey returned no key:\n" + key);
    }
    // From here on moto must verify signatures: a wrong secret must be refused.
    aws::HttpClient http;
    const std::string body = "{}";
    auto r = http.Post({endpoint_, kRegion, "kms", "application/x-amz-json-1.1", "TrentService.ListKeys", AsBytes(body)},
                       MakeCredentials(access_key_id_, "not-the-secret"));
    if (!r.ok() || r->error_code != "SignatureDoesNotMatch") {
      throw std::runtime_error("moto_server does not verify SigV4 signatures (INITIAL_NO_AUTH_ACTION_COUNT "
                               "ignored?); a wrongly signed call got " +
                               (r.ok() ? "HTTP " + std::to_string(r->http_status) + " " + r->error_code
                                       : r.error().message));
    }
  } catch (...) {
    Stop();
    throw;
  }
}

MotoServer::~MotoServer() { Stop(); }

void MotoServer::Stop() {
  if (pid_ > 0) {
    ::kill(-pid_, SIGTERM);
    int status = 0;
    bool reaped = false;
    for (int i = 0; i < 300 && !reaped; ++i) {  // up to 3 s
      reaped = ::waitpid(pid_, &status, WNOHANG) == pid_;
      if (!reaped) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!reaped) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
    pid_ = -1;
  }
  if (drain_.joinable()) drain_.join();
  if (out_fd_ >= 0) {
    ::close(out_fd_);
    out_fd_ = -1;
  }
}

std::map<std::string, std::string> MotoServer::Env() const {
  return {
      {"AWS_ACCESS_KEY_ID", access_key_id_},
      {"AWS_SECRET_ACCESS_KEY", secret_access_key_},
      {"AWS_SESSION_TOKEN", ""},
      {"AWS_REGION", kRegion},
      {"AWS_DEFAULT_REGION", ""},
      {"AWS_ENDPOINT_URL_KMS", endpoint_},
      {"AWS_ENDPOINT_URL", ""},
      {"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", ""},
      {"AWS_PROFILE", ""},
      {"AWS_DEFAULT_PROFILE", ""},
      {"AWS_CONFIG_FILE", "/nonexistent/hmod-test/aws-config"},
      {"AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/hmod-test/aws-credentials"},
      {"AWS_MAX_ATTEMPTS", ""},
      {"AWS_CA_BUNDLE", ""},
      {"NO_PROXY", "127.0.0.1,localhost"},
      {"no_proxy", "127.0.0.1,localhost"},
  };
}

std::string MotoServer::IamCall(const std::string& form_body) const {
  aws::HttpClient http;
  // Signed with a throwaway key: these are the calls moto lets through unverified, and the
  // credential scope routes them to IAM.
  auto r = http.Post({endpoint_, kRegion, "iam", "application/x-www-form-urlencoded; charset=utf-8", "",
                      AsBytes(form_body)},
                     MakeCredentials("AKIAHMODBOOTSTRAP", "bootstrap"));
  if (!r.ok()) throw std::runtime_error("moto IAM call failed: " + r.error().message);
  if (!r->ok()) {
    throw std::runtime_error("moto IAM call failed: HTTP " + std::to_string(r->http_status) + " " +
                             std::string(r->body.begin(), r->body.end()));
  }
  return std::string(r->body.begin(), r->body.end());
}

nlohmann::json MotoServer::Kms(const std::string& action, const nlohmann::json& request) const {
  aws::HttpClient http;
  const std::string body = request.dump();
  auto r = http.Post({endpoint_, kRegion, "kms", "application/x-amz-json-1.1", "TrentService." + action,
                      AsBytes(body)},
                     MakeCredentials(access_key_id_, secret_access_key_));
  if (!r.ok()) throw std::runtime_error("KMS " + action + ": " + r.error().message);
  const std::string text(r->body.begin(), r->body.end());
  if (!r->ok()) {
    throw std::runtime_error("KMS " + action + ": HTTP " + std::to_string(r->http_status) + " " + text);
  }
  return nlohmann::json::parse(text.empty() || text == "null" ? "{}" : text);
}

std::string MotoServer::CreateKey(const std::string& description) const {
  auto doc = Kms("CreateKey", {{"Description", description}, {"KeySpec", "SYMMETRIC_DEFAULT"},
                               {"KeyUsage", "ENCRYPT_DECRYPT"}});
  return doc.at("KeyMetadata").at("Arn").get<std::string>();
}

void MotoServer::CreateAlias(const std::string& alias_name, const std::string& key_id) const {
  Kms("CreateAlias", {{"AliasName", alias_name}, {"TargetKeyId", key_id}});
}

std::string MotoServer::Output() const {
  std::lock_guard<std::mutex> lock(log_->mu);
  return log_->tail;
}

}  // namespace hmod::testing
