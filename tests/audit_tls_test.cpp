// hmodctl audit on TLS endpoints: real `openssl s_server` peers on loopback, certificates
// issued by a CA made in the test (docs/AUDIT.md §3).
#include <gtest/gtest.h>

#include "support/audit_fixture.h"
#include "support/tls_server.h"

namespace hmod::testing {
namespace {

constexpr long kDay = 86400;

class AuditTls : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = std::make_unique<TestCa>(dir_.path());
    ca_->Issue("good", "IP:127.0.0.1,DNS:localhost", -kDay, 365 * kDay);
  }
  // Audits `server` trusting the test CA.
  AuditRun Audit(const TlsServer& server, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--ca", ca_->ca_file(), "--timeout", "3"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(server.target());
    return RunAudit(args);
  }
  TempDir dir_;
  std::unique_ptr<TestCa> ca_;
};

TEST_F(AuditTls, ModernServerPassesVersionCipherAndCertificateChecks) {
  TlsServer server(ca_->Cert("good"), ca_->Key("good"), {});
  AuditRun run = Audit(server);
  EXPECT_EQ(LevelOf(run, "tls.legacy-versions"), "pass");
  EXPECT_EQ(LevelOf(run, "tls.tls13"), "pass");
  EXPECT_EQ(LevelOf(run, "tls.weak-ciphers"), "pass");
  EXPECT_EQ(LevelOf(run, "tls.certificate-chain"), "pass");
  EXPECT_EQ(LevelOf(run, "tls.hostname"), "pass");
  EXPECT_EQ(LevelOf(run, "tls.certificate-expiry"), "pass");
  const auto f = OneFinding(run, "tls.tls13");
  EXPECT_NE(std::find(f["details"]["versions"].begin(), f["details"]["versions"].end(), "TLS 1.3"),
            f["details"]["versions"].end());
  // Nothing failed; the only WARN is the missing client-certificate requirement.
  EXPECT_EQ(LevelOf(run, "tls.client-certificate"), "warn");
  EXPECT_EQ(run.doc["summary"]["fail"], 0) << run.out;
  EXPECT_EQ(run.exit_code, 0) << run.err;
}

TEST_F(AuditTls, Tls12OnlyServerWarnsForMissingTls13) {
  TlsServer server(ca_->Cert("good"), ca_->Key("good"), {"-tls1_2"});
  AuditRun run = Audit(server);
  EXPECT_EQ(LevelOf(run, "tls.tls13"), "warn");
  EXPECT_EQ(LevelOf(run, "tls.legacy-versions"), "pass");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(Audit(server, {"--fail-on", "warn"}).exit_code, 1);
}

TEST_F(AuditTls, LegacyVersionsAndWeakCiphersFail) {
  TlsServer server(ca_->Cert("good"), ca_->Key("good"),
                   {"-min_protocol", "TLSv1", "-max_protocol", "TLSv1.2", "-cipher", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"});
  AuditRun run = Audit(server);
  const auto legacy = OneFinding(run, "tls.legacy-versions");
  EXPECT_EQ(legacy["level"], "fail");
  EXPECT_NE(legacy["message"].get<std::string>().find("TLS 1.0"), std::string::npos) << legacy;
  EXPECT_NE(legacy["message"].get<std::string>().find("TLS 1.1"), std::string::npos) << legacy;
  EXPECT_EQ(LevelOf(run, "tls.weak-ciphers"), "fail");
  EXPECT_EQ(LevelOf(run, "tls.tls13"), "warn");
  EXPECT_EQ(run.exit_code, 1);
}

TEST_F(AuditTls, StaticRsaKeyExchangeWarns) {
  ca_->Issue("rsa", "IP:127.0.0.1", -kDay, 365 * kDay, /*client=*/false, /*rsa=*/true);
  TlsServer server(ca_->Cert("rsa"), ca_->Key("rsa"), {"-tls1_2", "-cipher", "AES128-GCM-SHA256"});
  AuditRun run = Audit(server);
  const auto f = OneFinding(run, "tls.weak-ciphers");
  EXPECT_EQ(f["level"], "warn");
  EXPECT_EQ(f["details"]["cipher"], "AES128-GCM-SHA256");
  EXPECT_NE(f["message"].get<std::string>().find("forward secrecy"), std::string::npos);
}

TEST_F(AuditTls, UntrustedChainFailsWithoutTheRightCa) {
  TlsServer server(ca_->Cert("good"), ca_->Key("good"), {});
  // Without --ca the system store does not know the test CA.
  AuditRun run = RunAudit({"--timeout", "3", server.target()});
  const auto f = OneFinding(run, "tls.certificate-chain");
  EXPECT_EQ(f["level"], "fail");
  EXPECT_NE(f["message"].get<std::string>().find("system trust store"), std::string::npos);
  EXPECT_EQ(run.exit_code, 1);
}

TEST_F(AuditTls, WrongHostnameFails) {
  ca_->Issue("other", "DNS:models.example.org", -kDay, 365 * kDay);
  TlsServer server(ca_->Cert("other"), ca_->Key("other"), {});
  AuditRun run = Audit(server);
  const auto f = OneFinding(run, "tls.hostname");
  EXPECT_EQ(f["level"], "fail");
  EXPECT_NE(f["message"].get<std::string>().find("models.example.org"), std::string::npos);
  EXPECT_EQ(LevelOf(run, "tls.certificate-chain"), "pass") << "the chain itself is fine";
  EXPECT_EQ(run.exit_code, 1);
}

TEST_F(AuditTls, ExpiredCertificateFailsAndSoonExpiringWarns) {
  ca_->Issue("expired", "IP:127.0.0.1", -90 * kDay, -kDay);
  ca_->Issue("soon", "IP:127.0.0.1", -90 * kDay, 10 * kDay);
  {
    TlsServer server(ca_->Cert("expired"), ca_->Key("expired"), {});
    AuditRun run = Audit(server);
    EXPECT_EQ(LevelOf(run, "tls.certificate-expiry"), "fail");
    EXPECT_EQ(LevelOf(run, "tls.certificate-chain"), "pass") << "expiry is reported on its own";
    EXPECT_EQ(run.exit_code, 1);
  }
  TlsServer server(ca_->Cert("soon"), ca_->Key("soon"), {});
  AuditRun run = Audit(server);
  const auto f = OneFinding(run, "tls.certificate-expiry");
  EXPECT_EQ(f["level"], "warn");
  EXPECT_GE(f["details"]["days_left"].get<int>(), 9);
  EXPECT_LE(f["details"]["days_left"].get<int>(), 10);
}

TEST_F(AuditTls, ServerThatRequiresAClientCertificatePasses) {
  ca_->Issue("client", "DNS:auditor", -kDay, 365 * kDay, /*client=*/true);
  TlsServer server(ca_->Cert("good"), ca_->Key("good"), {"-Verify", "1", "-CAfile", ca_->ca_file(), "-verify_return_error"});
  AuditRun anonymous = Audit(server);
  EXPECT_EQ(LevelOf(anonymous, "tls.client-certificate"), "pass");
  EXPECT_EQ(LevelOf(anonymous, "tls.certificate-chain"), "pass");
  EXPECT_EQ(LevelOf(anonymous, "tls.tls13"), "pass");

  AuditRun with_cert = Audit(server, {"--cert", ca_->Cert("client"), "--key", ca_->Key("client")});
  const auto f = OneFinding(with_cert, "tls.client-certificate");
  EXPECT_EQ(f["level"], "pass");
  EXPECT_EQ(f["details"]["given_certificate"], "accepted");
  EXPECT_EQ(with_cert.exit_code, 0) << with_cert.out;

  // The same over TLS 1.2, where the refusal comes inside the handshake.
  TlsServer tls12(ca_->Cert("good"), ca_->Key("good"),
                  {"-tls1_2", "-Verify", "1", "-CAfile", ca_->ca_file(), "-verify_return_error"});
  EXPECT_EQ(LevelOf(Audit(tls12), "tls.client-certificate"), "pass");
}

TEST_F(AuditTls, UnreachableEndpointMeansTheAuditCouldNotRun) {
  uint16_t port = 0;
  {
    TlsServer server(ca_->Cert("good"), ca_->Key("good"), {});
    port = server.port();
  }
  AuditRun run = RunAudit({"--timeout", "2", "tls://127.0.0.1:" + std::to_string(port)});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("cannot connect"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace hmod::testing
