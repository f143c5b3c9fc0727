// A real AWS KMS stand-in for tests: `moto_server` as a child process on 127.0.0.1 that
// VERIFIES SigV4 signatures. moto checks signatures only after INITIAL_NO_AUTH_ACTION_COUNT
// unauthenticated calls; the fixture spends exactly those on creating an IAM user, its access
// key and an allow-all policy, then checks that a badly signed call is refused.
// Nothing is skipped: if moto_server is missing or does not start, construction throws and
// the test fails (CI installs it: pip install 'moto[server]').
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

namespace hmod::testing {

class MotoServer {
 public:
  static constexpr const char* kRegion = "us-east-1";

  // Starts moto_server, waits for its port, sets up credentials. Throws std::runtime_error.
  MotoServer();
  // Stops the child by its PID (its own process group): SIGTERM, then SIGKILL.
  ~MotoServer();
  MotoServer(const MotoServer&) = delete;
  MotoServer& operator=(const MotoServer&) = delete;

  // Stops the server now (a test of "KMS went away"). Idempotent.
  void Stop();

  const std::string& endpoint() const { return endpoint_; }  // http://127.0.0.1:PORT
  const std::string& access_key_id() const { return access_key_id_; }
  const std::string& secret_access_key() const { return secret_access_key_; }

  // Variables for hmodctl or the provider: these credentials, region and endpoint, with every
  // other AWS setting blanked and the shared files pointed at nothing, so that a developer's
  // ~/.aws is never read.
  std::map<std::string, std::string> Env() const;

  // A signed KMS JSON call with the fixture's credentials. Throws unless HTTP 2xx.
  nlohmann::json Kms(const std::string& action, const nlohmann::json& request) const;
  // CreateKey (SYMMETRIC_DEFAULT); returns the key ARN.
  std::string CreateKey(const std::string& description = "hmod test key") const;
  void CreateAlias(const std::string& alias_name, const std::string& key_id) const;

  // The tail of moto_server's output, for failure messages.
  std::string Output() const;

 private:
  std::string IamCall(const std::string& form_body) const;

  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::thread drain_;
  struct Log;
  std::shared_ptr<Log> log_;
  std::string endpoint_;
  std::string access_key_id_;
  std::string secret_access_key_;
};

}  // namespace hmod::testing
