#include "support/tls_server.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <regex>
#include <stdexcept>

extern char** environ;

namespace hmod::testing {
namespace {

using Clock = std::chrono::steady_clock;

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* c) const { X509_free(c); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using CertPtr = std::unique_ptr<X509, CertFree>;

void Check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test PKI: ") + what + " failed");
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  Check(ext != nullptr, "X509V3_EXT_conf_nid");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

CertPtr MakeCert(EVP_PKEY* key, const std::string& cn, X509* issuer, long from, long to) {
  CertPtr c(X509_new());
  X509_set_version(c.get(), 2);
  uint8_t serial[8];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(c.get()), from);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), to);
  X509_set_pubkey(c.get(), key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(c.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(c.get(), X509_get_subject_name(issuer ? issuer : c.get()));
  return c;
}

void WritePem(const std::string& path, X509* cert, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  Check(f != nullptr, "fopen");
  const bool ok = cert ? PEM_write_X509(f, cert) == 1 : PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  std::fclose(f);
  Check(ok, "PEM write");
  if (key) ::chmod(path.c_str(), 0600);
}

}  // namespace

struct TestCa::Impl {
  KeyPtr key;
  CertPtr cert;
};

TestCa::TestCa(std::string dir) : dir_(std::move(dir)), impl_(std::make_unique<Impl>()) {
  impl_->key.reset(EVP_EC_gen("P-256"));
  Check(impl_->key != nullptr, "EC key generation");
  impl_->cert = MakeCert(impl_->key.get(), "hmod audit test CA", nullptr, -3600, 3650L * 86400);
  AddExtension(impl_->cert.get(), impl_->cert.get(), NID_basic_constraints, "critical,CA:TRUE");
  AddExtension(impl_->cert.get(), impl_->cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExtension(impl_->cert.get(), impl_->cert.get(), NID_subject_key_identifier, "hash");
  Check(X509_sign(impl_->cert.get(), impl_->key.get(), EVP_sha256()) > 0, "CA signing");
  WritePem(ca_file(), impl_->cert.get(), nullptr);
}

TestCa::~TestCa() = default;

void TestCa::Issue(const std::string& name, const std::string& sans, long not_before_seconds, long not_after_seconds,
                   bool client, bool rsa) {
  KeyPtr key(rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256"));
  Check(key != nullptr, "EC key generation");
  CertPtr c = MakeCert(key.get(), name, impl_->cert.get(), not_before_seconds, not_after_seconds);
  AddExtension(c.get(), impl_->cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(c.get(), impl_->cert.get(), NID_key_usage, rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature");
  AddExtension(c.get(), impl_->cert.get(), NID_ext_key_usage, client ? "clientAuth" : "serverAuth");
  AddExtension(c.get(), impl_->cert.get(), NID_authority_key_identifier, "keyid:always");
  if (!sans.empty()) AddExtension(c.get(), impl_->cert.get(), NID_subject_alt_name, sans);
  Check(X509_sign(c.get(), impl_->key.get(), EVP_sha256()) > 0, "certificate signing");
  WritePem(Key(name), nullptr, key.get());
  WritePem(Cert(name), c.get(), nullptr);
}

TlsServer::TlsServer(const std::string& cert, const std::string& key, const std::vector<std::string>& extra) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, null_fd, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);  // its own group: the destructor signals exactly this

  std::vector<std::string> args = {"openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", cert, "-key", key, "-www"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int rc = posix_spawnp(&pid_, "openssl", &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  ::close(null_fd);
  if (rc != 0) {
    ::close(fds[0]);
    pid_ = -1;
    throw std::runtime_error(std::string("cannot start openssl s_server: ") + std::strerror(rc));
  }
  out_fd_ = fds[0];

  // s_server prints "ACCEPT 127.0.0.1:PORT" once it listens.
  const std::regex accept(R"(ACCEPT 127\.0\.0\.1:(\d+))");
  std::string seen;
  std::smatch m;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!std::regex_search(seen, m, accept)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{out_fd_, POLLIN, 0};
    char buf[1024];
    ssize_t n = 0;
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0 ||
        (n = ::read(out_fd_, buf, sizeof buf)) <= 0) {
      Stop();
      throw std::runtime_error("openssl s_server did not start; output:\n" + seen);
    }
    seen.append(buf, static_cast<size_t>(n));
  }
  port_ = static_cast<uint16_t>(std::stoi(m[1].str()));
  // It logs every connection: keep its pipe drained.
  drain_ = std::thread([fd = out_fd_] {
    char buf[4096];
    while (::read(fd, buf, sizeof buf) > 0) {
    }
  });
}

TlsServer::~TlsServer() { Stop(); }

void TlsServer::Stop() {
  if (pid_ > 0) {
    ::kill(-pid_, SIGTERM);
    int status = 0;
    bool reaped = false;
    for (int i = 0; i < 200 && !reaped; ++i) {
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

}  // namespace hmod::testing
