#include "audit/tls_probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hmod::audit {
namespace {

struct CtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};

class Socket {
 public:
  explicit Socket(int fd = -1) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(Socket&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  int fd() const { return fd_; }

 private:
  int fd_;
};

void SetTimeouts(int fd, std::chrono::milliseconds t) {
  timeval tv{static_cast<time_t>(t.count() / 1000), static_cast<suseconds_t>((t.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Non-blocking connect bounded by `timeout`, then a blocking socket whose reads and writes
// time out too, so a silent server cannot hang the audit.
Result<Socket> Connect(const std::string& host, uint16_t port, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list); rc != 0) {
    return MakeError(ErrorCode::kIo, "cannot resolve " + host + ": " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(list, ::freeaddrinfo);
  std::string last = "no address";
  for (addrinfo* a = list; a; a = a->ai_next) {
    Socket s(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
    if (s.fd() < 0) continue;
    int rc = ::connect(s.fd(), a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{s.fd(), POLLOUT, 0};
      rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
      if (rc == 0) {
        last = "timed out";
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(s.fd(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        last = std::strerror(err);
        continue;
      }
    } else if (rc != 0) {
      last = std::strerror(errno);
      continue;
    }
    ::fcntl(s.fd(), F_SETFL, ::fcntl(s.fd(), F_GETFL) & ~O_NONBLOCK);
    SetTimeouts(s.fd(), timeout);
    return s;
  }
  return MakeError(ErrorCode::kIo, "cannot connect to " + host + ":" + service + ": " + last,
                   "check the host name, the port and any firewall");
}

void OnMessage(int write_p, int, int content_type, const void* buf, size_t len, SSL*, void* arg) {
  auto* r = static_cast<ProbeResult*>(arg);
  if (write_p || content_type != SSL3_RT_HANDSHAKE || len == 0) return;
  const int type = static_cast<const uint8_t*>(buf)[0];
  if (type == SSL3_MT_SERVER_HELLO) r->server_hello = true;
  if (type == SSL3_MT_CERTIFICATE_REQUEST) r->cert_requested = true;
}

std::string OpenSslError() {
  const unsigned long e = ERR_peek_last_error();
  const char* reason = e ? ERR_reason_error_string(e) : nullptr;
  ERR_clear_error();
  if (!e) return "connection closed";
  return reason ? reason : "TLS error";
}

bool IsIpLiteral(const std::string& host) {
  in6_addr a6{};
  in_addr a4{};
  return ::inet_pton(AF_INET, host.c_str(), &a4) == 1 || ::inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

}  // namespace

Result<ProbeResult> Probe(const std::string& host, uint16_t port, const ProbeSpec& spec,
                          std::chrono::milliseconds timeout) {
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, CtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return MakeError(ErrorCode::kCrypto, "cannot create a TLS context");
  // Offer what the check asks for, including what a careful client would refuse.
  SSL_CTX_set_security_level(ctx.get(), 0);
  SSL_CTX_set_min_proto_version(ctx.get(), spec.min_version);
  SSL_CTX_set_max_proto_version(ctx.get(), spec.max_version);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  if (SSL_CTX_set_cipher_list(ctx.get(), spec.cipher_list.c_str()) != 1 && spec.max_version < TLS1_3_VERSION) {
    ERR_clear_error();
    ProbeResult none;
    none.failure = "this OpenSSL build has none of the ciphers " + spec.cipher_list;
    return none;
  }
  if (!spec.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), spec.cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx.get(), spec.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx.get()) != 1) {
      return MakeError(ErrorCode::kUsage, "cannot load the client certificate " + spec.cert_file + " / " + spec.key_file +
                                              ": " + OpenSslError());
    }
  }
  SSL_CTX_set_msg_callback(ctx.get(), OnMessage);

  HMOD_ASSIGN_OR_RETURN(Socket sock, Connect(host, port, timeout));
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
  if (!ssl) return MakeError(ErrorCode::kCrypto, "cannot create a TLS connection");
  ProbeResult r;
  SSL_set_msg_callback_arg(ssl.get(), &r);
  SSL_set_fd(ssl.get(), sock.fd());
  if (!IsIpLiteral(host)) SSL_set_tlsext_host_name(ssl.get(), host.c_str());

  r.handshake_ok = SSL_connect(ssl.get()) == 1;
  if (!r.handshake_ok) r.failure = OpenSslError();
  if (r.handshake_ok && r.cert_requested && spec.settle.count() > 0) {
    SetTimeouts(sock.fd(), spec.settle);
    char byte;
    const int n = SSL_read(ssl.get(), &byte, 1);
    if (n <= 0) {
      const int err = SSL_get_error(ssl.get(), n);
      const bool eof = err == SSL_ERROR_SYSCALL && n == 0;  // closed without an alert
      if (err == SSL_ERROR_SSL || err == SSL_ERROR_ZERO_RETURN || eof) {
        r.handshake_ok = false;
        r.failure = OpenSslError();
      }
    }
    ERR_clear_error();
  }
  if (r.server_hello) {
    r.version = SSL_version(ssl.get());
    r.version_name = SSL_get_version(ssl.get());
    if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl.get())) r.cipher = SSL_CIPHER_get_name(c);
    if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl.get())) r.chain.reset(X509_chain_up_ref(chain));
  }
  SSL_shutdown(ssl.get());
  ERR_clear_error();
  return r;
}

}  // namespace hmod::audit
