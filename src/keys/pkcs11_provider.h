// pkcs11:URI — a key-encryption key that never leaves a PKCS#11 token (FORMAT.md §5.4,
// docs/providers/pkcs11.md). The data key is wrapped inside the token with AES-256-GCM.
#pragma once

#include <string>

#include "hmod/key_provider.h"

namespace hmod {

// Builds a provider from a full "pkcs11:..." URI (RFC 7512): loads the module, finds the one
// matching token, logs in with the URI's PIN and finds the one matching AES secret key.
// Errors: kUsage for a malformed URI; kKeyFile when the module, token, PIN or key is wrong
// or missing (a wrong PIN says CKR_PIN_INCORRECT and never shows the PIN).
Result<std::unique_ptr<KeyProvider>> MakePkcs11Provider(const std::string& uri);

// What a key object in a token looks like, read back with C_GetAttributeValue.
struct Pkcs11KeyInfo {
  std::string key_id;   // canonical URI recorded in files: pkcs11:token=..;object=..;id=..
  std::string kek_uri;  // key_id plus the module query: what to pass to --kek (add a PIN)
  std::string label;    // CKA_LABEL
  Bytes id;             // CKA_ID
  unsigned long value_len = 0;  // CKA_VALUE_LEN in bytes
  bool token = false, is_private = false, sensitive = false, extractable = true;
  bool always_sensitive = false, never_extractable = false;
  bool encrypt = false, decrypt = false, wrap = false, unwrap = false;
};

// hmodctl keygen --pkcs11: creates a new AES-256 key object in the token named by `uri`
// (object= is its label and required, id= optional), generated inside the token with
// CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, CKA_ENCRYPT and CKA_DECRYPT true and
// CKA_EXTRACTABLE, CKA_WRAP and CKA_UNWRAP false. Refuses (kIo, "already exists") if an
// object with that label or id is in the token. Returns the new key's attributes.
Result<Pkcs11KeyInfo> GeneratePkcs11Key(const std::string& uri);

// Finds the key the URI names (as MakePkcs11Provider does) and reads its attributes.
Result<Pkcs11KeyInfo> DescribePkcs11Key(const std::string& uri);

}  // namespace hmod
