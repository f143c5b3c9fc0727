// Percent-encoding (RFC 3986 §2.1): for S3 request paths and queries (SigV4 "UriEncode"),
// SARIF location URIs and form bodies.
#pragma once

#include <string>
#include <string_view>

namespace hmod {

// Letters, digits and "-._~" (the unreserved set) stay as they are, and so does every
// character of `also_plain`; every other byte becomes %XX (upper-case hex).
std::string PercentEncode(std::string_view s, std::string_view also_plain = {});

}  // namespace hmod
