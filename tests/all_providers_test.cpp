// Issue "key management": one file wrapped to every provider at once (file, pass, x25519,
// pkcs11 on SoftHSM2, aws-kms on a signature-checking moto_server) opens with each of them
// alone, and the result names the provider that opened it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/moto_server.h"
#include "support/softhsm_token.h"
#include "support/test_util.h"

namespace hmod::testing {
namespace {

TEST(AllProviders, OneFileOpensWithEachProviderAlone) {
  TempDir dir;
  MotoServer moto;
  SoftHsmToken token("allp");
  ASSERT_TRUE(token.ok()) << token.error();
  std::map<std::string, std::string> env = moto.Env();
  for (const auto& [k, v] : token.env()) env[k] = v;
  env["HMOD_PASSPHRASE"] = "all providers";

  const std::string key = MakeKeyFile(dir);
  CliResult id = RunCli({"keygen", "--x25519", "--json", "-o", dir / "id"});
  ASSERT_EQ(id.exit_code, 0) << id.err;
  const std::string recipient = nlohmann::json::parse(id.out)["recipient"];
  const std::string p11 = token.Uri("kek");
  CliResult p11gen = RunCli({"keygen", "--pkcs11", p11}, {}, env);
  ASSERT_EQ(p11gen.exit_code, 0) << p11gen.err;
  const std::string arn = moto.CreateKey();

  const Bytes plain = TestData(50000, 77);
  WriteFile(dir / "p", plain);
  CliResult enc = RunCli({"encrypt", "--json", "--kek", "file:" + key, "--kek", "pass:", "--kek", recipient,
                          "--kek", p11, "--kek", "aws-kms:" + arn, "--context", "model=all", "-o",
                          dir / "p.hmod", dir / "p"},
                         {}, env);
  ASSERT_EQ(enc.exit_code, 0) << enc.err;
  EXPECT_EQ(nlohmann::json::parse(enc.out)["wrapped_keys"].size(), 5u);

  const std::pair<std::string, std::string> openers[] = {{"file:" + key, "file"},
                                                         {"pass:", "pass"},
                                                         {"x25519:" + dir / "id", "x25519"},
                                                         {p11, "pkcs11"},
                                                         {"aws-kms:" + arn, "aws-kms"}};
  for (const auto& [uri, name] : openers) {
    const std::string out = dir / ("out-" + name);
    CliResult dec = RunCli({"decrypt", "--json", "--kek", uri, "--context", "model=all", "-o", out, dir / "p.hmod"},
                           {}, env);
    ASSERT_EQ(dec.exit_code, 0) << name << ": " << dec.err;
    EXPECT_EQ(nlohmann::json::parse(dec.out)["opened_by"].get<std::string>().rfind(name, 0), 0u) << dec.out;
    EXPECT_TRUE(ReadFile(out) == plain) << name;
  }
}

}  // namespace
}  // namespace hmod::testing
