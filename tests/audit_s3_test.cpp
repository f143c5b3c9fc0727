// hmodctl audit on S3: a signature-verifying moto_server on 127.0.0.1, buckets configured
// through the S3 REST API in each combination the checks tell apart (docs/AUDIT.md §2).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "audit/bucket_policy.h"
#include "audit/s3_client.h"
#include "keys/aws_http.h"
#include "support/audit_fixture.h"
#include "support/model_builder.h"
#include "support/moto_server.h"

namespace hmod::testing {
namespace {

using nlohmann::json;
using audit::S3Client;
using audit::S3Request;

// The read-only policy of docs/AUDIT.md.
constexpr const char* kReadOnlyActions =
    R"("s3:ListBucket","s3:GetObject","s3:GetEncryptionConfiguration","s3:GetBucketPolicy",)"
    R"("s3:GetBucketPublicAccessBlock","s3:GetBucketVersioning")";
constexpr const char* kXmlns = R"( xmlns="http://s3.amazonaws.com/doc/2006-03-01/")";

std::string Url(const std::string& s) { return audit::S3UriEncode(s, false); }

class AuditS3 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { moto_ = new MotoServer(); }
  static void TearDownTestSuite() {
    delete moto_;
    moto_ = nullptr;
  }

  std::map<std::string, std::string> Env(const std::string& id = {}, const std::string& secret = {}) const {
    auto env = moto_->Env();
    env["AWS_ENDPOINT_URL_S3"] = moto_->endpoint();
    if (!id.empty()) {
      env["AWS_ACCESS_KEY_ID"] = id;
      env["AWS_SECRET_ACCESS_KEY"] = secret;
    }
    return env;
  }
  static S3Client ClientFor(const std::map<std::string, std::string>& env) {
    auto c = S3Client::FromEnvironment([env](const std::string& n) -> std::optional<std::string> {
      auto it = env.find(n);
      return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
    });
    if (!c.ok()) throw std::runtime_error(c.error().message);
    return std::move(*c);
  }
  S3Client Client() const { return ClientFor(Env()); }
  // One signed call that must succeed.
  void Call(const std::string& method, const std::string& bucket, const std::string& key, const std::string& sub,
            const std::string& body = {}, std::vector<std::string> headers = {}) const {
    S3Request r;
    r.method = method;
    r.bucket = bucket;
    r.key = key;
    if (!sub.empty()) r.query = {{sub, ""}};
    r.body = body;
    r.headers = std::move(headers);
    auto resp = Client().Send(r);
    ASSERT_TRUE(resp.ok()) << resp.error().message;
    ASSERT_TRUE(resp->ok()) << method << " " << bucket << "/" << key << "?" << sub << ": HTTP " << resp->status << " "
                            << resp->body;
  }
  void CreateBucket(const std::string& b) const { Call("PUT", b, "", ""); }
  void Encryption(const std::string& b, const std::string& algorithm, bool bucket_key) const {
    std::string rule = "<ApplyServerSideEncryptionByDefault><SSEAlgorithm>" + algorithm + "</SSEAlgorithm>";
    if (algorithm != "AES256") rule += "<KMSMasterKeyID>alias/models</KMSMasterKeyID>";
    rule += "</ApplyServerSideEncryptionByDefault>";
    if (bucket_key) rule += "<BucketKeyEnabled>true</BucketKeyEnabled>";
    Call("PUT", b, "", "encryption",
         std::string("<ServerSideEncryptionConfiguration") + kXmlns + "><Rule>" + rule + "</Rule></ServerSideEncryptionConfiguration>");
  }
  void PublicAccessBlock(const std::string& b, bool restrict_public_buckets) const {
    Call("PUT", b, "", "publicAccessBlock",
         std::string("<PublicAccessBlockConfiguration") + kXmlns +
             "><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true</IgnorePublicAcls>"
             "<BlockPublicPolicy>true</BlockPublicPolicy><RestrictPublicBuckets>" +
             (restrict_public_buckets ? "true" : "false") + "</RestrictPublicBuckets></PublicAccessBlockConfiguration>");
  }
  void Versioning(const std::string& b, const std::string& status) const {
    Call("PUT", b, "", "versioning",
         std::string("<VersioningConfiguration") + kXmlns + "><Status>" + status + "</Status></VersioningConfiguration>");
  }
  void Put(const std::string& b, const std::string& key, ByteSpan data, const std::string& sse = {}) const {
    std::vector<std::string> h;
    if (!sse.empty()) h.push_back("x-amz-server-side-encryption: " + sse);
    Call("PUT", b, key, "", std::string(data.begin(), data.end()), h);
  }
  // A bucket with every protection on, holding .hmod models and ordinary data.
  void SecureBucket(const std::string& b) const {
    CreateBucket(b);
    Encryption(b, "aws:kms", true);
    PublicAccessBlock(b, true);
    Versioning(b, "Enabled");
    Put(b, "models/llama.hmod", HmodModel());
    Put(b, "models/notes.txt", AsBytes("trained on 2026-11-01\n"));
    Put(b, "models/empty", {});
  }
  static std::string SecurePolicy(const std::string& b) {
    return R"({"Version":"2012-10-17","Statement":[
      {"Sid":"TlsOnly","Effect":"Deny","Principal":"*","Action":"s3:*",
       "Resource":["arn:aws:s3:::)" + b + R"(","arn:aws:s3:::)" + b + R"(/*"],
       "Condition":{"Bool":{"aws:SecureTransport":"false"}}},
      {"Sid":"KmsOnly","Effect":"Deny","Principal":{"AWS":"*"},"Action":"s3:PutObject",
       "Resource":"arn:aws:s3:::)" + b + R"(/*",
       "Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption":"aws:kms"}}}]})";
  }
  Bytes HmodModel() const {
    TempDir d;
    const std::string key = MakeKeyFile(d);
    WriteFile(d / "m", BuildSafetensors({{"w", "F32", {4}, TestData(16, 1)}}));
    CliResult r = RunCli({"encrypt", "-q", "--kek", "file:" + key, "-o", d / "m.hmod", d / "m"});
    if (r.exit_code != 0) throw std::runtime_error(r.err);
    return ReadFile(d / "m.hmod");
  }
  AuditRun Audit(const std::vector<std::string>& targets, std::map<std::string, std::string> env = {}) const {
    if (env.empty()) env = Env();
    return RunAudit(targets, env);
  }

  // Credentials of a new moto IAM user allowed only `actions` (a JSON array's elements).
  std::map<std::string, std::string> UserEnv(const std::string& user, const std::string& actions) const {
    // No spaces: moto re-encodes the form body before checking its signature.
    const std::string policy =
        R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":[)" + actions + R"(],"Resource":"*"}]})";
    aws::HttpClient http;
    aws::Credentials admin;
    admin.access_key_id = moto_->access_key_id();
    admin.secret_access_key = SecretBytes::CopyFrom(AsBytes(moto_->secret_access_key()));
    auto iam = [&](const std::string& form) {
      auto r = http.Post({moto_->endpoint(), MotoServer::kRegion, "iam",
                          "application/x-www-form-urlencoded; charset=utf-8", "", AsBytes(form)},
                         admin);
      if (!r.ok()) throw std::runtime_error("IAM call failed: " + r.error().message);
      if (!r->ok()) throw std::runtime_error("IAM call failed: " + form + ": " + std::string(r->body.begin(), r->body.end()));
      return std::string(r->body.begin(), r->body.end());
    };
    iam("Action=CreateUser&UserName=" + user + "&Version=2010-05-08");
    iam("Action=PutUserPolicy&UserName=" + user + "&PolicyName=p&PolicyDocument=" + Url(policy) + "&Version=2010-05-08");
    const std::string key = iam("Action=CreateAccessKey&UserName=" + user + "&Version=2010-05-08");
    auto element = [&](const std::string& tag) {
      const auto a = key.find("<" + tag + ">") + tag.size() + 2;
      return key.substr(a, key.find("</" + tag + ">") - a);
    };
    return Env(element("AccessKeyId"), element("SecretAccessKey"));
  }

  static MotoServer* moto_;
};
MotoServer* AuditS3::moto_ = nullptr;

TEST_F(AuditS3, ProtectedBucketPassesEveryBucketAndObjectCheck) {
  SecureBucket("secure-models");
  AuditRun run = Audit({"s3://secure-models"});
  const json enc = OneFinding(run, "s3.default-encryption");
  EXPECT_EQ(enc["level"], "pass");
  EXPECT_EQ(enc["details"]["algorithm"], "aws:kms");
  EXPECT_EQ(enc["details"]["bucket_key"], true);
  EXPECT_EQ(LevelOf(run, "s3.public-access-block"), "pass");
  EXPECT_EQ(LevelOf(run, "s3.versioning"), "pass");
  EXPECT_EQ(LevelOf(run, "s3.object-encryption"), "pass");
  EXPECT_EQ(LevelOf(run, "s3.plaintext-model"), "pass");
  const json model = OneFinding(run, "s3.hmod-object", "models/llama.hmod");
  EXPECT_EQ(model["level"], "pass");
  EXPECT_EQ(model["details"]["sse"], "aws:kms");
  EXPECT_EQ(model["details"]["wrapped_keys"][0]["provider"], "file");
  // No policy yet: the two policy checks are the only findings that are not PASS.
  EXPECT_EQ(LevelOf(run, "s3.policy-secure-transport"), "fail");
  EXPECT_EQ(LevelOf(run, "s3.policy-deny-unencrypted"), "warn");
  EXPECT_EQ(run.doc["summary"]["fail"], 1) << run.out;
}

TEST_F(AuditS3, PolicyThatDeniesPlainHttpAndUnencryptedUploadsPasses) {
  CreateBucket("policy-models");
  Call("PUT", "policy-models", "", "policy", SecurePolicy("policy-models"));
  AuditRun run = Audit({"s3://policy-models"});
  EXPECT_EQ(LevelOf(run, "s3.policy-secure-transport"), "pass") << run.out << run.err;
  const json f = OneFinding(run, "s3.policy-deny-unencrypted");
  EXPECT_EQ(f["level"], "pass");
  EXPECT_EQ(f["details"]["required"], "aws:kms");
}

TEST_F(AuditS3, PolicyDocumentsAreReadForDenyStatementsThatApplyToEveryone) {
  auto facts = audit::AnalysePolicy(SecurePolicy("b"));
  ASSERT_TRUE(facts.ok());
  EXPECT_TRUE(facts->denies_insecure_transport);
  EXPECT_TRUE(facts->denies_unencrypted_uploads);
  // An Allow, a Deny for one principal only, or the wrong condition value protect nothing.
  auto weak = audit::AnalysePolicy(R"({"Statement":[
    {"Effect":"Allow","Principal":"*","Action":"s3:*","Condition":{"Bool":{"aws:SecureTransport":"true"}}},
    {"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::1:user/x"},"Action":"s3:*","Condition":{"Bool":{"aws:SecureTransport":false}}},
    {"Effect":"Deny","Principal":"*","Action":["s3:GetObject"],"Condition":{"Bool":{"aws:SecureTransport":"true"}}}]})");
  ASSERT_TRUE(weak.ok());
  EXPECT_FALSE(weak->denies_insecure_transport);
  EXPECT_FALSE(weak->denies_unencrypted_uploads);
  // The Null form of "no encryption header" and a single-statement object also count.
  auto null_form = audit::AnalysePolicy(R"({"Statement":{"Effect":"Deny","Principal":"*","Action":"s3:PutObject",
    "Condition":{"Null":{"s3:x-amz-server-side-encryption":"true"}}}})");
  ASSERT_TRUE(null_form.ok());
  EXPECT_TRUE(null_form->denies_unencrypted_uploads);
  EXPECT_FALSE(audit::AnalysePolicy("not json").ok());
}

TEST_F(AuditS3, UnprotectedBucketFailsAndPlaintextModelsAreFoundByTheirFirstBytes) {
  CreateBucket("open-models");  // moto: no encryption configuration at all (404)
  Put("open-models", "team/llama.safetensors", BuildSafetensors({{"w", "F32", {4}, TestData(16, 2)}}));
  GgufSpec gguf;
  gguf.tensors.push_back({"t", {4}, 0, TestData(16, 3), std::nullopt});
  Put("open-models", "team/odd name.dat", BuildGguf(gguf));
  Put("open-models", "team/kms.hmod", HmodModel(), "aws:kms");
  Put("open-models", "team/old.enc", AsBytes("ENCMODEL...legacy whole-file container..."), "aws:kms");
  Put("open-models", "other/ignored.safetensors", BuildSafetensors({{"w", "F32", {1}, TestData(4, 4)}}));
  // A prefix without "/": moto's SigV4 check (unlike AWS) rejects "%2F" in a query value.
  AuditRun run = Audit({"s3://open-models/team"});
  EXPECT_EQ(run.exit_code, 1) << run.err;
  const json enc = OneFinding(run, "s3.default-encryption");
  EXPECT_EQ(enc["level"], "fail");
  EXPECT_EQ(enc["details"]["algorithm"], "none");
  EXPECT_EQ(LevelOf(run, "s3.public-access-block"), "fail");
  EXPECT_EQ(LevelOf(run, "s3.versioning"), "warn");
  EXPECT_EQ(LevelOf(run, "s3.policy-secure-transport"), "fail");
  const json st = OneFinding(run, "s3.plaintext-model", "team/llama.safetensors");
  EXPECT_EQ(st["level"], "fail");
  EXPECT_EQ(st["details"]["format"], "safetensors");
  EXPECT_EQ(OneFinding(run, "s3.plaintext-model", "team/odd name.dat")["details"]["format"], "gguf");
  EXPECT_EQ(LevelOf(run, "s3.object-encryption", "team/llama.safetensors"), "fail");
  EXPECT_TRUE(Findings(run.doc, "s3.object-encryption", "team/kms.hmod").empty()) << "SSE-KMS object is fine";
  EXPECT_EQ(LevelOf(run, "s3.hmod-object", "team/kms.hmod"), "pass");
  EXPECT_EQ(LevelOf(run, "s3.hmod-object", "team/old.enc"), "warn");
  EXPECT_TRUE(Findings(run.doc, "s3.plaintext-model", "other/ignored.safetensors").empty()) << "outside the prefix";
}

TEST_F(AuditS3, SseS3DefaultSuspendedVersioningAndPartialBlockAreFlagged) {
  // Real AWS: every new bucket has SSE-S3 (AES256) by default.
  CreateBucket("sse-s3-models");
  Encryption("sse-s3-models", "AES256", false);
  Versioning("sse-s3-models", "Suspended");
  PublicAccessBlock("sse-s3-models", false);
  Put("sse-s3-models", "a.bin", TestData(100, 5));
  AuditRun run = Audit({"s3://sse-s3-models"});
  EXPECT_EQ(LevelOf(run, "s3.default-encryption"), "warn");
  const json v = OneFinding(run, "s3.versioning");
  EXPECT_EQ(v["level"], "warn");
  EXPECT_EQ(v["details"]["status"], "Suspended");
  const json pab = OneFinding(run, "s3.public-access-block");
  EXPECT_EQ(pab["level"], "fail");
  EXPECT_NE(pab["message"].get<std::string>().find("RestrictPublicBuckets"), std::string::npos);
  const json objects = OneFinding(run, "s3.object-encryption");
  EXPECT_EQ(objects["level"], "warn");
  EXPECT_EQ(objects["details"]["count"], 1);

  CreateBucket("dsse-models");
  Encryption("dsse-models", "aws:kms:dsse", false);
  AuditRun dsse = Audit({"s3://dsse-models"});
  EXPECT_EQ(LevelOf(dsse, "s3.default-encryption"), "pass");
}

TEST_F(AuditS3, ThousandsOfObjectsArePagedAndReadConcurrently) {
  constexpr int kObjects = 2150;  // three ListObjectsV2 pages of 1000
  CreateBucket("many-models");
  Encryption("many-models", "aws:kms", true);
  const Bytes plain = BuildSafetensors({{"w", "F32", {2}, TestData(8, 6)}});
  std::atomic<int> next{0}, failed{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < 8; ++t) {
    pool.emplace_back([&] {
      S3Client s3 = Client();
      for (int i; (i = next++) < kObjects;) {
        S3Request r;
        r.method = "PUT";
        r.bucket = "many-models";
        char key[32];
        std::snprintf(key, sizeof key, "shard/%05d.bin", i);
        r.key = key;
        const Bytes body = i == 1234 ? plain : TestData(64, static_cast<uint64_t>(i));
        r.body.assign(body.begin(), body.end());
        auto resp = s3.Send(r);
        if (!resp.ok() || !resp->ok()) ++failed;
      }
    });
  }
  for (auto& t : pool) t.join();
  ASSERT_EQ(failed, 0);
  AuditRun run = Audit({"s3://many-models/shard"});
  const json summary = OneFinding(run, "s3.object-encryption");
  EXPECT_EQ(summary["level"], "pass");
  EXPECT_NE(summary["message"].get<std::string>().find("all 2150 object(s)"), std::string::npos) << summary;
  const auto models = Findings(run.doc, "s3.plaintext-model");
  ASSERT_EQ(models.size(), 1u) << run.out.substr(0, 2000);
  EXPECT_EQ(models[0]["location"], "s3://many-models/shard/01234.bin");
}

// An auditor needs only read permissions: a user limited to the documented read-only policy
// runs every check without one "cannot read".
TEST_F(AuditS3, ReadOnlyCredentialsAreEnough) {
  SecureBucket("readonly-models");
  Put("readonly-models", "models/plain.safetensors", BuildSafetensors({{"w", "F32", {1}, TestData(4, 7)}}));
  const auto env = UserEnv("auditor", kReadOnlyActions);

  AuditRun run = Audit({"s3://readonly-models"}, env);
  EXPECT_EQ(run.exit_code, 1) << run.err;  // the plaintext model and the missing policy fail
  EXPECT_EQ(run.out.find("cannot read"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find("could not read"), std::string::npos) << run.out;
  EXPECT_EQ(LevelOf(run, "s3.plaintext-model", "models/plain.safetensors"), "fail");
  EXPECT_EQ(LevelOf(run, "s3.default-encryption"), "pass");

  // The same user cannot write: the audit really ran with read-only rights.
  S3Client reader = ClientFor(env);
  S3Request put;
  put.method = "PUT";
  put.bucket = "readonly-models";
  put.key = "models/new";
  put.body = "x";
  auto denied = reader.Send(put);
  ASSERT_TRUE(denied.ok());
  EXPECT_EQ(denied->status, 403) << denied->body;
}

// A permission missing for one bucket call makes that check a WARN naming the permission.
TEST_F(AuditS3, MissingReadPermissionIsAWarningThatNamesIt) {
  SecureBucket("partial-models");
  const auto env = UserEnv("partial", R"("s3:ListBucket","s3:GetObject","s3:GetEncryptionConfiguration",)"
                                      R"("s3:GetBucketPolicy","s3:GetBucketPublicAccessBlock")");
  AuditRun run = Audit({"s3://partial-models"}, env);
  const json v = OneFinding(run, "s3.versioning");
  EXPECT_EQ(v["level"], "warn");
  EXPECT_NE(v["message"].get<std::string>().find("AccessDenied"), std::string::npos) << v;
  EXPECT_NE(v["remediation"].get<std::string>().find("s3:GetBucketVersioning"), std::string::npos) << v;
  EXPECT_EQ(LevelOf(run, "s3.default-encryption"), "pass");
}

TEST_F(AuditS3, MissingBucketOrCredentialsMeanTheAuditCouldNotRun) {
  AuditRun missing = Audit({"s3://no-such-bucket-here"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("no bucket named"), std::string::npos) << missing.err;

  auto env = Env();
  env["AWS_ACCESS_KEY_ID"] = "";
  env["AWS_SECRET_ACCESS_KEY"] = "";
  AuditRun nocreds = Audit({"s3://secure-models"}, env);
  EXPECT_EQ(nocreds.exit_code, 2);
  EXPECT_NE(nocreds.err.find("no AWS credentials"), std::string::npos) << nocreds.err;

  CreateBucket("wrong-secret");
  AuditRun bad = Audit({"s3://wrong-secret"}, Env(moto_->access_key_id(), "not-the-secret"));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("SignatureDoesNotMatch"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace hmod::testing
