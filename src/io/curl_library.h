// libcurl, loaded on first use (dlopen), like the PKCS#11 modules: only the KMS and S3
// paths need it, and linking it pulled 28 more shared libraries (TLS, LDAP, Kerberos, SSH,
// ...) into every hmodctl run: ~6 ms of dynamic linking, more than a whole re-wrap's work.
#pragma once

#include <curl/curl.h>

#include "hmod/result.h"

namespace hmod {

// The libcurl functions we call. easy_setopt/easy_getinfo are variadic, as in curl.h.
struct CurlLibrary {
  CURLcode (*global_init)(long flags);
  CURL* (*easy_init)();
  void (*easy_cleanup)(CURL*);
  void (*easy_reset)(CURL*);
  CURLcode (*easy_perform)(CURL*);
  const char* (*easy_strerror)(CURLcode);
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  curl_slist* (*slist_append)(curl_slist*, const char*);
  void (*slist_free_all)(curl_slist*);
};

// Loads libcurl.so.4 and runs curl_global_init, once per process (thread-safe). Fails with
// kIo naming what is missing; the same answer every call.
Result<const CurlLibrary*> LoadCurl();

// The loaded library: only after LoadCurl() succeeded.
const CurlLibrary& Curl();

}  // namespace hmod
