#include "keys/pkcs11_module.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>

namespace hmod {
namespace {

constexpr size_t kMaxPinBytes = 1024;

// One entry per loaded module file. Acquire/release happen under `mu`, so a module is never
// finalised by one thread while another initialises it again.
struct LoadedModule {
  void* handle = nullptr;
  CK_FUNCTION_LIST* fn = nullptr;
  bool we_initialized = false;
  size_t users = 0;
};
struct Registry {
  std::mutex mu;
  std::map<std::string, LoadedModule> modules;
};
Registry& GetRegistry() {
  static Registry* registry = new Registry;  // never destroyed: modules may outlive statics
  return *registry;
}

std::string Trimmed(const unsigned char* field, size_t size) {
  std::string s(reinterpret_cast<const char*>(field), size);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

bool TextMatches(const std::optional<std::string>& want, const unsigned char* field, size_t size) {
  return !want || *want == Trimmed(field, size);
}

bool VersionMatches(const std::optional<std::string>& want, const CK_VERSION& v) {
  if (!want) return true;
  const auto dot = want->find('.');
  const int major = std::atoi(want->substr(0, dot).c_str());
  const int minor = dot == std::string::npos ? 0 : std::atoi(want->substr(dot + 1).c_str());
  return v.major == major && v.minor == minor;
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// The value of "module: ..." in a p11-kit module config file.
std::optional<std::string> ModuleLine(const std::filesystem::path& config) {
  std::ifstream in(config);
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (line.empty() || line[0] == '#' || colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
    if (key != "module") continue;
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t' || value.back() == '\r')) value.pop_back();
    if (!value.empty()) return value;
  }
  return std::nullopt;
}

std::vector<std::filesystem::path> P11KitConfigDirs() {
  std::vector<std::filesystem::path> dirs;
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg) {
    dirs.emplace_back(std::filesystem::path(xdg) / "pkcs11/modules");
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    dirs.emplace_back(std::filesystem::path(home) / ".config/pkcs11/modules");
  }
  dirs.emplace_back("/etc/pkcs11/modules");
  dirs.emplace_back("/usr/share/p11-kit/modules");
  return dirs;
}

std::string RegisteredModuleNames() {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& dir : P11KitConfigDirs()) {
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      if (e.path().extension() == ".module") names.insert(e.path().stem());
    }
  }
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

Error PinFileError(const std::string& path, const std::string& what) {
  return MakeError(ErrorCode::kKeyFile, "cannot read PIN file " + path + ": " + what,
                   "pin-source=file:/path/to/pin names a file holding the token's user PIN");
}

}  // namespace

std::string CkrName(CK_RV rv) {
  static const std::map<CK_RV, const char*> kNames = {
#define HMOD_CKR(name) {name, #name}
      HMOD_CKR(CKR_OK), HMOD_CKR(CKR_CANCEL), HMOD_CKR(CKR_HOST_MEMORY), HMOD_CKR(CKR_SLOT_ID_INVALID),
      HMOD_CKR(CKR_GENERAL_ERROR), HMOD_CKR(CKR_FUNCTION_FAILED), HMOD_CKR(CKR_ARGUMENTS_BAD),
      HMOD_CKR(CKR_CANT_LOCK), HMOD_CKR(CKR_ATTRIBUTE_READ_ONLY), HMOD_CKR(CKR_ATTRIBUTE_SENSITIVE),
      HMOD_CKR(CKR_ATTRIBUTE_TYPE_INVALID), HMOD_CKR(CKR_ATTRIBUTE_VALUE_INVALID),
      HMOD_CKR(CKR_ACTION_PROHIBITED), HMOD_CKR(CKR_DATA_INVALID), HMOD_CKR(CKR_DATA_LEN_RANGE),
      HMOD_CKR(CKR_DEVICE_ERROR), HMOD_CKR(CKR_DEVICE_MEMORY), HMOD_CKR(CKR_DEVICE_REMOVED),
      HMOD_CKR(CKR_ENCRYPTED_DATA_INVALID), HMOD_CKR(CKR_ENCRYPTED_DATA_LEN_RANGE),
      HMOD_CKR(CKR_FUNCTION_CANCELED), HMOD_CKR(CKR_FUNCTION_NOT_SUPPORTED),
      HMOD_CKR(CKR_KEY_HANDLE_INVALID), HMOD_CKR(CKR_KEY_SIZE_RANGE), HMOD_CKR(CKR_KEY_TYPE_INCONSISTENT),
      HMOD_CKR(CKR_KEY_FUNCTION_NOT_PERMITTED), HMOD_CKR(CKR_KEY_UNEXTRACTABLE),
      HMOD_CKR(CKR_MECHANISM_INVALID), HMOD_CKR(CKR_MECHANISM_PARAM_INVALID),
      HMOD_CKR(CKR_OBJECT_HANDLE_INVALID), HMOD_CKR(CKR_OPERATION_ACTIVE),
      HMOD_CKR(CKR_OPERATION_NOT_INITIALIZED), HMOD_CKR(CKR_PIN_INCORRECT), HMOD_CKR(CKR_PIN_INVALID),
      HMOD_CKR(CKR_PIN_LEN_RANGE), HMOD_CKR(CKR_PIN_EXPIRED), HMOD_CKR(CKR_PIN_LOCKED),
      HMOD_CKR(CKR_SESSION_CLOSED), HMOD_CKR(CKR_SESSION_COUNT), HMOD_CKR(CKR_SESSION_HANDLE_INVALID),
      HMOD_CKR(CKR_SESSION_READ_ONLY), HMOD_CKR(CKR_SIGNATURE_INVALID), HMOD_CKR(CKR_TEMPLATE_INCOMPLETE),
      HMOD_CKR(CKR_TEMPLATE_INCONSISTENT), HMOD_CKR(CKR_TOKEN_NOT_PRESENT),
      HMOD_CKR(CKR_TOKEN_NOT_RECOGNIZED), HMOD_CKR(CKR_TOKEN_WRITE_PROTECTED),
      HMOD_CKR(CKR_USER_ALREADY_LOGGED_IN), HMOD_CKR(CKR_USER_NOT_LOGGED_IN),
      HMOD_CKR(CKR_USER_PIN_NOT_INITIALIZED), HMOD_CKR(CKR_USER_TYPE_INVALID),
      HMOD_CKR(CKR_USER_ANOTHER_ALREADY_LOGGED_IN), HMOD_CKR(CKR_BUFFER_TOO_SMALL),
      HMOD_CKR(CKR_CRYPTOKI_NOT_INITIALIZED), HMOD_CKR(CKR_CRYPTOKI_ALREADY_INITIALIZED),
      HMOD_CKR(CKR_FUNCTION_REJECTED), HMOD_CKR(CKR_LIBRARY_LOAD_FAILED),
#undef HMOD_CKR
  };
  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%lx", static_cast<unsigned long>(rv));
  const auto it = kNames.find(rv);
  return it == kNames.end() ? std::string("CKR ") + hex : std::string(it->second) + " (" + hex + ")";
}

Error Pkcs11Error(ErrorCode code, const std::string& what, CK_RV rv, std::string hint) {
  return MakeError(code, what + " failed: " + CkrName(rv), std::move(hint));
}

Result<std::shared_ptr<Pkcs11Module>> Pkcs11Module::Load(const std::string& path) {
  std::error_code ec;
  std::string key = std::filesystem::weakly_canonical(path, ec).string();
  if (ec || key.empty()) key = path;

  Registry& reg = GetRegistry();
  std::lock_guard lock(reg.mu);
  LoadedModule& m = reg.modules[key];
  if (m.users == 0) {
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = ::dlerror();
      reg.modules.erase(key);
      return MakeError(ErrorCode::kKeyFile,
                       "cannot load PKCS#11 module " + path + ": " + (why ? why : "dlopen failed"),
                       "check module-path=, e.g. module-path=/usr/lib/softhsm/libsofthsm2.so");
    }
    auto get_list = reinterpret_cast<CK_C_GetFunctionList>(::dlsym(handle, "C_GetFunctionList"));
    CK_FUNCTION_LIST* fn = nullptr;
    CK_RV rv = get_list ? get_list(&fn) : CKR_FUNCTION_NOT_SUPPORTED;
    if (rv != CKR_OK || fn == nullptr) {
      ::dlclose(handle);
      reg.modules.erase(key);
      return Pkcs11Error(ErrorCode::kKeyFile, path + " is not a PKCS#11 module: C_GetFunctionList", rv);
    }
    // The module may be called from any thread; let it use the OS's locks.
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    rv = fn->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      ::dlclose(handle);
      reg.modules.erase(key);
      return Pkcs11Error(ErrorCode::kKeyFile, "C_Initialize of " + path, rv);
    }
    m.handle = handle;
    m.fn = fn;
    m.we_initialized = rv == CKR_OK;  // someone else in the process owns it otherwise
  }
  ++m.users;
  return std::shared_ptr<Pkcs11Module>(new Pkcs11Module(key, m.fn));
}

Pkcs11Module::~Pkcs11Module() {
  Registry& reg = GetRegistry();
  std::lock_guard lock(reg.mu);
  auto it = reg.modules.find(path_);
  if (it == reg.modules.end() || --it->second.users > 0) return;
  if (it->second.we_initialized) it->second.fn->C_Finalize(nullptr);
  ::dlclose(it->second.handle);
  reg.modules.erase(it);
}

Result<std::string> ResolvePkcs11Module(const Pkcs11Uri& uri) {
  if (uri.module_path) {
    if (uri.module_path->empty()) return MakeError(ErrorCode::kUsage, "pkcs11 URI: module-path is empty");
    return *uri.module_path;
  }
  if (!uri.module_name) {
    return MakeError(ErrorCode::kUsage, "pkcs11 URI names no PKCS#11 module",
                     "add ?module-path=/path/to/module.so or ?module-name=NAME (registered with p11-kit: " +
                         RegisteredModuleNames() + ")");
  }
  const std::string& name = *uri.module_name;
  if (name.empty() || name.find('/') != std::string::npos || name[0] == '.') {
    return MakeError(ErrorCode::kUsage, "pkcs11 URI: module-name must be a plain name",
                     "use module-path= for a file");
  }
  for (const auto& dir : P11KitConfigDirs()) {
    const auto config = dir / (name + ".module");
    if (!std::filesystem::is_regular_file(config)) continue;
    const auto module = ModuleLine(config);
    if (!module) {
      return MakeError(ErrorCode::kKeyFile, config.string() + " has no 'module:' line");
    }
    if ((*module)[0] == '/') return *module;
    // Relative names live in p11-kit's module directory.
    for (const char* base : {"/usr/lib/x86_64-linux-gnu/pkcs11", "/usr/lib/aarch64-linux-gnu/pkcs11",
                             "/usr/lib64/pkcs11", "/usr/lib/pkcs11"}) {
      const auto candidate = std::filesystem::path(base) / *module;
      if (std::filesystem::exists(candidate)) return candidate.string();
    }
    return *module;  // let dlopen search its path
  }
  return MakeError(ErrorCode::kKeyFile, "no PKCS#11 module named '" + name + "' is registered with p11-kit",
                   "registered: " + RegisteredModuleNames() + "; or give module-path=/path/to/module.so");
}

Result<std::optional<SecretBytes>> ReadPkcs11Pin(const Pkcs11Uri& uri) {
  if (uri.pin_value) {
    if (uri.pin_value->empty()) return MakeError(ErrorCode::kUsage, "pkcs11 URI: pin-value is empty");
    return std::optional<SecretBytes>(SecretBytes::CopyFrom(AsBytes(*uri.pin_value)));
  }
  if (!uri.pin_source) return std::optional<SecretBytes>();
  std::string path = *uri.pin_source;
  if (path.rfind("file:", 0) == 0) {
    path.erase(0, 5);
    if (path.rfind("//", 0) == 0) {  // file://HOST/PATH (RFC 8089): only the local host
      const auto slash = path.find('/', 2);
      const std::string host = path.substr(2, slash == std::string::npos ? slash : slash - 2);
      if (slash == std::string::npos || (!host.empty() && host != "localhost")) {
        return MakeError(ErrorCode::kUsage, "pkcs11 URI: pin-source names a file on another host",
                         "use pin-source=file:/absolute/path or a plain path");
      }
      path.erase(0, slash);
    }
  } else if (!path.empty() && path[0] == '|') {
    return MakeError(ErrorCode::kUsage, "pkcs11 URI: pin-source commands ('|...') are not supported",
                     "use pin-source=file:/path/to/pin");
  } else if (const auto colon = path.find(':');
             colon != std::string::npos && path.find('/') > colon && colon > 0) {
    return MakeError(ErrorCode::kUsage, "pkcs11 URI: pin-source scheme '" + path.substr(0, colon) + ":' is not supported",
                     "use pin-source=file:/path/to/pin (or a plain path)");
  }
  if (path.empty()) return MakeError(ErrorCode::kUsage, "pkcs11 URI: pin-source names no file");

  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return PinFileError(path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return PinFileError(path, "not a regular file");
  }
  SecretBytes buf(kMaxPinBytes + 1);
  size_t len = 0;
  while (len < buf.size()) {
    const ssize_t n = ::read(fd, buf.secret().data() + len, buf.size() - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return PinFileError(path, std::strerror(err));
    }
    if (n == 0) break;
    len += static_cast<size_t>(n);
  }
  ::close(fd);
  if (len > kMaxPinBytes) return PinFileError(path, "longer than 1024 bytes");
  const uint8_t* p = buf.secret().data();
  if (len > 0 && p[len - 1] == '\n') --len;
  if (len > 0 && p[len - 1] == '\r') --len;
  if (len == 0) return PinFileError(path, "it is empty");
  return std::optional<SecretBytes>(SecretBytes::CopyFrom(buf.secret().first(len)));
}

Result<std::unique_ptr<Pkcs11Session>> Pkcs11Session::Open(const Pkcs11Uri& uri, bool read_write) {
  HMOD_ASSIGN_OR_RETURN(std::string module_path, ResolvePkcs11Module(uri));
  HMOD_ASSIGN_OR_RETURN(std::shared_ptr<Pkcs11Module> module, Pkcs11Module::Load(module_path));
  CK_FUNCTION_LIST* fn = module->fn();

  CK_INFO info{};
  CK_RV rv = fn->C_GetInfo(&info);
  if (rv != CKR_OK) return Pkcs11Error(ErrorCode::kKeyFile, "C_GetInfo", rv);
  const bool library_matches = TextMatches(uri.library_manufacturer, info.manufacturerID, sizeof info.manufacturerID) &&
                               TextMatches(uri.library_description, info.libraryDescription,
                                           sizeof info.libraryDescription) &&
                               VersionMatches(uri.library_version, info.libraryVersion);

  CK_ULONG count = 0;
  rv = fn->C_GetSlotList(CK_TRUE, nullptr, &count);
  std::vector<CK_SLOT_ID> slots(count);
  if (rv == CKR_OK && count > 0) rv = fn->C_GetSlotList(CK_TRUE, slots.data(), &count);
  if (rv != CKR_OK) return Pkcs11Error(ErrorCode::kKeyFile, "C_GetSlotList", rv);
  slots.resize(count);

  struct Match {
    CK_SLOT_ID slot;
    std::string label;
    unsigned long flags;
  };
  std::vector<Match> matches;
  std::string present;
  for (CK_SLOT_ID slot : slots) {
    CK_SLOT_INFO si{};
    CK_TOKEN_INFO ti{};
    if (fn->C_GetSlotInfo(slot, &si) != CKR_OK || fn->C_GetTokenInfo(slot, &ti) != CKR_OK) continue;
    if (!(ti.flags & CKF_TOKEN_INITIALIZED)) continue;
    const std::string label = Trimmed(ti.label, sizeof ti.label);
    const std::string serial = Trimmed(ti.serialNumber, sizeof ti.serialNumber);
    present += (present.empty() ? "" : ", ") + Quote(label) + " (serial " + serial + ")";
    if (library_matches && (!uri.slot_id || *uri.slot_id == slot) &&
        TextMatches(uri.slot_manufacturer, si.manufacturerID, sizeof si.manufacturerID) &&
        TextMatches(uri.slot_description, si.slotDescription, sizeof si.slotDescription) &&
        TextMatches(uri.token, ti.label, sizeof ti.label) &&
        TextMatches(uri.manufacturer, ti.manufacturerID, sizeof ti.manufacturerID) &&
        TextMatches(uri.serial, ti.serialNumber, sizeof ti.serialNumber) &&
        TextMatches(uri.model, ti.model, sizeof ti.model)) {
      matches.push_back({slot, label, ti.flags});
    }
  }
  const std::string where = "in PKCS#11 module " + module_path;
  if (matches.empty()) {
    return MakeError(ErrorCode::kKeyFile, "no initialised token matches " + FormatPkcs11UriPath(uri) + " " + where,
                     present.empty() ? "the module shows no initialised token"
                                     : "tokens present: " + present);
  }
  if (matches.size() > 1) {
    return MakeError(ErrorCode::kKeyFile, std::to_string(matches.size()) + " tokens match " + FormatPkcs11UriPath(uri),
                     "add token=LABEL or serial=SERIAL to choose one of: " + present);
  }
  CK_FLAGS flags = CKF_SERIAL_SESSION | (read_write ? CKF_RW_SESSION : 0);
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
  rv = fn->C_OpenSession(matches[0].slot, flags, nullptr, nullptr, &session);
  if (rv != CKR_OK) {
    return Pkcs11Error(ErrorCode::kKeyFile, "opening a session on token " + Quote(matches[0].label), rv);
  }
  return std::unique_ptr<Pkcs11Session>(
      new Pkcs11Session(std::move(module), matches[0].slot, session, matches[0].label, matches[0].flags));
}

Pkcs11Session::~Pkcs11Session() {
  // Closing the token's last session also logs the user out (C_CloseSession semantics).
  if (session_ != CK_INVALID_HANDLE) fn()->C_CloseSession(session_);
}

Status Pkcs11Session::Login(const Pkcs11Uri& uri) {
  HMOD_ASSIGN_OR_RETURN(std::optional<SecretBytes> pin, ReadPkcs11Pin(uri));
  const std::string token = "token " + Quote(token_label_);
  CK_RV rv;
  if (pin) {
    rv = fn()->C_Login(session_, CKU_USER, pin->secret().data(), pin->secret().size());
  } else if (token_flags_ & CKF_PROTECTED_AUTHENTICATION_PATH) {
    rv = fn()->C_Login(session_, CKU_USER, nullptr, 0);  // PIN pad or similar on the device
  } else if (token_flags_ & CKF_LOGIN_REQUIRED) {
    return MakeError(ErrorCode::kKeyFile, token + " needs a user PIN and the URI gives none",
                     "add ?pin-source=file:/path/to/pin-file (or pin-value=..., which other users can see in ps)");
  } else {
    return OkStatus();
  }
  switch (rv) {
    case CKR_OK:
    case CKR_USER_ALREADY_LOGGED_IN:
      return OkStatus();
    case CKR_PIN_INCORRECT:
      return MakeError(ErrorCode::kKeyFile, "wrong PIN for " + token + " (CKR_PIN_INCORRECT)",
                       "check the pin-source file or pin-value; the token locks the PIN after a few wrong tries");
    case CKR_PIN_LOCKED:
      return MakeError(ErrorCode::kKeyFile, "the user PIN of " + token + " is locked (CKR_PIN_LOCKED)",
                       "the security officer must reset it (e.g. softhsm2-util / pkcs11-tool --init-pin)");
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_INVALID:
      return Pkcs11Error(ErrorCode::kKeyFile, "login to " + token, rv,
                         "the PIN has the wrong length or characters for this token");
    case CKR_PIN_EXPIRED:
      return Pkcs11Error(ErrorCode::kKeyFile, "login to " + token, rv, "change the user PIN first");
    case CKR_USER_PIN_NOT_INITIALIZED:
      return Pkcs11Error(ErrorCode::kKeyFile, "login to " + token, rv, "the token has no user PIN yet");
    default:
      return Pkcs11Error(ErrorCode::kKeyFile, "login to " + token, rv);
  }
}

Result<std::vector<CK_OBJECT_HANDLE>> Pkcs11Session::FindObjects(std::vector<CK_ATTRIBUTE> tmpl, size_t max) {
  CK_RV rv = fn()->C_FindObjectsInit(session_, tmpl.data(), tmpl.size());
  if (rv != CKR_OK) return Pkcs11Error(ErrorCode::kKeyFile, "C_FindObjectsInit", rv);
  std::vector<CK_OBJECT_HANDLE> found;
  while (found.size() < max) {
    CK_OBJECT_HANDLE batch[16];
    CK_ULONG n = 0;
    rv = fn()->C_FindObjects(session_, batch, 16, &n);
    if (rv != CKR_OK || n == 0) break;
    found.insert(found.end(), batch, batch + std::min<size_t>(n, max - found.size()));
  }
  fn()->C_FindObjectsFinal(session_);
  if (rv != CKR_OK) return Pkcs11Error(ErrorCode::kKeyFile, "C_FindObjects", rv);
  return found;
}

Result<Bytes> Pkcs11Session::GetAttribute(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) {
  CK_ATTRIBUTE a{type, nullptr, 0};
  CK_RV rv = fn()->C_GetAttributeValue(session_, object, &a, 1);
  if (rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID || a.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
    return Bytes();
  }
  if (rv != CKR_OK) return Pkcs11Error(ErrorCode::kKeyFile, "C_GetAttributeValue", rv);
  if (a.ulValueLen > (1u << 20)) return MakeError(ErrorCode::kLimit, "PKCS#11 attribute larger than 1 MiB");
  Bytes value(a.ulValueLen);
  a.pValue = value.data();
  rv = fn()->C_GetAttributeValue(session_, object, &a, 1);
  if (rv != CKR_OK) return Pkcs11Error(ErrorCode::kKeyFile, "C_GetAttributeValue", rv);
  value.resize(a.ulValueLen);
  return value;
}

Result<bool> Pkcs11Session::GetBool(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) {
  HMOD_ASSIGN_OR_RETURN(Bytes v, GetAttribute(object, type));
  if (v.size() != sizeof(CK_BBOOL)) return MakeError(ErrorCode::kKeyFile, "PKCS#11 object lacks a boolean attribute");
  return v[0] != CK_FALSE;
}

Result<unsigned long> Pkcs11Session::GetUlong(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) {
  HMOD_ASSIGN_OR_RETURN(Bytes v, GetAttribute(object, type));
  if (v.size() != sizeof(CK_ULONG)) return MakeError(ErrorCode::kKeyFile, "PKCS#11 object lacks a numeric attribute");
  CK_ULONG out = 0;
  std::memcpy(&out, v.data(), sizeof out);
  return out;
}

}  // namespace hmod
