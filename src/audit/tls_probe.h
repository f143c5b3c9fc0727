// One TLS handshake against an endpoint, with exactly the versions and cipher suites a check
// wants to offer. The client accepts anything (security level 0, no verification) so that it
// can see what a server agrees to; trust is judged afterwards from the chain it recorded.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <string>

#include "hmod/result.h"

namespace hmod::audit {

struct ChainFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
using X509Chain = std::unique_ptr<STACK_OF(X509), ChainFree>;

struct ProbeSpec {
  int min_version = TLS1_VERSION;
  int max_version = TLS1_3_VERSION;
  std::string cipher_list = "ALL:COMPLEMENTOFALL:@SECLEVEL=0";  // TLS 1.2 and below
  std::string cert_file, key_file;  // a client certificate to present, or empty
  // After a completed handshake in which the server asked for a certificate, wait this long
  // for a rejection: a TLS 1.3 server refuses a missing certificate only after the client's
  // Finished, so the client sees it on its first read.
  std::chrono::milliseconds settle{0};
};

struct ProbeResult {
  bool server_hello = false;   // the server chose a version and suite from our offer
  bool handshake_ok = false;   // ... and the handshake completed (and survived `settle`)
  bool cert_requested = false; // the server sent a CertificateRequest
  int version = 0;             // negotiated, e.g. TLS1_3_VERSION
  std::string version_name;    // "TLSv1.3"
  std::string cipher;          // "TLS_AES_256_GCM_SHA384"
  std::string failure;         // why the handshake failed, for messages
  X509Chain chain;             // the server's certificates, leaf first (may be null)
};

// Connects to host:port within `timeout` (connect, and each read/write) and runs one
// handshake. Errors (kIo) only when no TCP connection could be made: a refused handshake is a
// result, not an error.
Result<ProbeResult> Probe(const std::string& host, uint16_t port, const ProbeSpec& spec,
                          std::chrono::milliseconds timeout);

}  // namespace hmod::audit
