#include "keys/pkcs11_provider.h"

#include <mutex>

#include "keys/pkcs11_module.h"
#include "keys/pkcs11_uri.h"
#include "keys/wrap_aad.h"

namespace hmod {
namespace {

constexpr std::string_view kProviderId = "pkcs11";
constexpr std::string_view kWrapLabel = "hmod/v1 pkcs11 wrap";
constexpr size_t kRecordBytes = kAeadNonceBytes + kWrappedDataKeyBytes + kAeadTagBytes;  // 60
constexpr size_t kMaxKeyIdBytes = 1024;  // FORMAT.md §2.4
constexpr CK_ULONG kKekBytes = 32;
// PKCS#11 v3.0's CKR_AEAD_DECRYPT_FAILED; p11-kit's v2.40 header does not name it.
constexpr CK_RV kCkrAeadDecryptFailed = 0x35;

const char* const kKeygenHint = "create one with: hmodctl keygen --pkcs11 'pkcs11:token=...;object=...?...'";

std::string QueryEncode(std::string_view s) {
  // Keep '/' readable in module paths; everything else outside "unreserved" is encoded.
  std::string out;
  for (char c : s) out += c == '/' ? std::string("/") : Pkcs11PercentEncode(AsBytes(std::string_view(&c, 1)));
  return out;
}

// "?module-path=..." or "?module-name=...": enough, with a PIN added, to use the key again.
std::string ModuleQuery(const Pkcs11Uri& uri) {
  if (uri.module_path) return "?module-path=" + QueryEncode(*uri.module_path);
  if (uri.module_name) return "?module-name=" + QueryEncode(*uri.module_name);
  return {};
}

Result<Pkcs11Uri> ParseKeyUri(const std::string& text, bool for_keygen) {
  HMOD_ASSIGN_OR_RETURN(Pkcs11Uri uri, ParsePkcs11Uri(text));
  if (uri.type && *uri.type != "secret-key") {
    return MakeError(ErrorCode::kUsage, "pkcs11 URI: type=" + *uri.type + " cannot be a key-encryption key",
                     "an AES key is type=secret-key (or leave type out)");
  }
  if (for_keygen && (!uri.object || uri.object->empty())) {
    return MakeError(ErrorCode::kUsage, "keygen --pkcs11 needs object=LABEL in the URI",
                     "e.g. 'pkcs11:token=MyToken;object=model-kek?module-path=...&pin-source=file:...'");
  }
  if (!for_keygen && !uri.object && !uri.id) {
    return MakeError(ErrorCode::kUsage, "pkcs11 URI names no key: add object=LABEL and/or id=ID",
                     "e.g. --kek 'pkcs11:token=MyToken;object=model-kek?module-path=...&pin-source=file:...'");
  }
  return uri;
}

CK_ATTRIBUTE Attr(CK_ATTRIBUTE_TYPE type, const void* value, size_t size) {
  return CK_ATTRIBUTE{type, const_cast<void*>(value), static_cast<CK_ULONG>(size)};
}

Result<Pkcs11KeyInfo> ReadKeyInfo(Pkcs11Session& s, CK_OBJECT_HANDLE key, const Pkcs11Uri& uri) {
  Pkcs11KeyInfo info;
  HMOD_ASSIGN_OR_RETURN(Bytes label, s.GetAttribute(key, CKA_LABEL));
  HMOD_ASSIGN_OR_RETURN(info.id, s.GetAttribute(key, CKA_ID));
  info.label.assign(label.begin(), label.end());
  if (info.label.empty() && info.id.empty()) {
    return MakeError(ErrorCode::kKeyFile, "the key has neither a label nor an id, so files cannot name it",
                     "give it a CKA_LABEL, or create a new one with hmodctl keygen --pkcs11");
  }
  Pkcs11Uri canonical;
  canonical.token = s.token_label();
  if (!info.label.empty()) canonical.object = info.label;
  if (!info.id.empty()) canonical.id = info.id;
  info.key_id = FormatPkcs11UriPath(canonical);
  if (info.key_id.size() > kMaxKeyIdBytes) {
    return MakeError(ErrorCode::kLimit, "the key's PKCS#11 URI is longer than 1024 bytes",
                     "use a shorter token label, key label or id");
  }
  info.kek_uri = info.key_id + ModuleQuery(uri);
  HMOD_ASSIGN_OR_RETURN(info.value_len, s.GetUlong(key, CKA_VALUE_LEN));
  struct {
    CK_ATTRIBUTE_TYPE type;
    bool* out;
  } const flags[] = {{CKA_TOKEN, &info.token},
                     {CKA_PRIVATE, &info.is_private},
                     {CKA_SENSITIVE, &info.sensitive},
                     {CKA_EXTRACTABLE, &info.extractable},
                     {CKA_ALWAYS_SENSITIVE, &info.always_sensitive},
                     {CKA_NEVER_EXTRACTABLE, &info.never_extractable},
                     {CKA_ENCRYPT, &info.encrypt},
                     {CKA_DECRYPT, &info.decrypt},
                     {CKA_WRAP, &info.wrap},
                     {CKA_UNWRAP, &info.unwrap}};
  for (const auto& f : flags) {
    HMOD_ASSIGN_OR_RETURN(*f.out, s.GetBool(key, f.type));
  }
  return info;
}

struct OpenedKey {
  Pkcs11Uri uri;
  std::unique_ptr<Pkcs11Session> session;
  CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
  Pkcs11KeyInfo info;
};

// Parse, load, find the token, log in, find exactly one AES-256 secret key.
Result<OpenedKey> OpenKey(const std::string& text) {
  OpenedKey k;
  HMOD_ASSIGN_OR_RETURN(k.uri, ParseKeyUri(text, false));
  HMOD_ASSIGN_OR_RETURN(k.session, Pkcs11Session::Open(k.uri, false));
  HMOD_TRY(k.session->Login(k.uri));

  const CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  std::vector<CK_ATTRIBUTE> tmpl = {Attr(CKA_CLASS, &cls, sizeof cls)};
  if (k.uri.object) tmpl.push_back(Attr(CKA_LABEL, k.uri.object->data(), k.uri.object->size()));
  if (k.uri.id) tmpl.push_back(Attr(CKA_ID, k.uri.id->data(), k.uri.id->size()));
  HMOD_ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> found, k.session->FindObjects(tmpl, 2));
  const std::string where = " in token '" + k.session->token_label() + "'";
  Pkcs11Uri key_part;
  key_part.object = k.uri.object;
  key_part.id = k.uri.id;
  const std::string named = FormatPkcs11UriPath(key_part).substr(7);  // drop "pkcs11:"
  if (found.empty()) {
    const bool logged_out = !k.uri.pin_value && !k.uri.pin_source;
    return MakeError(ErrorCode::kKeyFile, "no secret key " + named + where,
                     logged_out ? "private keys are visible only after login: add pin-source=file:/path/to/pin; or " +
                                      std::string(kKeygenHint)
                                : std::string(kKeygenHint));
  }
  if (found.size() > 1) {
    return MakeError(ErrorCode::kKeyFile, "several secret keys match " + named + where,
                     "add id=... to the URI to choose one");
  }
  k.handle = found[0];
  HMOD_ASSIGN_OR_RETURN(unsigned long key_type, k.session->GetUlong(k.handle, CKA_KEY_TYPE));
  if (key_type != CKK_AES) {
    return MakeError(ErrorCode::kKeyFile, "secret key " + named + where + " is not an AES key", kKeygenHint);
  }
  HMOD_ASSIGN_OR_RETURN(k.info, ReadKeyInfo(*k.session, k.handle, k.uri));
  if (k.info.value_len != kKekBytes) {
    return MakeError(ErrorCode::kKeyFile,
                     "secret key " + named + where + " is AES-" + std::to_string(k.info.value_len * 8) +
                         "; a key-encryption key must be AES-256",
                     kKeygenHint);
  }
  return k;
}

Error OperationError(const char* op, CK_RV rv, const std::string& key_id) {
  switch (rv) {
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
      return Pkcs11Error(ErrorCode::kKeyFile, std::string(op) + " with " + key_id, rv,
                         "hmod wraps with CKM_AES_GCM through C_Encrypt/C_Decrypt, so the key needs "
                         "CKA_ENCRYPT (to encrypt) and CKA_DECRYPT (to decrypt); hmodctl keygen --pkcs11 sets both");
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
      return Pkcs11Error(ErrorCode::kUnsupported, std::string(op) + " with " + key_id, rv,
                         "the token must support CKM_AES_GCM with a caller-chosen 12-byte IV");
    case CKR_USER_NOT_LOGGED_IN:
      return Pkcs11Error(ErrorCode::kKeyFile, std::string(op) + " with " + key_id, rv,
                         "add ?pin-source=file:/path/to/pin to the URI");
    default:
      return Pkcs11Error(ErrorCode::kCrypto, std::string(op) + " with " + key_id, rv);
  }
}

class Pkcs11Provider final : public KeyProvider {
 public:
  explicit Pkcs11Provider(OpenedKey key) : key_(std::move(key)) {
    const std::string given = FormatPkcs11UriPath(key_.uri);
    description_ = given + ModuleQuery(key_.uri);
    if (given != key_.info.key_id) description_ += " (" + key_.info.key_id + ")";
  }

  std::string provider_id() const override { return std::string(kProviderId); }
  std::string key_id() const override { return key_.info.key_id; }
  std::string description() const override { return description_; }
  bool is_local() const override { return true; }

  Result<WrappedKey> Wrap(const SecretBytes& data_key, const WrapContext& ctx) override {
    if (data_key.size() != kWrappedDataKeyBytes) return MakeError(ErrorCode::kCrypto, "data key must be 32 bytes");
    WrappedKey wk{std::string(kProviderId), key_.info.key_id, Bytes(kRecordBytes)};
    MutableByteSpan rec(wk.wrapped);
    RandomFill(rec.first(kAeadNonceBytes));
    Bytes aad = WrapAad(kWrapLabel, ctx.file_id, AsBytes(key_.info.key_id));
    CK_GCM_PARAMS params = GcmParams(rec.first(kAeadNonceBytes), aad);
    CK_MECHANISM mech{CKM_AES_GCM, &params, sizeof params};

    std::lock_guard lock(mu_);
    CK_FUNCTION_LIST* fn = key_.session->fn();
    CK_RV rv = fn->C_EncryptInit(key_.session->handle(), &mech, key_.handle);
    if (rv != CKR_OK) return OperationError("C_EncryptInit", rv, key_.info.key_id);
    CK_ULONG out_len = kWrappedDataKeyBytes + kAeadTagBytes;
    rv = fn->C_Encrypt(key_.session->handle(), const_cast<CK_BYTE*>(data_key.secret().data()),
                       data_key.size(), rec.data() + kAeadNonceBytes, &out_len);
    if (rv != CKR_OK) return OperationError("C_Encrypt", rv, key_.info.key_id);
    if (out_len != kWrappedDataKeyBytes + kAeadTagBytes) {
      return MakeError(ErrorCode::kCrypto, "the token's AES-GCM returned " + std::to_string(out_len) +
                                               " bytes for a 32-byte key, expected 48");
    }
    return wk;
  }

  Result<SecretBytes> Unwrap(const WrappedKey& record, const WrapContext& ctx) override {
    if (record.provider_id != kProviderId || record.key_id != key_.info.key_id) {
      return MakeError(ErrorCode::kNoMatchingKey, "not this key");
    }
    // FORMAT.md §5.4: exact length before the token sees anything.
    if (record.wrapped.size() != kRecordBytes) {
      return MakeError(ErrorCode::kAuthFailed, "pkcs11-wrapped key has the wrong length");
    }
    ByteSpan rec(record.wrapped);
    Bytes aad = WrapAad(kWrapLabel, ctx.file_id, AsBytes(key_.info.key_id));
    Bytes iv(rec.begin(), rec.begin() + kAeadNonceBytes);
    Bytes ct(rec.begin() + kAeadNonceBytes, rec.end());
    CK_GCM_PARAMS params = GcmParams(iv, aad);
    CK_MECHANISM mech{CKM_AES_GCM, &params, sizeof params};

    std::lock_guard lock(mu_);
    CK_FUNCTION_LIST* fn = key_.session->fn();
    CK_RV rv = fn->C_DecryptInit(key_.session->handle(), &mech, key_.handle);
    if (rv != CKR_OK) return OperationError("C_DecryptInit", rv, key_.info.key_id);
    // Room for the whole ciphertext: some modules ask for that much even for GCM.
    SecretBytes out(ct.size());
    CK_ULONG out_len = out.size();
    rv = fn->C_Decrypt(key_.session->handle(), ct.data(), ct.size(), out.secret().data(), &out_len);
    switch (rv) {
      case CKR_OK:
        break;
      // A tag that does not verify. SoftHSM 2.6 says CKR_GENERAL_ERROR; others use these.
      case CKR_GENERAL_ERROR:
      case CKR_FUNCTION_FAILED:
      case CKR_ENCRYPTED_DATA_INVALID:
      case CKR_ENCRYPTED_DATA_LEN_RANGE:
      case CKR_SIGNATURE_INVALID:
      case kCkrAeadDecryptFailed:
        return MakeError(ErrorCode::kAuthFailed, "pkcs11-wrapped key does not open with " + key_.info.key_id + " (" +
                                                     CkrName(rv) + "): tampered, or another key with the same name");
      default:
        return OperationError("C_Decrypt", rv, key_.info.key_id);
    }
    if (out_len != kWrappedDataKeyBytes) {
      return MakeError(ErrorCode::kAuthFailed, "pkcs11-wrapped key decrypted to the wrong length");
    }
    return SecretBytes::CopyFrom(out.secret().first(kWrappedDataKeyBytes));
  }

 private:
  static CK_GCM_PARAMS GcmParams(ByteSpan iv, ByteSpan aad) {
    CK_GCM_PARAMS p{};
    p.pIv = const_cast<CK_BYTE*>(iv.data());
    p.ulIvLen = iv.size();
    p.ulIvBits = iv.size() * 8;
    p.pAAD = const_cast<CK_BYTE*>(aad.data());
    p.ulAADLen = aad.size();
    p.ulTagBits = kAeadTagBytes * 8;
    return p;
  }

  OpenedKey key_;
  std::string description_;
  std::mutex mu_;  // one PKCS#11 session: one operation at a time
};

}  // namespace

Result<std::unique_ptr<KeyProvider>> MakePkcs11Provider(const std::string& uri) {
  HMOD_ASSIGN_OR_RETURN(OpenedKey key, OpenKey(uri));
  return std::unique_ptr<KeyProvider>(new Pkcs11Provider(std::move(key)));
}

Result<Pkcs11KeyInfo> DescribePkcs11Key(const std::string& uri) {
  HMOD_ASSIGN_OR_RETURN(OpenedKey key, OpenKey(uri));
  return std::move(key.info);
}

Result<Pkcs11KeyInfo> GeneratePkcs11Key(const std::string& text) {
  HMOD_ASSIGN_OR_RETURN(Pkcs11Uri uri, ParseKeyUri(text, true));
  HMOD_ASSIGN_OR_RETURN(std::unique_ptr<Pkcs11Session> s, Pkcs11Session::Open(uri, true));
  HMOD_TRY(s->Login(uri));

  // Never a second key with the same name: files record the key by label and id.
  const std::string where = " in token '" + s->token_label() + "'";
  HMOD_ASSIGN_OR_RETURN(auto same_label, s->FindObjects({Attr(CKA_LABEL, uri.object->data(), uri.object->size())}, 1));
  if (!same_label.empty()) {
    return MakeError(ErrorCode::kIo, "an object labelled '" + *uri.object + "' already exists" + where,
                     "choose another object= label; keygen never replaces a key");
  }
  if (uri.id) {
    HMOD_ASSIGN_OR_RETURN(auto same_id, s->FindObjects({Attr(CKA_ID, uri.id->data(), uri.id->size())}, 1));
    if (!same_id.empty()) {
      return MakeError(ErrorCode::kIo, "an object with id " + Pkcs11PercentEncode(*uri.id, true) + " already exists" + where,
                       "choose another id=, or leave id out");
    }
  }

  const CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  const CK_KEY_TYPE key_type = CKK_AES;
  const CK_ULONG len = kKekBytes;
  const CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  std::vector<CK_ATTRIBUTE> tmpl = {
      Attr(CKA_CLASS, &cls, sizeof cls),
      Attr(CKA_KEY_TYPE, &key_type, sizeof key_type),
      Attr(CKA_VALUE_LEN, &len, sizeof len),
      Attr(CKA_TOKEN, &yes, sizeof yes),
      Attr(CKA_PRIVATE, &yes, sizeof yes),
      Attr(CKA_SENSITIVE, &yes, sizeof yes),
      Attr(CKA_EXTRACTABLE, &no, sizeof no),
      Attr(CKA_ENCRYPT, &yes, sizeof yes),  // CKM_AES_GCM wrap (C_Encrypt)
      Attr(CKA_DECRYPT, &yes, sizeof yes),  // CKM_AES_GCM unwrap (C_Decrypt)
      Attr(CKA_WRAP, &no, sizeof no),
      Attr(CKA_UNWRAP, &no, sizeof no),
      Attr(CKA_SIGN, &no, sizeof no),
      Attr(CKA_VERIFY, &no, sizeof no),
      Attr(CKA_DERIVE, &no, sizeof no),
      Attr(CKA_LABEL, uri.object->data(), uri.object->size()),
  };
  if (uri.id) tmpl.push_back(Attr(CKA_ID, uri.id->data(), uri.id->size()));
  CK_MECHANISM mech{CKM_AES_KEY_GEN, nullptr, 0};
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  const CK_RV rv = s->fn()->C_GenerateKey(s->handle(), &mech, tmpl.data(), tmpl.size(), &key);
  if (rv != CKR_OK) {
    std::string hint;
    if (rv == CKR_USER_NOT_LOGGED_IN) hint = "add ?pin-source=file:/path/to/pin to the URI";
    if (rv == CKR_MECHANISM_INVALID) hint = "the token cannot generate AES keys (CKM_AES_KEY_GEN)";
    return Pkcs11Error(ErrorCode::kKeyFile, "generating an AES-256 key" + where, rv, hint);
  }
  return ReadKeyInfo(*s, key, uri);
}

}  // namespace hmod
