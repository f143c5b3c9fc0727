// A minimal S3 REST client over libcurl's SigV4 signing, with the workarounds libcurl 7.88
// needs for S3 (shared/research/components.md §2): the caller-sorted query with `name=` for
// valueless subresources, and an explicit x-amz-content-sha256 header. Credentials, region
// and endpoint come from the same resolution as the aws-kms provider (keys/aws_config.h),
// so AWS_ENDPOINT_URL_S3 and profiles work the same way.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "hmod/crypto.h"
#include "keys/aws_config.h"

namespace hmod::audit {

struct S3Response {
  long status = 0;
  std::string body;                            // at most the request's body limit
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string error_code;                      // XML <Code> of a non-2xx answer
  std::string error_message;
  bool ok() const { return status >= 200 && status < 300; }
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct S3Request {
  std::string method = "GET";  // GET, HEAD, PUT, DELETE
  std::string bucket;
  std::string key;                                         // empty for bucket-level calls
  std::vector<std::pair<std::string, std::string>> query;  // any order; sorted when signed
  std::vector<std::string> headers;                        // "Name: value"
  std::string body;
  size_t max_body = 8 << 20;  // larger answers fail with kIo
};

class S3Client {
 public:
  explicit S3Client(aws::ServiceConfig config) : config_(std::move(config)) {}

  // Resolves credentials, region and endpoint for "s3" (kUsage if there are none).
  static Result<S3Client> FromEnvironment(const aws::EnvFn& env);

  // Sends one signed request, retrying transport errors, 5xx, 429 and throttling within the
  // retry policy. Returns any HTTP answer; kIo if none came. Thread-safe: each thread uses its
  // own connection.
  Result<S3Response> Send(const S3Request& request) const;

  // Requests to buckets in another region (real AWS answers with x-amz-bucket-region).
  void SetRegion(const std::string& region);
  const aws::ServiceConfig& config() const { return config_; }

 private:
  std::string Url(const S3Request& r) const;
  aws::ServiceConfig config_;
  bool virtual_host_ = false;
};

// RFC 3986 unreserved characters stay, everything else is %XX (SigV4 "UriEncode"); `keep_slash`
// for object keys in paths.
std::string S3UriEncode(std::string_view s, bool keep_slash);

}  // namespace hmod::audit
