// PKCS#11 plumbing: load a module at run time, find a token, open a session, log in.
// Only src/keys/pkcs11_*.cpp include this header (it pulls in p11-kit's pkcs11.h, which the
// library target alone has on its include path).
#pragma once

#include <p11-kit/pkcs11.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hmod/crypto.h"
#include "hmod/result.h"
#include "keys/pkcs11_uri.h"

namespace hmod {

// "CKR_PIN_INCORRECT (0xa0)" for the codes pkcs11.h names, "CKR 0x..." otherwise.
std::string CkrName(CK_RV rv);

// A PKCS#11 module loaded with dlopen and initialised with C_Initialize. Every Load of the
// same file shares one initialisation; the last holder to go away calls C_Finalize (only if
// we were the ones who initialised it) and dlclose. Thread-safe.
class Pkcs11Module {
 public:
  // Fails with kKeyFile if the file cannot be loaded, has no C_GetFunctionList, or
  // C_Initialize fails.
  static Result<std::shared_ptr<Pkcs11Module>> Load(const std::string& path);
  ~Pkcs11Module();
  Pkcs11Module(const Pkcs11Module&) = delete;
  Pkcs11Module& operator=(const Pkcs11Module&) = delete;

  CK_FUNCTION_LIST* fn() const { return fn_; }
  const std::string& path() const { return path_; }

 private:
  Pkcs11Module(std::string path, CK_FUNCTION_LIST* fn) : path_(std::move(path)), fn_(fn) {}
  std::string path_;
  CK_FUNCTION_LIST* fn_;
};

// The file to dlopen for a URI: module-path as given, or module-name looked up among the
// modules registered with p11-kit (NAME.module in ~/.config/pkcs11/modules,
// /etc/pkcs11/modules, /usr/share/p11-kit/modules). kUsage if the URI names no module.
Result<std::string> ResolvePkcs11Module(const Pkcs11Uri& uri);

// The user PIN the URI points to: pin-value, or the contents of the pin-source file (at most
// 1024 bytes; one trailing LF and then one trailing CR are dropped). nullopt if the URI gives
// neither. Errors never contain the PIN.
Result<std::optional<SecretBytes>> ReadPkcs11Pin(const Pkcs11Uri& uri);

// One open session on the single initialised token that the URI's library, slot and token
// attributes select. Closed on destruction. Not thread-safe: callers serialise use.
class Pkcs11Session {
 public:
  // Loads the module, finds exactly one matching token (kKeyFile if none or several, with
  // the tokens present in the hint) and opens a session on it.
  static Result<std::unique_ptr<Pkcs11Session>> Open(const Pkcs11Uri& uri, bool read_write);
  ~Pkcs11Session();
  Pkcs11Session(const Pkcs11Session&) = delete;
  Pkcs11Session& operator=(const Pkcs11Session&) = delete;

  // Logs the user in with the URI's PIN if the token needs a login or a PIN was given.
  // A wrong PIN is kKeyFile "wrong PIN ... (CKR_PIN_INCORRECT)" with a hint.
  Status Login(const Pkcs11Uri& uri);

  CK_FUNCTION_LIST* fn() const { return module_->fn(); }
  CK_SESSION_HANDLE handle() const { return session_; }
  const std::string& module_path() const { return module_->path(); }
  // The token's label with its space padding removed.
  const std::string& token_label() const { return token_label_; }

  // Handles of the objects matching `tmpl`, at most `max` of them.
  Result<std::vector<CK_OBJECT_HANDLE>> FindObjects(std::vector<CK_ATTRIBUTE> tmpl, size_t max);
  // The value of one attribute; empty if the object has none or it is sensitive.
  Result<Bytes> GetAttribute(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type);
  Result<bool> GetBool(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type);
  Result<unsigned long> GetUlong(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type);

 private:
  Pkcs11Session(std::shared_ptr<Pkcs11Module> module, CK_SLOT_ID slot, CK_SESSION_HANDLE session,
                std::string token_label, unsigned long token_flags)
      : module_(std::move(module)), slot_(slot), session_(session),
        token_label_(std::move(token_label)), token_flags_(token_flags) {}
  std::shared_ptr<Pkcs11Module> module_;
  CK_SLOT_ID slot_;
  CK_SESSION_HANDLE session_;
  std::string token_label_;
  unsigned long token_flags_;
};

// A PKCS#11 failure as an hmod error: "<what> failed: CKR_..." with `code`.
Error Pkcs11Error(ErrorCode code, const std::string& what, CK_RV rv, std::string hint = {});

}  // namespace hmod
