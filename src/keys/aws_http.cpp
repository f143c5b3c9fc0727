#include "keys/aws_http.h"

#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <spdlog/spdlog.h>
#include <thread>

#include "io/curl_library.h"

namespace hmod::aws {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Larger answers are refused: no AWS JSON answer we read comes near this.
constexpr size_t kMaxResponseBytes = 1 << 20;

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string ServiceName(const std::string& service) { return "AWS " + Upper(service); }

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// What one attempt saw.
struct Attempt {
  CURLcode curl = CURLE_OK;
  std::string curl_message;
  Response response;
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<SecureString*>(user);
  const size_t len = size * n;
  if (body->size() + len > kMaxResponseBytes) return 0;  // CURLE_WRITE_ERROR
  body->append(data, len);
  return len;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* response = static_cast<Response*>(user);
  const size_t len = size * n;
  std::string_view line(data, len);
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return len;
  const std::string name = Lower(std::string(line.substr(0, colon)));
  const std::string value = Trim(line.substr(colon + 1));
  if (name == "x-amzn-errortype") {
    // "NotFoundException:http://internal.amazon.com/coral/com.amazonaws.kms/"
    response->error_code = value.substr(0, value.find(':'));
  } else if (name == "x-amzn-requestid" || name == "x-amz-request-id") {
    response->request_id = value;
  }
  return len;
}

std::string XmlElement(std::string_view xml, std::string_view tag) {
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  const auto a = xml.find(open);
  if (a == std::string_view::npos) return {};
  const auto b = xml.find(close, a + open.size());
  if (b == std::string_view::npos) return {};
  return std::string(xml.substr(a + open.size(), b - a - open.size()));
}

// Fills error_code / error_message of a non-2xx answer from its body: AWS JSON protocols put
// them in "__type" and "message", query protocols (and moto's signature errors) in XML.
void ParseErrorBody(Response& r) {
  using SecureJson = nlohmann::basic_json<std::map, std::vector, SecureString>;
  const SecureJson doc = SecureJson::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_object()) {
    auto type = doc.find("__type");
    if (r.error_code.empty() && type != doc.end() && type->is_string()) {
      const auto& t = type->get_ref<const SecureString&>();
      r.error_code = std::string(t.substr(t.find('#') == SecureString::npos ? 0 : t.find('#') + 1));
    }
    for (const char* key : {"message", "Message"}) {
      auto m = doc.find(key);
      if (m != doc.end() && m->is_string()) {
        r.error_message = std::string(m->get_ref<const SecureString&>());
        break;
      }
    }
    return;
  }
  const std::string_view body(r.body.data(), r.body.size());
  if (r.error_code.empty()) r.error_code = XmlElement(body, "Code");
  if (r.error_message.empty()) r.error_message = XmlElement(body, "Message");
}

bool IsRetryableCurlCode(CURLcode c) {
  switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

bool IsRetryable(const Attempt& a) {
  if (a.curl != CURLE_OK) return IsRetryableCurlCode(a.curl);
  const long s = a.response.http_status;
  if (s == 429 || s == 500 || s == 502 || s == 503 || s == 504) return true;
  return !a.response.ok() && IsRetryableErrorCode(a.response.error_code);
}

// Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): uniform in
// [0, min(cap, base * 2^(attempt-1))].
milliseconds BackoffDelay(const RetryPolicy& p, int attempt) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const int shift = std::min(attempt - 1, 20);
  const auto ceiling = std::min<int64_t>(p.max_delay.count(), p.base_delay.count() << shift);
  std::uniform_int_distribution<int64_t> pick(0, std::max<int64_t>(ceiling, 0));
  return milliseconds(pick(rng));
}

}  // namespace

void WipeMemory(void* p, size_t n) noexcept { sodium_memzero(p, n); }

bool IsRetryableErrorCode(const std::string& code) {
  static const char* const kCodes[] = {
      // throttling
      "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
      "TooManyRequestsException", "ProvisionedThroughputExceededException",
      "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
      "LimitExceededException", "RequestThrottled", "SlowDown", "EC2ThrottledException",
      // transient
      "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
      "InternalError", "InternalFailure", "ServiceUnavailable", "KMSInternalException",
      "DependencyTimeoutException"};
  return std::any_of(std::begin(kCodes), std::end(kCodes), [&](const char* c) { return code == c; });
}

struct HttpClient::State {
  CURL* curl = nullptr;
  ~State() {
    if (curl) Curl().easy_cleanup(curl);
  }
};

HttpClient::HttpClient(RetryPolicy policy, std::string ca_bundle)
    : policy_(policy), ca_bundle_(std::move(ca_bundle)), state_(std::make_unique<State>()) {
  policy_.max_attempts = std::clamp(policy_.max_attempts, 1, 10);
}

HttpClient::~HttpClient() = default;

Result<Response> HttpClient::Post(const Request& request, const Credentials& credentials) {
  if (auto lib = LoadCurl(); !lib.ok()) return lib.error();
  if (!state_->curl) state_->curl = Curl().easy_init();
  CURL* curl = state_->curl;
  if (!curl) return MakeError(ErrorCode::kIo, "cannot initialise libcurl");

  const std::string url = request.endpoint + "/";
  const std::string sigv4 = "aws:amz:" + request.region + ":" + request.service;
  // libcurl copies option strings; the copy of the secret is libcurl's to free.
  SecretBytes password(credentials.secret_access_key.size() + 1);
  std::copy(credentials.secret_access_key.secret().begin(), credentials.secret_access_key.secret().end(),
            password.secret().begin());

  struct curl_slist* headers = nullptr;
  auto add_header = [&headers](const std::string& h) { headers = Curl().slist_append(headers, h.c_str()); };
  add_header("Content-Type: " + request.content_type);
  if (!request.target.empty()) add_header("X-Amz-Target: " + request.target);
  if (!credentials.session_token.empty()) add_header("X-Amz-Security-Token: " + credentials.session_token);
  // No "Expect:" override: libcurl 7.88.1 then signs a header it does not send, and SigV4
  // fails. Bodies here are far below the 1 MiB at which libcurl would send Expect itself.
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> header_guard(headers, Curl().slist_free_all);

  const auto start = Clock::now();
  auto elapsed = [&] { return std::chrono::duration_cast<milliseconds>(Clock::now() - start); };
  Attempt last;
  int attempt = 0;
  while (attempt < policy_.max_attempts) {
    const milliseconds remaining = policy_.total_timeout - elapsed();
    if (remaining.count() <= 0) break;
    ++attempt;
    last = Attempt{};
    char errbuf[CURL_ERROR_SIZE] = {0};

    Curl().easy_reset(curl);  // keeps the connection cache: DescribeKey then Decrypt reuse it
    Curl().easy_setopt(curl, CURLOPT_URL, url.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500
    Curl().easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    Curl().easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    Curl().easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    Curl().easy_setopt(curl, CURLOPT_USERAGENT, "hmodctl (aws-kms)");
    Curl().easy_setopt(curl, CURLOPT_POST, 1L);
    Curl().easy_setopt(curl, CURLOPT_POSTFIELDS, reinterpret_cast<const char*>(request.body.data()));
    Curl().easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    Curl().easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    Curl().easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4.c_str());
    Curl().easy_setopt(curl, CURLOPT_USERNAME, credentials.access_key_id.c_str());
    Curl().easy_setopt(curl, CURLOPT_PASSWORD, reinterpret_cast<const char*>(password.secret().data()));
    Curl().easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::min(policy_.connect_timeout, remaining).count()));
    Curl().easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(std::min(policy_.attempt_timeout, remaining).count()));
    Curl().easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
    Curl().easy_setopt(curl, CURLOPT_WRITEDATA, &last.response.body);
    Curl().easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
    Curl().easy_setopt(curl, CURLOPT_HEADERDATA, &last.response);
    if (!ca_bundle_.empty()) Curl().easy_setopt(curl, CURLOPT_CAINFO, ca_bundle_.c_str());

    last.curl = Curl().easy_perform(curl);
    last.response.attempts = attempt;
    if (last.curl == CURLE_OK) {
      Curl().easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &last.response.http_status);
      if (!last.response.ok()) ParseErrorBody(last.response);
    } else {
      last.curl_message = errbuf[0] ? errbuf : Curl().easy_strerror(last.curl);
    }
    if (!IsRetryable(last) || attempt >= policy_.max_attempts) break;

    const milliseconds delay = BackoffDelay(policy_, attempt);
    if (elapsed() + delay >= policy_.total_timeout) break;
    // Names the call and the reason only: bodies and headers may hold secrets.
    spdlog::debug("{} {} attempt {}/{} failed ({}); retrying in {} ms", ServiceName(request.service),
                  request.target, attempt, policy_.max_attempts,
                  last.curl != CURLE_OK ? last.curl_message
                                        : std::to_string(last.response.http_status) + " " +
                                              last.response.error_code,
                  delay.count());
    std::this_thread::sleep_for(delay);
  }
  // The password option points into `password`, which is about to be wiped and freed.
  Curl().easy_setopt(curl, CURLOPT_PASSWORD, nullptr);
  Curl().easy_setopt(curl, CURLOPT_POSTFIELDS, nullptr);

  if (attempt == 0) {
    return MakeError(ErrorCode::kIo, "no time left to call " + ServiceName(request.service));
  }
  if (last.curl == CURLE_OK) return std::move(last.response);

  const std::string who = ServiceName(request.service) + " at " + request.endpoint;
  const double seconds = static_cast<double>(elapsed().count()) / 1000.0;
  char took[64];
  std::snprintf(took, sizeof took, "%d attempt%s in %.1f s", attempt, attempt == 1 ? "" : "s", seconds);
  if (last.curl == CURLE_PEER_FAILED_VERIFICATION) {
    return MakeError(ErrorCode::kIo, "the TLS certificate of " + who + " is not trusted: " + last.curl_message,
                     "set AWS_CA_BUNDLE to a PEM file of the CAs to trust");
  }
  if (last.curl == CURLE_WRITE_ERROR) {
    return MakeError(ErrorCode::kIo, who + " sent an answer larger than 1 MiB; refused");
  }
  return MakeError(ErrorCode::kIo, "cannot reach " + who + ": " + last.curl_message + " (" + took + ")",
                   "check the network, any proxy (HTTPS_PROXY, NO_PROXY) and the endpoint settings "
                   "(AWS_ENDPOINT_URL_" + Upper(request.service) + ", AWS_ENDPOINT_URL, AWS_REGION)");
}

}  // namespace hmod::aws
