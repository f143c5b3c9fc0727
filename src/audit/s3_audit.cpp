// S3 buckets (docs/AUDIT.md §2): the bucket's settings, then every object under the prefix,
// listed page by page while a pool of workers reads each object's first bytes.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "audit/audit.h"
#include "audit/bucket_policy.h"
#include "audit/container_info.h"
#include "audit/s3_client.h"
#include "audit/sniff.h"
#include "audit/xml.h"

namespace hmod::audit {
namespace {

// The findings of one S3 target; object workers add to them concurrently.
struct Check {
  const Target& t;
  Report& report;
  std::mutex mu;

  void Add(const char* rule, Level level, const std::string& location, std::string message, std::string fix = {},
           nlohmann::json details = nlohmann::json::object()) {
    std::lock_guard<std::mutex> lock(mu);
    report.findings.push_back({rule, level, t.text, location, std::move(message), level == Level::kPass ? "" : std::move(fix),
                               std::move(details)});
  }
  std::string Bucket() const { return "s3://" + t.bucket; }

  // A bucket call the auditor could not make: a WARN naming the permission, not an error.
  void Denied(const char* rule, const S3Response& r, const char* permission) {
    Add(rule, Level::kWarn, Bucket(), "cannot read: " + r.error_code + " (HTTP " + std::to_string(r.status) + ")",
        std::string("grant the auditor ") + permission + " (docs/AUDIT.md, read-only policy)");
  }
};

Result<S3Response> BucketGet(const S3Client& s3, const std::string& bucket, const char* subresource) {
  S3Request r;
  r.bucket = bucket;
  r.query = {{subresource, ""}};
  return s3.Send(r);
}

Status DefaultEncryption(Check& c, const S3Client& s3) {
  HMOD_ASSIGN_OR_RETURN(S3Response r, BucketGet(s3, c.t.bucket, "encryption"));
  const char* rule = "s3.default-encryption";
  if (r.status == 404 && r.error_code == "ServerSideEncryptionConfigurationNotFoundError") {
    c.Add(rule, Level::kFail, c.Bucket(), "no default encryption: objects are stored as each uploader chose",
          "set SSE-KMS as the default: aws s3api put-bucket-encryption (SSEAlgorithm aws:kms, BucketKeyEnabled true)",
          {{"algorithm", "none"}});
    return OkStatus();
  }
  if (!r.ok()) {
    c.Denied(rule, r, "s3:GetEncryptionConfiguration");
    return OkStatus();
  }
  const std::string algorithm = XmlText(r.body, "SSEAlgorithm");
  const std::string kms_key = XmlText(r.body, "KMSMasterKeyID");
  const bool bucket_key = XmlText(r.body, "BucketKeyEnabled") == "true";
  nlohmann::json details = {{"algorithm", algorithm}, {"bucket_key", bucket_key}};
  if (!kms_key.empty()) details["kms_key_id"] = kms_key;
  if (algorithm == "aws:kms" || algorithm == "aws:kms:dsse") {
    const std::string name = algorithm == "aws:kms" ? "SSE-KMS" : "DSSE-KMS";
    c.Add(rule, Level::kPass, c.Bucket(),
          "default encryption " + name + (kms_key.empty() ? " (AWS managed key)" : " with " + kms_key) +
              (bucket_key ? ", bucket key enabled" : ", bucket key disabled (every read calls KMS)"),
          "", details);
  } else if (algorithm == "AES256") {
    c.Add(rule, Level::kWarn, c.Bucket(),
          "default encryption SSE-S3 only: anyone with s3:GetObject reads plaintext; no key permission is involved",
          "use SSE-KMS with a customer managed key, so reads also need kms:Decrypt", details);
  } else {
    c.Add(rule, Level::kFail, c.Bucket(), "unknown default encryption algorithm '" + algorithm + "'",
          "set SSEAlgorithm aws:kms", details);
  }
  return OkStatus();
}

Status Policy(Check& c, const S3Client& s3) {
  HMOD_ASSIGN_OR_RETURN(S3Response r, BucketGet(s3, c.t.bucket, "policy"));
  PolicyFacts facts;
  bool have_policy = false;
  if (r.ok()) {
    auto parsed = AnalysePolicy(r.body);
    if (parsed.ok()) {
      facts = *parsed;
      have_policy = true;
    }
  } else if (!(r.status == 404 && r.error_code == "NoSuchBucketPolicy")) {
    c.Denied("s3.policy-secure-transport", r, "s3:GetBucketPolicy");
    c.Denied("s3.policy-deny-unencrypted", r, "s3:GetBucketPolicy");
    return OkStatus();
  }
  const std::string none = have_policy ? "the bucket policy has no " : "no bucket policy, so no ";
  if (facts.denies_insecure_transport) {
    c.Add("s3.policy-secure-transport", Level::kPass, c.Bucket(), "bucket policy denies requests without TLS");
  } else {
    c.Add("s3.policy-secure-transport", Level::kFail, c.Bucket(), none + "Deny for aws:SecureTransport = false",
          "add a statement: Effect Deny, Principal *, Action s3:*, Condition Bool aws:SecureTransport false");
  }
  if (facts.denies_unencrypted_uploads) {
    c.Add("s3.policy-deny-unencrypted", Level::kPass, c.Bucket(),
          "bucket policy denies uploads without server-side encryption" +
              (facts.required_encryption.empty() ? std::string() : " (" + facts.required_encryption + " required)"),
          "", {{"required", facts.required_encryption}});
  } else {
    c.Add("s3.policy-deny-unencrypted", Level::kWarn, c.Bucket(), none + "Deny for unencrypted uploads",
          "add a statement: Effect Deny, Principal *, Action s3:PutObject, Condition StringNotEquals "
          "s3:x-amz-server-side-encryption aws:kms");
  }
  return OkStatus();
}

Status PublicAccessBlock(Check& c, const S3Client& s3) {
  HMOD_ASSIGN_OR_RETURN(S3Response r, BucketGet(s3, c.t.bucket, "publicAccessBlock"));
  const char* rule = "s3.public-access-block";
  const char* fix = "turn on all four: aws s3api put-public-access-block --public-access-block-configuration "
                    "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true";
  if (r.status == 404 && r.error_code == "NoSuchPublicAccessBlockConfiguration") {
    c.Add(rule, Level::kFail, c.Bucket(), "no public access block on the bucket", fix);
    return OkStatus();
  }
  if (!r.ok()) {
    c.Denied(rule, r, "s3:GetBucketPublicAccessBlock");
    return OkStatus();
  }
  nlohmann::json details = nlohmann::json::object();
  std::string off;
  for (const char* name : {"BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"}) {
    const bool on = XmlText(r.body, name) == "true";
    details[name] = on;
    if (!on) off += (off.empty() ? "" : ", ") + std::string(name);
  }
  if (off.empty()) {
    c.Add(rule, Level::kPass, c.Bucket(), "all four public access block settings are on", "", details);
  } else {
    c.Add(rule, Level::kFail, c.Bucket(), "public access block settings off: " + off, fix, details);
  }
  return OkStatus();
}

Status Versioning(Check& c, const S3Client& s3) {
  HMOD_ASSIGN_OR_RETURN(S3Response r, BucketGet(s3, c.t.bucket, "versioning"));
  if (!r.ok()) {
    c.Denied("s3.versioning", r, "s3:GetBucketVersioning");
    return OkStatus();
  }
  const std::string status = XmlText(r.body, "Status");
  const char* fix = "aws s3api put-bucket-versioning --versioning-configuration Status=Enabled";
  if (status == "Enabled") {
    c.Add("s3.versioning", Level::kPass, c.Bucket(), "versioning enabled", "", {{"status", status}});
  } else {
    c.Add("s3.versioning", Level::kWarn, c.Bucket(),
          status.empty() ? "versioning was never enabled" : "versioning is " + status, fix,
          {{"status", status.empty() ? "never enabled" : status}});
  }
  return OkStatus();
}

// ---- objects ----------------------------------------------------------------------------

struct Object {
  std::string key;
  uint64_t size = 0;
};

// What the workers found, summarised after the last object.
struct Tally {
  std::mutex mu;
  size_t objects = 0;
  size_t plaintext = 0;
  std::vector<std::string> sse_s3;  // objects with AES256 only
  std::vector<std::string> unreadable;
  std::string first_error;
};

void CheckObject(Check& c, const S3Client& s3, const Object& o, Tally& tally) {
  S3Request req;
  req.bucket = c.t.bucket;
  req.key = o.key;
  if (o.size == 0) {
    req.method = "HEAD";
  } else {
    // Only the first bytes: what the object is, and the encryption headers of the answer.
    req.headers.push_back("Range: bytes=0-" + std::to_string(kSniffBytes - 1));
    req.max_body = kSniffBytes;
  }
  auto r = s3.Send(req);
  bool have_content = req.method == "GET";
  if (r.ok() && r->status == 403 && have_content) {
    // A GET of an SSE-KMS object also needs kms:Decrypt; HEAD still tells its encryption.
    req.method = "HEAD";
    req.headers.clear();
    r = s3.Send(req);
    have_content = false;
  }
  const std::string location = "s3://" + c.t.bucket + "/" + o.key;
  auto unreadable = [&](const std::string& why) {
    std::lock_guard<std::mutex> lock(tally.mu);
    tally.unreadable.push_back(o.key);
    if (tally.first_error.empty()) tally.first_error = why;
  };
  if (!r.ok() || !r->ok()) {
    unreadable(r.ok() ? r->error_code + " (HTTP " + std::to_string(r->status) + ")" : r.error().message);
    return;
  }
  if (!have_content && o.size > 0) unreadable("GetObject refused (AccessDenied), HEAD allowed");
  const std::string sse = r->Header("x-amz-server-side-encryption");
  nlohmann::json details = {{"sse", sse.empty() ? "none" : sse}, {"bytes", o.size}};
  if (const std::string k = r->Header("x-amz-server-side-encryption-aws-kms-key-id"); !k.empty()) details["kms_key_id"] = k;
  if (sse.empty()) {
    c.Add("s3.object-encryption", Level::kFail, location, "object is not encrypted at rest",
          "copy it over itself with SSE-KMS: aws s3 cp --sse aws:kms s3://.../key s3://.../key", details);
  } else if (sse == "AES256") {
    std::lock_guard<std::mutex> lock(tally.mu);
    tally.sse_s3.push_back(o.key);
  }
  const Bytes head(r->body.begin(), r->body.end());
  const Content kind = Sniff(head, o.size);
  details["format"] = ContentName(kind);
  if (IsPlaintextModel(kind)) {
    c.Add("s3.plaintext-model", Level::kFail, location, std::string(ContentName(kind)) + " model object in plaintext",
          "replace it with an .hmod (hmodctl encrypt) and delete the plaintext and its old versions", details);
    std::lock_guard<std::mutex> lock(tally.mu);
    ++tally.plaintext;
  } else if (kind == Content::kHmod) {
    Finding f{"s3.hmod-object", Level::kPass, c.t.text, location, "", "", details};
    auto parsed = ParseHeader(head);
    if (parsed.ok()) {
      DescribeContainer(parsed->header, f);
    } else {
      f.message = "encrypted model (.hmod; header larger than the first " + std::to_string(kSniffBytes) + " bytes)";
    }
    std::lock_guard<std::mutex> lock(c.mu);
    c.report.findings.push_back(std::move(f));
  } else if (kind == Content::kLegacyEncmodel || kind == Content::kLegacyEnvmodel) {
    c.Add("s3.hmod-object", Level::kWarn, location, "legacy ENCMODEL/ENVMODEL container",
          "migrate it to .hmod (hmodctl rotate --from-legacy, docs/LEGACY.md) and replace the object", details);
  }
}

// Lists the prefix (ListObjectsV2, page by page) into a queue that `jobs` workers drain.
Status Objects(Check& c, const S3Client& s3, const Options& o) {
  std::deque<Object> queue;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Tally tally;
  std::vector<std::thread> workers;
  for (int i = 0; i < std::max(1, o.s3_jobs); ++i) {
    workers.emplace_back([&] {
      while (true) {
        Object obj;
        {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return done || !queue.empty(); });
          if (queue.empty()) return;
          obj = std::move(queue.front());
          queue.pop_front();
        }
        CheckObject(c, s3, obj, tally);
      }
    });
  }
  auto finish = [&] {
    {
      std::lock_guard<std::mutex> lock(mu);
      done = true;
    }
    cv.notify_all();
    for (auto& w : workers) w.join();
  };

  std::string token;
  Status listed = OkStatus();
  while (true) {
    S3Request req;
    req.bucket = c.t.bucket;
    req.query = {{"list-type", "2"}, {"max-keys", std::to_string(o.s3_page_size)}};
    if (!c.t.prefix.empty()) req.query.emplace_back("prefix", c.t.prefix);
    if (!token.empty()) req.query.emplace_back("continuation-token", token);
    auto r = s3.Send(req);
    if (!r.ok()) {
      listed = r.error();
      break;
    }
    if (!r->ok()) {
      listed = MakeError(ErrorCode::kIo, "cannot list " + c.Bucket() + ": " + r->error_code + " (HTTP " + std::to_string(r->status) + ")",
                         "the auditor needs s3:ListBucket (docs/AUDIT.md, read-only policy)");
      break;
    }
    std::vector<Object> page;
    for (auto contents : XmlElements(r->body, "Contents")) {
      page.push_back({XmlText(contents, "Key"), std::strtoull(XmlText(contents, "Size").c_str(), nullptr, 10)});
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      for (auto& p : page) queue.push_back(std::move(p));
      tally.objects += page.size();
    }
    cv.notify_all();
    token = XmlText(r->body, "NextContinuationToken");
    if (XmlText(r->body, "IsTruncated") != "true" || token.empty()) break;
  }
  finish();
  if (!listed.ok()) return listed;

  const std::string where = c.Bucket() + (c.t.prefix.empty() ? "" : "/" + c.t.prefix);
  const std::string counted = std::to_string(tally.objects) + " object(s)";
  nlohmann::json sample = nlohmann::json::array();
  for (size_t i = 0; i < tally.sse_s3.size() && i < 20; ++i) sample.push_back(tally.sse_s3[i]);
  if (!tally.sse_s3.empty()) {
    c.Add("s3.object-encryption", Level::kWarn, where,
          std::to_string(tally.sse_s3.size()) + " of " + counted + " use SSE-S3 only (no KMS permission needed to read)",
          "re-copy them with --sse aws:kms after setting SSE-KMS as the bucket default",
          {{"count", tally.sse_s3.size()}, {"sample", sample}});
  }
  bool any_unencrypted = false;
  for (const auto& f : c.report.findings) {
    any_unencrypted |= f.rule == "s3.object-encryption" && f.level == Level::kFail && f.target == c.t.text;
  }
  if (tally.sse_s3.empty() && !any_unencrypted) {
    c.Add("s3.object-encryption", Level::kPass, where, "all " + counted + " use SSE-KMS or DSSE-KMS");
  }
  if (!tally.unreadable.empty()) {
    nlohmann::json keys = nlohmann::json::array();
    for (size_t i = 0; i < tally.unreadable.size() && i < 20; ++i) keys.push_back(tally.unreadable[i]);
    c.Add("s3.plaintext-model", Level::kWarn, where,
          "could not read the first bytes of " + std::to_string(tally.unreadable.size()) + " of " + counted + ": " +
              tally.first_error,
          "grant the auditor s3:GetObject on the prefix (docs/AUDIT.md, read-only policy)", {{"sample", keys}});
  } else if (tally.plaintext == 0) {
    c.Add("s3.plaintext-model", Level::kPass, where, "no plaintext model among " + counted);
  }
  return OkStatus();
}

}  // namespace

Status AuditS3(const Target& t, const Options& o, Report& report) {
  HMOD_ASSIGN_OR_RETURN(S3Client s3, S3Client::FromEnvironment(o.env ? o.env : aws::ProcessEnv()));
  // The bucket must exist; real AWS also says where it lives if that is not our region.
  S3Request head;
  head.method = "HEAD";
  head.bucket = t.bucket;
  HMOD_ASSIGN_OR_RETURN(S3Response found, s3.Send(head));
  if (found.status == 404) {
    return MakeError(ErrorCode::kIo, "no bucket named " + t.bucket + " at " + s3.config().endpoint,
                     "check the name, AWS_REGION and AWS_ENDPOINT_URL_S3");
  }
  const std::string region = found.Header("x-amz-bucket-region");
  if (!region.empty() && region != s3.config().region) s3.SetRegion(region);
  if (found.status == 403 && found.error_code.empty() && region.empty()) {
    // HEAD answers have no body: 403 here is either no permission or a bad signature.
    S3Request list;
    list.bucket = t.bucket;
    list.query = {{"list-type", "2"}, {"max-keys", "1"}};
    HMOD_ASSIGN_OR_RETURN(S3Response probe, s3.Send(list));
    if (probe.error_code == "SignatureDoesNotMatch" || probe.error_code == "InvalidAccessKeyId" ||
        probe.error_code == "InvalidClientTokenId") {
      return MakeError(ErrorCode::kUsage, "S3 refused the credentials from " + s3.config().credentials.source + ": " +
                                              probe.error_code,
                       "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the profile");
    }
  }
  Check c{t, report, {}};
  HMOD_TRY(DefaultEncryption(c, s3));
  HMOD_TRY(Policy(c, s3));
  HMOD_TRY(PublicAccessBlock(c, s3));
  HMOD_TRY(Versioning(c, s3));
  return Objects(c, s3, o);
}

}  // namespace hmod::audit
