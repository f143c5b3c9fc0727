// TLS peers for the audit tests: a private CA that issues certificates with any names and
// validity (OpenSSL API, EC P-256, written as PEM into a directory), and `openssl s_server`
// as a child process on 127.0.0.1 with a kernel-chosen port, stopped by its PID.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace hmod::testing {

class TestCa {
 public:
  // Creates DIR/ca.pem (the CA certificate) and keeps its key in memory. Throws on failure.
  explicit TestCa(std::string dir);
  ~TestCa();
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  // Issues DIR/NAME.pem (certificate) and DIR/NAME.key (key, 0600). `sans` are
  // subjectAltName entries ("IP:127.0.0.1", "DNS:host"); validity is relative to now. The key
  // is EC P-256, or RSA-2048 with `rsa` (for static-RSA key exchange).
  void Issue(const std::string& name, const std::string& sans, long not_before_seconds, long not_after_seconds,
             bool client = false, bool rsa = false);
  std::string Cert(const std::string& name) const { return dir_ + "/" + name + ".pem"; }
  std::string Key(const std::string& name) const { return dir_ + "/" + name + ".key"; }
  std::string ca_file() const { return dir_ + "/ca.pem"; }

 private:
  struct Impl;
  std::string dir_;
  std::unique_ptr<Impl> impl_;
};

class TlsServer {
 public:
  // Runs `openssl s_server -accept 127.0.0.1:0 -cert CERT -key KEY -www EXTRA...` and waits
  // for its port. Throws if it does not listen within 10 s.
  TlsServer(const std::string& cert, const std::string& key, const std::vector<std::string>& extra);
  ~TlsServer();  // SIGTERM to its process group, then SIGKILL
  TlsServer(const TlsServer&) = delete;
  TlsServer& operator=(const TlsServer&) = delete;

  uint16_t port() const { return port_; }
  std::string target() const { return "tls://127.0.0.1:" + std::to_string(port_); }

 private:
  void Stop();
  pid_t pid_ = -1;
  int out_fd_ = -1;
  uint16_t port_ = 0;
  std::thread drain_;
};

}  // namespace hmod::testing
