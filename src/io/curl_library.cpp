#include "io/curl_library.h"

#include <dlfcn.h>

#include <mutex>
#include <string>

namespace hmod {
namespace {

CurlLibrary g_curl;

// Looks up every symbol; the first missing one is the error.
std::string Bind(void* so) {
  auto bind = [so](auto& fn, const char* name) -> bool {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(so, name));
    return fn != nullptr;
  };
  const struct {
    bool ok;
    const char* name;
  } symbols[] = {
      {bind(g_curl.global_init, "curl_global_init"), "curl_global_init"},
      {bind(g_curl.easy_init, "curl_easy_init"), "curl_easy_init"},
      {bind(g_curl.easy_cleanup, "curl_easy_cleanup"), "curl_easy_cleanup"},
      {bind(g_curl.easy_reset, "curl_easy_reset"), "curl_easy_reset"},
      {bind(g_curl.easy_perform, "curl_easy_perform"), "curl_easy_perform"},
      {bind(g_curl.easy_strerror, "curl_easy_strerror"), "curl_easy_strerror"},
      {bind(g_curl.easy_setopt, "curl_easy_setopt"), "curl_easy_setopt"},
      {bind(g_curl.easy_getinfo, "curl_easy_getinfo"), "curl_easy_getinfo"},
      {bind(g_curl.slist_append, "curl_slist_append"), "curl_slist_append"},
      {bind(g_curl.slist_free_all, "curl_slist_free_all"), "curl_slist_free_all"},
  };
  for (const auto& s : symbols) {
    if (!s.ok) return std::string("libcurl has no ") + s.name;
  }
  return {};
}

}  // namespace

Result<const CurlLibrary*> LoadCurl() {
  static std::once_flag once;
  static std::string failure;
  std::call_once(once, [] {
    // The soname of libcurl 7.16 and later (Debian: libcurl4).
    void* so = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (so == nullptr) {
      const char* why = ::dlerror();
      failure = std::string("cannot load libcurl: ") + (why ? why : "unknown error");
      return;
    }
    failure = Bind(so);
    if (failure.empty() && g_curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      failure = "libcurl failed to initialise";
    }
  });
  if (!failure.empty()) {
    return MakeError(ErrorCode::kIo, failure, "install libcurl (Debian: apt-get install libcurl4)");
  }
  return &g_curl;
}

const CurlLibrary& Curl() { return g_curl; }

}  // namespace hmod
