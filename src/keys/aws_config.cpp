#include "keys/aws_config.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace hmod::aws {
namespace {

constexpr size_t kMaxSharedFileBytes = 1 << 20;

std::string_view TrimView(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string EnvSuffix(const std::string& service) {
  std::string s = service;
  for (char& c : s) c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string HomeDir(const EnvFn& env) {
  if (auto h = env("HOME"); h && !h->empty()) return *h;
  if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_dir) return pw->pw_dir;
  return {};
}

std::string ExpandHome(const std::string& path, const std::string& home) {
  if (path == "~" || path.rfind("~/", 0) == 0) return home + path.substr(1);
  return path;
}

using Section = std::map<std::string, SecureString>;

const Section* FindSection(const IniFile& file, const std::string& name) {
  auto it = file.find(name);
  return it == file.end() ? nullptr : &it->second;
}

// A non-secret setting.
std::optional<std::string> Get(const Section* s, const std::string& key) {
  if (!s) return std::nullopt;
  auto it = s->find(key);
  if (it == s->end() || it->second.empty()) return std::nullopt;
  return std::string(it->second);
}

bool Has(const Section* s, const std::string& key) {
  return s && s->count(key) && !s->at(key).empty();
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost" || host == "[::1]") return true;
  // 127.0.0.0/8, dotted quad only.
  if (host.rfind("127.", 0) != 0) return false;
  return std::all_of(host.begin(), host.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || c == '.'; });
}

bool IsValidRegion(const std::string& r) {
  return !r.empty() && r.size() <= 64 && std::all_of(r.begin(), r.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

}  // namespace

EnvFn ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

Result<IniFile> ReadIniFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return IniFile{};
    return MakeError(ErrorCode::kKeyFile, "cannot read AWS shared file " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > static_cast<off_t>(kMaxSharedFileBytes)) {
    ::close(fd);
    return MakeError(ErrorCode::kKeyFile, "AWS shared file " + path + " is not a regular file of at most 1 MiB");
  }
  // The file may hold secret keys: read it into memory that is wiped when freed.
  SecureString text(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::read(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return MakeError(ErrorCode::kKeyFile, "cannot read AWS shared file " + path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  text.resize(done);

  IniFile file;
  std::string section;
  bool in_section = false;
  bool nested = false;  // inside "key =" followed by indented sub-keys (botocore nested config)
  size_t number = 0;
  for (size_t pos = 0; pos < text.size();) {
    const size_t eol = std::min(text.find('\n', pos), text.size());
    std::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::string_view t = TrimView(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    // Never quote a line in a message: it may hold a secret key.
    const std::string where = path + " line " + std::to_string(number);
    if (std::isspace(static_cast<unsigned char>(line[0]))) {
      if (nested) continue;
      return MakeError(ErrorCode::kKeyFile, "malformed AWS shared file " + where + ": unexpected indentation");
    }
    nested = false;
    if (t[0] == '[') {
      if (t.back() != ']') return MakeError(ErrorCode::kKeyFile, "malformed AWS shared file " + where + ": no ']'");
      section = std::string(TrimView(t.substr(1, t.size() - 2)));
      in_section = true;
      file[section];
      continue;
    }
    const auto sep = t.find_first_of("=:");
    if (sep == std::string_view::npos || sep == 0) {
      return MakeError(ErrorCode::kKeyFile, "malformed AWS shared file " + where + ": expected key = value");
    }
    if (!in_section) {
      return MakeError(ErrorCode::kKeyFile, "malformed AWS shared file " + where + ": a value outside any [section]");
    }
    const std::string key = Lower(std::string(TrimView(t.substr(0, sep))));
    const std::string_view value = TrimView(t.substr(sep + 1));
    if (value.empty()) nested = true;
    file[section][key] = SecureString(value);
  }
  return file;
}

Result<std::string> CheckEndpoint(const std::string& url) {
  const std::string lower = Lower(url);
  std::string scheme;
  if (lower.rfind("https://", 0) == 0) scheme = "https";
  else if (lower.rfind("http://", 0) == 0) scheme = "http";
  else return MakeError(ErrorCode::kUsage, "AWS endpoint '" + url + "' is not an http(s):// URL");
  std::string authority = url.substr(scheme.size() + 3);
  if (!authority.empty() && authority.back() == '/') authority.pop_back();
  if (authority.empty() || authority.find_first_of("/?#@ ") != std::string::npos) {
    return MakeError(ErrorCode::kUsage, "AWS endpoint '" + url + "' must be scheme://host[:port] with no path");
  }
  std::string host = authority;
  if (host[0] == '[') {
    host = host.substr(0, host.find(']') + 1);
  } else if (auto colon = host.rfind(':'); colon != std::string::npos) {
    host = host.substr(0, colon);
  }
  if (scheme == "http" && !IsLoopbackHost(Lower(host))) {
    return MakeError(ErrorCode::kUsage,
                     "refusing plain http to AWS endpoint '" + url + "': requests carry data keys",
                     "use https://, or http:// only to a loopback address (127.0.0.1, localhost, [::1])");
  }
  return scheme + "://" + authority;
}

Result<ServiceConfig> ResolveServiceConfig(const std::string& service, const std::string& region_hint,
                                           const EnvFn& env) {
  auto var = [&env](const std::string& name) -> std::optional<std::string> {
    auto v = env(name);
    if (!v || v->empty()) return std::nullopt;
    return v;
  };
  const std::string home = HomeDir(env);
  const std::string cred_path =
      ExpandHome(var("AWS_SHARED_CREDENTIALS_FILE").value_or("~/.aws/credentials"), home);
  const std::string config_path = ExpandHome(var("AWS_CONFIG_FILE").value_or("~/.aws/config"), home);
  std::optional<std::string> named = var("AWS_PROFILE");
  if (!named) named = var("AWS_DEFAULT_PROFILE");
  const std::string profile = named.value_or("default");

  HMOD_ASSIGN_OR_RETURN(IniFile cred_file, ReadIniFile(cred_path));
  HMOD_ASSIGN_OR_RETURN(IniFile config_file, ReadIniFile(config_path));
  const Section* cred_section = FindSection(cred_file, profile);
  const Section* config_section = FindSection(config_file, "profile " + profile);
  if (!config_section && profile == "default") config_section = FindSection(config_file, "default");
  if (named && !cred_section && !config_section) {
    return MakeError(ErrorCode::kUsage,
                     "AWS profile '" + profile + "' is not in " + cred_path + " or " + config_path,
                     "check AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE");
  }
  // A setting from the profile: the config file, then the credentials file.
  auto setting = [&](const std::string& key) {
    auto v = Get(config_section, key);
    return v ? v : Get(cred_section, key);
  };

  ServiceConfig cfg;
  // Credentials.
  auto env_id = var("AWS_ACCESS_KEY_ID");
  auto env_secret = var("AWS_SECRET_ACCESS_KEY");
  if (env_id || env_secret) {
    if (!env_id || !env_secret) {
      return MakeError(ErrorCode::kUsage,
                       std::string(env_id ? "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"
                                          : "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"),
                       "set both, or neither to use a profile");
    }
    cfg.credentials.access_key_id = *env_id;
    cfg.credentials.secret_access_key = SecretBytes::CopyFrom(AsBytes(*env_secret));
    cfg.credentials.session_token = var("AWS_SESSION_TOKEN").value_or("");
    cfg.credentials.source = "environment (AWS_ACCESS_KEY_ID)";
  } else {
    const Section* from = cred_section;
    std::string from_path = cred_path;
    if (!Has(from, "aws_access_key_id") && !Has(from, "aws_secret_access_key")) {
      from = config_section;
      from_path = config_path;
    }
    auto id = Get(from, "aws_access_key_id");
    const bool secret = Has(from, "aws_secret_access_key");
    if (id && secret) {
      const SecureString& sk = from->at("aws_secret_access_key");
      cfg.credentials.access_key_id = *id;
      cfg.credentials.secret_access_key = SecretBytes::CopyFrom(AsBytes(std::string_view(sk.data(), sk.size())));
      cfg.credentials.session_token = Get(from, "aws_session_token").value_or("");
      cfg.credentials.source = "profile '" + profile + "' in " + from_path;
    } else if (id || secret) {
      return MakeError(ErrorCode::kUsage,
                       "AWS profile '" + profile + "' in " + from_path + " has " +
                           (id ? "aws_access_key_id but no aws_secret_access_key"
                               : "aws_secret_access_key but no aws_access_key_id"));
    } else {
      for (const char* k : {"role_arn", "credential_process", "sso_session", "sso_start_url",
                            "web_identity_token_file", "source_profile"}) {
        if (setting(k)) {
          return MakeError(ErrorCode::kUnsupported,
                           "AWS profile '" + profile + "' gets its credentials from " + k +
                               ", which hmodctl does not support",
                           "export temporary credentials first: "
                           "eval \"$(aws configure export-credentials --profile " + profile +
                               " --format env)\"");
        }
      }
      return MakeError(ErrorCode::kUsage, "no AWS credentials found",
                       "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put profile '" + profile +
                           "' in " + cred_path + " (AWS_PROFILE picks another profile)");
    }
  }
  if (cfg.credentials.access_key_id.find_first_of(": \t\r\n") != std::string::npos) {
    return MakeError(ErrorCode::kUsage, "the AWS access key id from " + cfg.credentials.source + " is malformed");
  }

  // Region.
  std::string region_source;
  if (!region_hint.empty()) {
    cfg.region = region_hint;
    region_source = "the key ARN";
  } else if (auto r = var("AWS_REGION")) {
    cfg.region = *r;
    region_source = "AWS_REGION";
  } else if (auto r2 = var("AWS_DEFAULT_REGION")) {
    cfg.region = *r2;
    region_source = "AWS_DEFAULT_REGION";
  } else if (auto r3 = setting("region")) {
    cfg.region = *r3;
    region_source = "profile '" + profile + "'";
  } else {
    return MakeError(ErrorCode::kUsage, "no AWS region set",
                     "set AWS_REGION, add region = ... to profile '" + profile + "' in " + config_path +
                         ", or name the key by its ARN");
  }
  if (!IsValidRegion(cfg.region)) {
    return MakeError(ErrorCode::kUsage, "AWS region '" + cfg.region + "' from " + region_source + " is malformed");
  }

  // Endpoint.
  const bool ignore_configured = Lower(var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").value_or("")) == "true";
  std::optional<std::string> endpoint;
  if (!ignore_configured) {
    const std::string per_service = "AWS_ENDPOINT_URL_" + EnvSuffix(service);
    if ((endpoint = var(per_service))) {
      cfg.endpoint_source = per_service;
    } else if ((endpoint = var("AWS_ENDPOINT_URL"))) {
      cfg.endpoint_source = "AWS_ENDPOINT_URL";
    } else if ((endpoint = setting("endpoint_url"))) {
      cfg.endpoint_source = "profile '" + profile + "' endpoint_url";
    }
  }
  if (!endpoint) {
    const bool china = cfg.region.rfind("cn-", 0) == 0;
    endpoint = "https://" + service + "." + cfg.region + (china ? ".amazonaws.com.cn" : ".amazonaws.com");
    cfg.endpoint_source = "default for region " + cfg.region;
  }
  HMOD_ASSIGN_OR_RETURN(cfg.endpoint, CheckEndpoint(*endpoint));

  // Retries and trust.
  std::optional<std::string> attempts = var("AWS_MAX_ATTEMPTS");
  if (!attempts) attempts = setting("max_attempts");
  if (attempts) {
    char* end = nullptr;
    const long n = std::strtol(attempts->c_str(), &end, 10);
    if (*end != '\0' || n < 1 || n > 10) {
      return MakeError(ErrorCode::kUsage, "AWS max_attempts '" + *attempts + "' is not a number from 1 to 10");
    }
    cfg.retry.max_attempts = static_cast<int>(n);
  }
  std::optional<std::string> ca = var("AWS_CA_BUNDLE");
  if (!ca) ca = setting("ca_bundle");
  if (ca) cfg.ca_bundle = ExpandHome(*ca, home);
  return cfg;
}

}  // namespace hmod::aws
