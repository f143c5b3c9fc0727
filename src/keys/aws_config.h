// Where AWS credentials, region and endpoint come from, resolved the way the AWS CLI and SDKs
// do for the cases hmodctl supports (docs/providers/aws-kms.md):
//
//   credentials  AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), else the
//                profile AWS_PROFILE (else AWS_DEFAULT_PROFILE, else "default") from the shared
//                credentials file (AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials), then the
//                config file (AWS_CONFIG_FILE, ~/.aws/config)
//   region       the key ARN's region, else AWS_REGION, AWS_DEFAULT_REGION, the profile's region
//   endpoint     AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL, else the profile's
//                endpoint_url, else https://<service>.<region>.amazonaws.com
//
// An empty variable counts as unset. No network access happens here.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "keys/aws_http.h"

namespace hmod::aws {

// Looks up an environment variable; tests pass their own.
using EnvFn = std::function<std::optional<std::string>(const std::string& name)>;
// The process environment.
EnvFn ProcessEnv();

struct ServiceConfig {
  Credentials credentials;
  std::string region;
  std::string endpoint;  // scheme://host[:port], no trailing slash
  std::string endpoint_source;  // for messages: "AWS_ENDPOINT_URL_KMS", "default", ...
  RetryPolicy retry;             // max_attempts from AWS_MAX_ATTEMPTS or the profile
  std::string ca_bundle;         // AWS_CA_BUNDLE or the profile's ca_bundle; empty = system
};

// Resolves everything needed to call `service` ("kms"). `region_hint` is the region named by
// a key ARN, or empty. Errors: kUsage (no credentials, no region, a named profile missing, a
// bad endpoint), kUnsupported (a profile that needs SSO, a role or a credential process),
// kKeyFile (a shared file that cannot be read or parsed).
Result<ServiceConfig> ResolveServiceConfig(const std::string& service, const std::string& region_hint,
                                           const EnvFn& env);

// One AWS shared file ("INI" dialect of botocore): section name -> key -> value. Keys are
// lower-cased; nested sub-sections (indented lines) are skipped. A missing file is empty.
// Values may be secret keys, so they live in wiped memory; messages never quote a line.
using IniFile = std::map<std::string, std::map<std::string, SecureString>>;
Result<IniFile> ReadIniFile(const std::string& path);

// The endpoint must be http(s)://host[:port]; plain http only to a loopback host, since
// requests carry data keys.
Result<std::string> CheckEndpoint(const std::string& url);

}  // namespace hmod::aws
