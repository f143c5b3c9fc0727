// TLS endpoints (docs/AUDIT.md §3): what the server agrees to, probed one handshake per
// question, and its certificate judged from the chain it sent.
#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>

#include "audit/audit.h"
#include "audit/tls_probe.h"

namespace hmod::audit {
namespace {

constexpr int kExpiryWarnDays = 30;
// Broken suites (RFC 7465 RC4, RFC 8996's era of export, NULL, anonymous and 64-bit blocks).
constexpr const char* kWeakCiphers = "NULL:aNULL:eNULL:EXPORT:LOW:RC4:DES:3DES:MD5:@SECLEVEL=0";
// Static-RSA key exchange: no forward secrecy.
constexpr const char* kStaticRsaCiphers = "kRSA:!aNULL:!eNULL:@SECLEVEL=0";

// The server agreed to the offer: the handshake completed, or it got as far as asking for a
// client certificate we did not have (TLS 1.2 and below fail there).
bool Accepted(const ProbeResult& r) { return r.handshake_ok || (r.server_hello && r.cert_requested); }

std::string Date(const ASN1_TIME* t) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return "?";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

std::string SubjectNames(X509* leaf) {
  std::string names;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
    std::string one;
    if (n->type == GEN_DNS) {
      one.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.dNSName)), ASN1_STRING_length(n->d.dNSName));
    } else if (n->type == GEN_IPADD && ASN1_STRING_length(n->d.iPAddress) == 4) {
      const uint8_t* a = ASN1_STRING_get0_data(n->d.iPAddress);
      one = std::to_string(a[0]) + "." + std::to_string(a[1]) + "." + std::to_string(a[2]) + "." + std::to_string(a[3]);
    } else {
      continue;
    }
    names += (names.empty() ? "" : ", ") + one;
  }
  GENERAL_NAMES_free(sans);
  if (names.empty()) {
    char cn[256] = {0};
    X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof cn);
    names = std::string("CN=") + cn;
  }
  return names;
}

bool IsIp(const std::string& host) { return host.find(':') != std::string::npos || std::all_of(host.begin(), host.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || c == '.'; }); }

struct Checker {
  const Target& t;
  const Options& o;
  Report& report;

  void Add(const char* rule, Level level, std::string message, std::string fix = {},
           nlohmann::json details = nlohmann::json::object()) {
    report.findings.push_back({rule, level, t.text, t.text, std::move(message), level == Level::kPass ? "" : std::move(fix),
                               std::move(details)});
  }

  Result<ProbeResult> Run(ProbeSpec spec) {
    spec.cert_file = spec.cert_file.empty() ? o.cert_file : spec.cert_file;
    spec.key_file = spec.key_file.empty() ? o.key_file : spec.key_file;
    return Probe(t.host, t.port, spec, o.tls_timeout);
  }

  void Chain(const ProbeResult& main) {
    X509* leaf = main.chain && sk_X509_num(main.chain.get()) > 0 ? sk_X509_value(main.chain.get(), 0) : nullptr;
    if (!leaf) {
      Add("tls.certificate-chain", Level::kFail, "the server sent no certificate (anonymous key exchange)",
          "configure a certificate from a CA your clients trust");
      return;
    }
    std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
    const bool loaded = o.ca_file.empty() ? X509_STORE_set_default_paths(store.get()) == 1
                                          : X509_STORE_load_file(store.get(), o.ca_file.c_str()) == 1;
    std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(), X509_STORE_CTX_free);
    const std::string anchors = o.ca_file.empty() ? "the system trust store" : o.ca_file;
    bool ok = false;
    std::string why = "cannot load " + anchors;
    if (loaded && X509_STORE_CTX_init(ctx.get(), store.get(), leaf, main.chain.get()) == 1) {
      // Expiry is its own check: judge the chain as if today were inside every validity period.
      X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx.get()), X509_V_FLAG_NO_CHECK_TIME);
      X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
      ok = X509_verify_cert(ctx.get()) == 1;
      why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
    }
    nlohmann::json details = {{"trust_anchors", anchors}, {"chain_length", sk_X509_num(main.chain.get())}};
    if (ok) {
      Add("tls.certificate-chain", Level::kPass, "certificate chain verifies against " + anchors, "", details);
    } else {
      Add("tls.certificate-chain", Level::kFail, "certificate chain does not verify against " + anchors + ": " + why,
          "serve the full chain from a CA the clients trust (audit a private CA with --ca FILE)", details);
    }

    const std::string names = SubjectNames(leaf);
    const bool match = IsIp(t.host) ? X509_check_ip_asc(leaf, t.host.c_str(), 0) == 1
                                    : X509_check_host(leaf, t.host.c_str(), t.host.size(), 0, nullptr) == 1;
    if (match) {
      Add("tls.hostname", Level::kPass, "certificate is valid for " + t.host, "", {{"names", names}});
    } else {
      Add("tls.hostname", Level::kFail, "certificate is for " + names + ", not " + t.host,
          "issue a certificate whose subjectAltName includes " + t.host, {{"names", names}});
    }

    int days = 0, secs = 0;
    const ASN1_TIME* not_after = X509_get0_notAfter(leaf);
    const ASN1_TIME* not_before = X509_get0_notBefore(leaf);
    int pre_days = 0, pre_secs = 0;
    ASN1_TIME_diff(&pre_days, &pre_secs, nullptr, not_before);
    ASN1_TIME_diff(&days, &secs, nullptr, not_after);
    nlohmann::json validity = {{"not_before", Date(not_before)}, {"not_after", Date(not_after)}, {"days_left", days}};
    const char* renew = "renew the certificate (and automate renewal, e.g. ACME)";
    if (pre_days > 0 || pre_secs > 0) {
      Add("tls.certificate-expiry", Level::kFail, "certificate is not valid before " + Date(not_before),
          "check the server's clock and the certificate's notBefore", validity);
    } else if (days < 0 || secs < 0) {
      Add("tls.certificate-expiry", Level::kFail, "certificate expired on " + Date(not_after), renew, validity);
    } else if (days < kExpiryWarnDays) {
      Add("tls.certificate-expiry", Level::kWarn,
          "certificate expires in " + std::to_string(days) + " day(s), on " + Date(not_after), renew, validity);
    } else {
      Add("tls.certificate-expiry", Level::kPass,
          "certificate valid for " + std::to_string(days) + " more days (until " + Date(not_after) + ")", "", validity);
    }
  }
};

}  // namespace

Status AuditTls(const Target& t, const Options& o, Report& report) {
  Checker c{t, o, report};
  const auto settle = std::min(o.tls_timeout, std::chrono::milliseconds(1500));
  ProbeSpec main_spec;
  if (!o.cert_file.empty()) main_spec.settle = settle;  // learn whether the given certificate is accepted
  HMOD_ASSIGN_OR_RETURN(ProbeResult main, c.Run(main_spec));
  if (!main.server_hello) {
    return MakeError(ErrorCode::kIo, "no TLS handshake with " + t.host + ":" + std::to_string(t.port) + ": " + main.failure,
                     "is this a TLS endpoint? (tls://host:port of an HTTPS or other TLS service)");
  }

  // Versions, one handshake each.
  struct Version {
    int id;
    const char* name;
    bool accepted = false;
  } versions[] = {{TLS1_VERSION, "TLS 1.0"}, {TLS1_1_VERSION, "TLS 1.1"}, {TLS1_2_VERSION, "TLS 1.2"}, {TLS1_3_VERSION, "TLS 1.3"}};
  nlohmann::json offered = nlohmann::json::array();
  for (auto& v : versions) {
    ProbeSpec spec;
    spec.min_version = spec.max_version = v.id;
    HMOD_ASSIGN_OR_RETURN(ProbeResult r, c.Run(spec));
    v.accepted = Accepted(r);
    if (v.accepted) offered.push_back(v.name);
  }
  const nlohmann::json version_details = {{"versions", offered}, {"negotiated", main.version_name}, {"cipher", main.cipher}};
  std::string legacy;
  for (int i = 0; i < 2; ++i) {
    if (versions[i].accepted) legacy += (legacy.empty() ? "" : " and ") + std::string(versions[i].name);
  }
  if (!legacy.empty()) {
    c.Add("tls.legacy-versions", Level::kFail, "accepts " + legacy,
          "allow only TLS 1.2 and 1.3 (e.g. nginx: ssl_protocols TLSv1.2 TLSv1.3)", version_details);
  } else {
    c.Add("tls.legacy-versions", Level::kPass, "refuses TLS 1.0 and 1.1", "", version_details);
  }
  if (versions[3].accepted) {
    c.Add("tls.tls13", Level::kPass, "offers TLS 1.3", "", version_details);
  } else {
    c.Add("tls.tls13", Level::kWarn, "does not offer TLS 1.3", "enable TLS 1.3 (OpenSSL 1.1.1 or later on the server)",
          version_details);
  }

  // Cipher suites exist to be weak only up to TLS 1.2.
  const bool pre13 = versions[0].accepted || versions[1].accepted || versions[2].accepted;
  if (!pre13) {
    c.Add("tls.weak-ciphers", Level::kPass, "TLS 1.3 only: no weak cipher suites can be negotiated");
  } else {
    ProbeSpec weak;
    weak.max_version = TLS1_2_VERSION;
    weak.cipher_list = kWeakCiphers;
    HMOD_ASSIGN_OR_RETURN(ProbeResult w, c.Run(weak));
    ProbeSpec rsa = weak;
    rsa.cipher_list = kStaticRsaCiphers;
    ProbeResult s;
    if (!Accepted(w)) {
      HMOD_ASSIGN_OR_RETURN(s, c.Run(rsa));
    }
    const char* fix = "allow only ECDHE with AES-GCM or ChaCha20-Poly1305 for TLS 1.2 (Mozilla 'intermediate')";
    if (Accepted(w)) {
      c.Add("tls.weak-ciphers", Level::kFail, "accepts the weak cipher suite " + w.cipher + " (" + w.version_name + ")", fix,
            {{"cipher", w.cipher}, {"version", w.version_name}});
    } else if (Accepted(s)) {
      c.Add("tls.weak-ciphers", Level::kWarn,
            "accepts static-RSA key exchange (" + s.cipher + "): no forward secrecy", fix,
            {{"cipher", s.cipher}, {"version", s.version_name}});
    } else {
      c.Add("tls.weak-ciphers", Level::kPass, "refuses NULL, anonymous, export, RC4, DES, 3DES, MD5 and static-RSA suites");
    }
  }

  c.Chain(main);

  // mTLS: does a client without a certificate get in?
  ProbeSpec anonymous;
  anonymous.settle = settle;
  HMOD_ASSIGN_OR_RETURN(ProbeResult m, Probe(t.host, t.port, anonymous, o.tls_timeout));
  nlohmann::json mtls = {{"requested", m.cert_requested}};
  std::string given;
  if (!o.cert_file.empty()) {
    mtls["given_certificate"] = main.handshake_ok ? "accepted" : "refused";
    given = main.handshake_ok ? "; the certificate given with --cert is accepted"
                              : "; the certificate given with --cert is REFUSED (" + main.failure + ")";
  }
  const char* require = "require client certificates (mTLS) for model registries and artifact stores";
  if (!m.cert_requested) {
    c.Add("tls.client-certificate", Level::kWarn, "does not ask for a client certificate: any client can connect" + given,
          require, mtls);
  } else if (m.handshake_ok) {
    c.Add("tls.client-certificate", Level::kWarn, "asks for a client certificate but accepts clients without one" + given,
          "make the client certificate required (e.g. nginx: ssl_verify_client on)", mtls);
  } else {
    c.Add("tls.client-certificate", main.handshake_ok || o.cert_file.empty() ? Level::kPass : Level::kWarn,
          "requires a client certificate (mTLS)" + given, "check the certificate given with --cert", mtls);
  }
  return OkStatus();
}

}  // namespace hmod::audit
