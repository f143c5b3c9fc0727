// A small HTTP client for AWS APIs: libcurl signs each request with SigV4
// (CURLOPT_AWS_SIGV4), failed attempts are retried a bounded number of times with exponential
// backoff and full jitter, and every attempt has a connect and a total timeout.
// Only what the aws-kms provider needs: one POST per call, no redirects, no streaming.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "hmod/crypto.h"
#include "hmod/result.h"
#include "hmod/secret_bytes.h"

namespace hmod::aws {

// An allocator that wipes memory before freeing it, for strings that hold secrets in transit
// (a base64 data key in a KMS request or response body, the JSON parser's token buffer).
template <typename T>
struct WipingAllocator {
  using value_type = T;
  WipingAllocator() = default;
  template <typename U>
  WipingAllocator(const WipingAllocator<U>&) noexcept {}  // NOLINT: rebinding
  T* allocate(size_t n) { return std::allocator<T>{}.allocate(n); }
  void deallocate(T* p, size_t n) noexcept;
  template <typename U>
  bool operator==(const WipingAllocator<U>&) const noexcept { return true; }
};
void WipeMemory(void* p, size_t n) noexcept;
template <typename T>
void WipingAllocator<T>::deallocate(T* p, size_t n) noexcept {
  WipeMemory(p, n * sizeof(T));
  std::allocator<T>{}.deallocate(p, n);
}

// Wiped on free. Strings longer than the small-string buffer (15 bytes) live on the heap,
// so anything secret of that size or more is wiped; base64 of a 32-byte key is 44 bytes.
using SecureString = std::basic_string<char, std::char_traits<char>, WipingAllocator<char>>;

// AWS credentials. The secret key stays in SecretBytes; the access key id is not secret.
struct Credentials {
  std::string access_key_id;
  SecretBytes secret_access_key;
  std::string session_token;  // temporary credentials only; sent as X-Amz-Security-Token
  std::string source;         // for messages: "environment", "profile 'p' in /path"
};

// Bounds on one call, retries included. The defaults follow the AWS SDKs' "standard" retry
// mode (3 attempts), with a shorter backoff cap: an interactive tool should fail in seconds.
struct RetryPolicy {
  int max_attempts = 3;
  std::chrono::milliseconds base_delay{100};
  std::chrono::milliseconds max_delay{2000};
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds attempt_timeout{8000};
  std::chrono::milliseconds total_timeout{20000};  // all attempts and backoff together
};

// One signed POST.
struct Request {
  std::string endpoint;      // "https://kms.us-east-1.amazonaws.com" (scheme://host[:port])
  std::string region;        // SigV4 credential scope
  std::string service;       // SigV4 service name: "kms", "iam"
  std::string content_type;  // "application/x-amz-json-1.1"
  std::string target;        // X-Amz-Target ("TrentService.Encrypt"); empty for none
  ByteSpan body;             // may hold secrets; read in place, never copied by us
};

// The last attempt's answer. `error_code` is the AWS error code of a non-2xx answer, taken
// from X-Amzn-ErrorType, a JSON "__type" or an XML <Code> ("NotFoundException").
struct Response {
  long http_status = 0;
  SecureString body;
  std::string error_code;
  std::string error_message;
  std::string request_id;
  int attempts = 0;
  bool ok() const { return http_status >= 200 && http_status < 300; }
};

class HttpClient {
 public:
  // `ca_bundle`: a PEM file of trusted CAs (AWS_CA_BUNDLE), empty for the system store.
  explicit HttpClient(RetryPolicy policy = {}, std::string ca_bundle = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends `request`, retrying connection errors, timeouts, HTTP 429 and 5xx and AWS
  // throttling errors within the policy's bounds. Returns the final answer whatever its HTTP
  // status (the caller maps AWS errors), or kIo naming the endpoint if no answer came.
  Result<Response> Post(const Request& request, const Credentials& credentials);

  const RetryPolicy& policy() const { return policy_; }

 private:
  struct State;
  RetryPolicy policy_;
  std::string ca_bundle_;
  std::unique_ptr<State> state_;
};

// True for AWS error codes that mean "slow down" or "try again" (botocore's standard list).
bool IsRetryableErrorCode(const std::string& code);

}  // namespace hmod::aws
