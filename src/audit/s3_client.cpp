#include "audit/s3_client.h"


#include <strings.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <random>
#include <thread>

#include "audit/xml.h"
#include "io/curl_library.h"
#include "io/percent_encoding.h"

namespace hmod::audit {
namespace {

struct CurlFree {
  void operator()(CURL* c) const { Curl().easy_cleanup(c); }
};

// One handle per thread keeps that thread's connections alive across requests. Only
// after LoadCurl() succeeded.
CURL* ThreadHandle() {
  thread_local std::unique_ptr<CURL, CurlFree> handle(Curl().easy_init());
  return handle.get();
}

struct Sink {
  S3Response* response;
  size_t limit;
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  if (s->response->body.size() + size * n > s->limit) return 0;
  s->response->body.append(data, size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<S3Response*>(user);
  std::string line(data, size * n);
  const auto colon = line.find(':');
  if (colon == std::string::npos) return size * n;
  std::string name = line.substr(0, colon);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string value = line.substr(colon + 1);
  value.erase(0, value.find_first_not_of(" \t"));
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.pop_back();
  r->headers[name] = value;
  return size * n;
}

bool Retryable(CURLcode c, const S3Response& r) {
  if (c != CURLE_OK) {
    return c == CURLE_COULDNT_CONNECT || c == CURLE_OPERATION_TIMEDOUT || c == CURLE_SEND_ERROR ||
           c == CURLE_RECV_ERROR || c == CURLE_GOT_NOTHING || c == CURLE_PARTIAL_FILE || c == CURLE_SSL_CONNECT_ERROR ||
           c == CURLE_COULDNT_RESOLVE_HOST;
  }
  return r.status == 429 || r.status >= 500 || aws::IsRetryableErrorCode(r.error_code);
}

}  // namespace

std::string S3UriEncode(std::string_view s, bool keep_slash) { return PercentEncode(s, keep_slash ? "/" : ""); }

Result<S3Client> S3Client::FromEnvironment(const aws::EnvFn& env) {
  HMOD_ASSIGN_OR_RETURN(aws::ServiceConfig cfg, aws::ResolveServiceConfig("s3", "", env));
  S3Client client(std::move(cfg));
  // AWS endpoints address buckets by host name; custom endpoints (moto, MinIO) by path.
  client.virtual_host_ = client.config_.endpoint_source.rfind("default", 0) == 0;
  return client;
}

void S3Client::SetRegion(const std::string& region) {
  config_.region = region;
  if (virtual_host_) config_.endpoint = "https://s3." + region + ".amazonaws.com";
}

std::string S3Client::Url(const S3Request& r) const {
  std::string url;
  const bool vhost = virtual_host_ && r.bucket.find('.') == std::string::npos;
  if (vhost) {
    const auto scheme_end = config_.endpoint.find("://") + 3;
    url = config_.endpoint.substr(0, scheme_end) + r.bucket + "." + config_.endpoint.substr(scheme_end) + "/";
  } else {
    url = config_.endpoint + "/" + r.bucket + (r.key.empty() ? "" : "/");
  }
  url += S3UriEncode(r.key, true);
  // libcurl 7.88 signs the query as written: sorted, and "name=" for a bare subresource.
  std::vector<std::pair<std::string, std::string>> q;
  for (const auto& [k, v] : r.query) q.emplace_back(S3UriEncode(k, false), S3UriEncode(v, false));
  std::sort(q.begin(), q.end());
  for (size_t i = 0; i < q.size(); ++i) url += (i ? "&" : "?") + q[i].first + "=" + q[i].second;
  return url;
}

Result<S3Response> S3Client::Send(const S3Request& request) const {
  if (auto lib = LoadCurl(); !lib.ok()) return lib.error();
  CURL* curl = ThreadHandle();
  if (!curl) return MakeError(ErrorCode::kIo, "cannot initialise libcurl");
  const std::string url = Url(request);
  const std::string sigv4 = "aws:amz:" + config_.region + ":s3";
  // libcurl copies option strings; ours stays in wiped memory (NUL-terminated).
  const auto secret = config_.credentials.secret_access_key.secret();
  SecretBytes password(secret.size() + 1);
  std::copy(secret.begin(), secret.end(), password.secret().begin());

  struct curl_slist* headers = nullptr;
  auto add = [&headers](const std::string& h) { headers = Curl().slist_append(headers, h.c_str()); };
  add("x-amz-content-sha256: " + HexEncode(Sha256(AsBytes(request.body))));
  if (!config_.credentials.session_token.empty()) add("X-Amz-Security-Token: " + config_.credentials.session_token);
  bool typed = false;
  for (const auto& h : request.headers) {
    add(h);
    typed |= h.size() > 13 && strncasecmp(h.c_str(), "content-type:", 13) == 0;
  }
  // libcurl would label a body form data; S3 (and moto) then misread it.
  if (!request.body.empty() && !typed) add("Content-Type: application/octet-stream");
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> guard(headers, Curl().slist_free_all);

  const auto& policy = config_.retry;
  const auto start = std::chrono::steady_clock::now();
  thread_local std::mt19937_64 rng{std::random_device{}()};
  S3Response response;
  CURLcode rc = CURLE_OK;
  std::string curl_error;
  for (int attempt = 1; attempt <= policy.max_attempts; ++attempt) {
    response = S3Response{};
    Sink sink{&response, request.max_body};
    char errbuf[CURL_ERROR_SIZE] = {0};
    Curl().easy_reset(curl);
    Curl().easy_setopt(curl, CURLOPT_URL, url.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500
    Curl().easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    Curl().easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    Curl().easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    Curl().easy_setopt(curl, CURLOPT_USERAGENT, "hmodctl (audit)");
    if (request.method == "HEAD") {
      Curl().easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (request.method != "GET") {
      Curl().easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
    if (!request.body.empty()) {
      Curl().easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
      Curl().easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    }
    Curl().easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    Curl().easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4.c_str());
    Curl().easy_setopt(curl, CURLOPT_USERNAME, config_.credentials.access_key_id.c_str());
    Curl().easy_setopt(curl, CURLOPT_PASSWORD, reinterpret_cast<const char*>(password.secret().data()));
    Curl().easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(policy.connect_timeout.count()));
    Curl().easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(policy.attempt_timeout.count()));
    Curl().easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
    Curl().easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    Curl().easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
    Curl().easy_setopt(curl, CURLOPT_HEADERDATA, &response);
    if (!config_.ca_bundle.empty()) Curl().easy_setopt(curl, CURLOPT_CAINFO, config_.ca_bundle.c_str());
    rc = Curl().easy_perform(curl);
    curl_error = errbuf[0] ? errbuf : Curl().easy_strerror(rc);
    if (rc == CURLE_OK) {
      Curl().easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
      if (!response.ok()) {
        response.error_code = XmlText(response.body, "Code");
        response.error_message = XmlText(response.body, "Message");
      }
    }
    Curl().easy_setopt(curl, CURLOPT_PASSWORD, nullptr);
    if (!Retryable(rc, response) || attempt == policy.max_attempts) break;
    // Exponential backoff with full jitter, within the call's total budget.
    const int64_t cap = std::min<int64_t>(policy.max_delay.count(), policy.base_delay.count() << std::min(attempt, 20));
    const auto delay = std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(0, std::max<int64_t>(cap, 0))(rng));
    if (std::chrono::steady_clock::now() - start + delay >= policy.total_timeout) break;
    std::this_thread::sleep_for(delay);
  }
  if (rc == CURLE_OK) return response;
  if (rc == CURLE_WRITE_ERROR) return MakeError(ErrorCode::kIo, "S3 answer to " + url + " is too large");
  return MakeError(ErrorCode::kIo, "cannot reach S3 at " + config_.endpoint + ": " + curl_error,
                   "check the network and AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL / AWS_REGION");
}

}  // namespace hmod::audit
