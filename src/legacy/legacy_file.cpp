// Legacy ENCMODEL / ENVMODEL files: metadata, keys, and the two passes (docs/LEGACY.md).
#include <openssl/evp.h>
#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "hmod/key_file.h"
#include "hmod/legacy.h"
#include "keys/aws_kms_admin.h"
#include "legacy/legacy_json.h"

namespace hmod {
namespace {

using legacy::JsonValue;

constexpr std::string_view kEncMagic = "ENCMODEL";
constexpr std::string_view kEnvMagic = "ENVMODEL";
constexpr size_t kPrefixBytes = 12;             // magic ‖ BE32 length
constexpr size_t kPass1ChunkBytes = 1u << 20;   // divides kLegacyBlockBytes
constexpr size_t kMaxKeyFileBytes = 4096;

Error Malformed(LegacyFormat f, const std::string& why) {
  return MakeError(ErrorCode::kFormat, std::string("malformed ") + LegacyFormatName(f) + " file: " + why);
}

Result<const JsonValue*> Field(const JsonValue& doc, LegacyFormat f, const char* name, JsonValue::Type type) {
  const JsonValue* v = doc.Find(name);
  if (!v) return Malformed(f, std::string("metadata has no \"") + name + "\"");
  if (v->type != type) return Malformed(f, std::string("metadata field \"") + name + "\" has the wrong type");
  return v;
}

Result<std::array<uint8_t, 32>> ParseSha256Hex(LegacyFormat f, const std::string& hex) {
  std::array<uint8_t, 32> out{};
  auto lower_hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
  if (hex.size() != 64 || !std::all_of(hex.begin(), hex.end(), lower_hex)) {
    return Malformed(f, "plaintext_hash is not 64 lowercase hex digits (Python's hexdigest())");
  }
  auto bytes = HexDecode(hex);
  if (!bytes.ok() || bytes->size() != 32) return Malformed(f, "plaintext_hash is not hex");
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

// Strict standard base64 with padding (Python's base64.b64encode).
Result<Bytes> ParseBase64(LegacyFormat f, const char* what, const std::string& b64, size_t max_bytes) {
  Bytes out(b64.size() / 4 * 3 + 3);
  size_t len = 0;
  const char* end = nullptr;
  if (b64.empty() || out.size() > max_bytes + 3 ||
      sodium_base642bin(out.data(), out.size(), b64.data(), b64.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != b64.data() + b64.size()) {
    return Malformed(f, std::string(what) + " is not standard base64");
  }
  out.resize(len);
  return out;
}

// A JSON integer literal (no sign, fraction or exponent) as uint64.
std::optional<uint64_t> ParseUnsigned(const std::string& text) {
  if (text.empty() || text.size() > 20 || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  if (text.size() > 1 && text[0] == '0') return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

Status ParseEncModel(const JsonValue& doc, LegacyInfo& info) {
  const LegacyFormat f = LegacyFormat::kEncModel;
  HMOD_ASSIGN_OR_RETURN(const JsonValue* version, Field(doc, f, "version", JsonValue::Type::kNumber));
  if (version->text != "1") {
    return MakeError(ErrorCode::kUnsupported, "ENCMODEL version " + version->text + " is not supported (only 1)");
  }
  HMOD_ASSIGN_OR_RETURN(const JsonValue* alg, Field(doc, f, "algorithm", JsonValue::Type::kString));
  if (alg->text != "AES-256-GCM") {
    return MakeError(ErrorCode::kUnsupported, "ENCMODEL algorithm \"" + alg->text + "\" is not supported (only AES-256-GCM)");
  }
  HMOD_ASSIGN_OR_RETURN(const JsonValue* size, Field(doc, f, "plaintext_size", JsonValue::Type::kNumber));
  HMOD_ASSIGN_OR_RETURN(const JsonValue* hash, Field(doc, f, "plaintext_hash", JsonValue::Type::kString));
  HMOD_ASSIGN_OR_RETURN(const JsonValue* has_aad, Field(doc, f, "has_aad", JsonValue::Type::kBool));
  const auto n = ParseUnsigned(size->text);
  if (!n) return Malformed(f, "plaintext_size is not a non-negative integer");
  HMOD_ASSIGN_OR_RETURN(info.plaintext_sha256, ParseSha256Hex(f, hash->text));
  info.has_aad = has_aad->boolean;
  info.plaintext_bytes = *n;  // checked against the file size by the caller
  return OkStatus();
}

Status ParseEnvModel(const JsonValue& doc, LegacyInfo& info) {
  const LegacyFormat f = LegacyFormat::kEnvModel;
  HMOD_ASSIGN_OR_RETURN(const JsonValue* version, Field(doc, f, "version", JsonValue::Type::kNumber));
  if (version->text != "1") {
    return MakeError(ErrorCode::kUnsupported, "ENVMODEL version " + version->text + " is not supported (only 1)");
  }
  HMOD_ASSIGN_OR_RETURN(const JsonValue* key_id, Field(doc, f, "kms_key_id", JsonValue::Type::kString));
  HMOD_ASSIGN_OR_RETURN(const JsonValue* dek, Field(doc, f, "encrypted_dek", JsonValue::Type::kString));
  HMOD_ASSIGN_OR_RETURN(const JsonValue* nonce, Field(doc, f, "nonce", JsonValue::Type::kString));
  HMOD_ASSIGN_OR_RETURN(const JsonValue* hash, Field(doc, f, "plaintext_hash", JsonValue::Type::kString));
  info.kms_key_id = key_id->text;
  HMOD_ASSIGN_OR_RETURN(info.encrypted_dek, ParseBase64(f, "encrypted_dek", dek->text, 6144));
  HMOD_ASSIGN_OR_RETURN(Bytes n, ParseBase64(f, "nonce", nonce->text, 128));
  if (n.size() != kLegacyNonceBytes) {
    return MakeError(ErrorCode::kUnsupported, "ENVMODEL nonce is " + std::to_string(n.size()) +
                                                  " bytes; only the seed's 12-byte nonces are supported");
  }
  std::copy(n.begin(), n.end(), info.nonce.begin());
  HMOD_ASSIGN_OR_RETURN(info.plaintext_sha256, ParseSha256Hex(f, hash->text));
  // The seed reads envelope.get("metadata", {}).
  if (const JsonValue* meta = doc.Find("metadata")) {
    if (meta->type != JsonValue::Type::kObject) return Malformed(f, "metadata is not an object");
    for (const auto& v : meta->members) {
      if (v.type != JsonValue::Type::kString) {
        return Malformed(f, "metadata value of \"" + v.key +
                                "\" is not a string (a KMS encryption context holds strings only)");
      }
      info.metadata.emplace_back(v.key, v.text);
    }
  }
  info.aad_json = legacy::PythonJsonDumps(info.metadata);
  return OkStatus();
}

// EVP context, freed on scope exit.
struct CipherCtx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};

Error CryptoError(const char* what) { return MakeError(ErrorCode::kCrypto, std::string("OpenSSL: ") + what + " failed"); }

// Plaintext bytes wiped before they are freed.
struct WipedBuffer {
  Bytes bytes;
  explicit WipedBuffer(size_t n = 0) : bytes(n) {}
  ~WipedBuffer() { Wipe(); }
  void Wipe() {
    if (!bytes.empty()) sodium_memzero(bytes.data(), bytes.size());
  }
};

}  // namespace

const char* LegacyFormatName(LegacyFormat format) {
  return format == LegacyFormat::kEncModel ? "ENCMODEL" : "ENVMODEL";
}

std::optional<LegacyFormat> DetectLegacyFormat(ByteSpan prefix) {
  if (prefix.size() < kLegacyMagicBytes) return std::nullopt;
  const std::string_view magic(reinterpret_cast<const char*>(prefix.data()), kLegacyMagicBytes);
  if (magic == kEncMagic) return LegacyFormat::kEncModel;
  if (magic == kEnvMagic) return LegacyFormat::kEnvModel;
  return std::nullopt;
}

Result<bool> IsLegacyFile(const std::string& path) {
  HMOD_ASSIGN_OR_RETURN(auto in, InputFile::Open(path));
  if (!in->is_regular() || in->size() < kLegacyMagicBytes) return false;
  std::array<uint8_t, kLegacyMagicBytes> magic{};
  HMOD_TRY(in->ReadAt(0, magic));
  return DetectLegacyFormat(magic).has_value();
}

Result<LegacyInfo> ReadLegacyInfo(const PositionalSource& file) {
  LegacyInfo info;
  info.file_bytes = file.size();
  if (info.file_bytes < kLegacyMagicBytes) return MakeError(ErrorCode::kFormat, "not a legacy model file (too short)");
  std::array<uint8_t, kPrefixBytes> prefix{};
  HMOD_TRY(file.ReadAt(0, MutableByteSpan(prefix).first(static_cast<size_t>(std::min<uint64_t>(kPrefixBytes, info.file_bytes)))));
  auto format = DetectLegacyFormat(prefix);
  if (!format) return MakeError(ErrorCode::kFormat, "not a legacy model file (no ENCMODEL/ENVMODEL magic)");
  info.format = *format;
  const LegacyFormat f = *format;
  if (info.file_bytes < kPrefixBytes) return Malformed(f, "truncated before the metadata length");
  const uint32_t n = uint32_t{prefix[8]} << 24 | uint32_t{prefix[9]} << 16 | uint32_t{prefix[10]} << 8 | prefix[11];
  if (n > kMaxLegacyMetadataBytes) {
    return MakeError(ErrorCode::kLimit, std::string(LegacyFormatName(f)) + " metadata is " + std::to_string(n) +
                                            " bytes; the limit is " + std::to_string(kMaxLegacyMetadataBytes));
  }
  if (n > info.file_bytes - kPrefixBytes) return Malformed(f, "truncated inside the metadata");
  info.metadata_bytes = n;
  std::string text(n, '\0');
  HMOD_TRY(file.ReadAt(kPrefixBytes, MutableByteSpan(reinterpret_cast<uint8_t*>(text.data()), n)));
  HMOD_ASSIGN_OR_RETURN(JsonValue doc, legacy::ParseJson(text, std::string(LegacyFormatName(f)) + " metadata"));
  if (doc.type != JsonValue::Type::kObject) return Malformed(f, "metadata is not a JSON object");

  uint64_t pos = kPrefixBytes + n;
  if (f == LegacyFormat::kEncModel) {
    HMOD_TRY(ParseEncModel(doc, info));
    if (info.file_bytes - pos < kLegacyNonceBytes) return Malformed(f, "truncated before the nonce");
    HMOD_TRY(file.ReadAt(pos, info.nonce));
    pos += kLegacyNonceBytes;
  } else {
    HMOD_TRY(ParseEnvModel(doc, info));
  }
  info.ciphertext_offset = pos;
  if (info.file_bytes - pos < kLegacyTagBytes) return Malformed(f, "truncated: no room for the 16-byte GCM tag");
  const uint64_t body = info.file_bytes - pos - kLegacyTagBytes;
  if (f == LegacyFormat::kEncModel && body != info.plaintext_bytes) {
    return MakeError(ErrorCode::kAuthFailed, "ENCMODEL file is truncated or extended: the metadata records " +
                                                 std::to_string(info.plaintext_bytes) + " plaintext bytes, the file holds " +
                                                 std::to_string(body));
  }
  info.plaintext_bytes = body;
  if (body > kMaxLegacyPlaintextBytes) return MakeError(ErrorCode::kLimit, "legacy ciphertext exceeds GCM's 64 GiB limit");
  return info;
}

Result<SecretBytes> LoadLegacyKey(const std::string& path) {
  HMOD_TRY(CheckPrivateFileMode(path));
  HMOD_ASSIGN_OR_RETURN(Bytes raw, ReadSmallFile(path, kMaxKeyFileBytes));
  struct Wipe {
    Bytes& b;
    ~Wipe() { sodium_memzero(b.data(), b.size()); }
  } wipe{raw};
  if (raw.size() == kAeadKeyBytes) return SecretBytes::CopyFrom(raw);
  std::string_view text(reinterpret_cast<const char*>(raw.data()), raw.size());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.remove_suffix(1);
  if (text.size() == 2 * kAeadKeyBytes && std::all_of(text.begin(), text.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); })) {
    SecretBytes key(kAeadKeyBytes);
    size_t len = 0;
    if (sodium_hex2bin(key.secret().data(), key.size(), text.data(), text.size(), nullptr, &len, nullptr) == 0 &&
        len == kAeadKeyBytes) {
      return key;
    }
  }
  auto key = DecodeKeyFile(text);
  if (!key.ok()) {
    return MakeError(ErrorCode::kKeyFile, path + ": not a legacy key (32 raw bytes, 64 hex digits, or an hmod-key-v1 file)",
                     "the ENCMODEL key is the 32-byte AES key passed to ModelEncryptor(key=...)");
  }
  return key;
}

// ---------------------------------------------------------------------------------------------

// Pass 2 by random access: verified 4 MiB blocks, the last two kept (wiped when dropped).
class LegacyFile::PlaintextSource final : public PositionalSource {
 public:
  explicit PlaintextSource(const LegacyFile& f) : f_(f) {}
  uint64_t size() const override { return f_.info_.plaintext_bytes; }

  Status ReadAt(uint64_t offset, MutableByteSpan buf) const override {
    if (offset > size() || buf.size() > size() - offset) {
      return MakeError(ErrorCode::kFormat, "read past the end of the legacy plaintext");
    }
    std::lock_guard<std::mutex> lock(mu_);
    size_t done = 0;
    while (done < buf.size()) {
      const uint64_t at = offset + done;
      const uint64_t block = at / kLegacyBlockBytes;
      HMOD_ASSIGN_OR_RETURN(const Bytes* plain, Block(block));
      const uint64_t in_block = at - block * kLegacyBlockBytes;
      const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size() - done, plain->size() - in_block));
      std::memcpy(buf.data() + done, plain->data() + in_block, n);
      done += n;
    }
    return OkStatus();
  }

  // Reads, checks and decrypts block `b` into `out` (resized to the block's length).
  static Status LoadBlock(const LegacyFile& f, uint64_t b, Bytes& out) {
    const LegacyInfo& info = f.info_;
    const uint64_t start = b * kLegacyBlockBytes;
    if (start >= info.plaintext_bytes || b >= f.block_digests_.size()) {
      return MakeError(ErrorCode::kCrypto, "legacy block out of range");
    }
    const size_t len = static_cast<size_t>(std::min<uint64_t>(kLegacyBlockBytes, info.plaintext_bytes - start));
    if (!out.empty()) sodium_memzero(out.data(), out.size());  // the tail a shorter block leaves
    out.resize(len);
    HMOD_TRY(f.file_.ReadAt(info.ciphertext_offset + start, out));
    if (!ConstantTimeEquals(Sha256(out), f.block_digests_[b])) {
      sodium_memzero(out.data(), out.size());
      return MakeError(ErrorCode::kAuthFailed,
                       "the legacy file changed after it was authenticated (ciphertext block " + std::to_string(b) +
                           " differs)",
                       "make sure nothing writes to the file while it is read, then try again");
    }
    // GCM's counter blocks: J0 = nonce ‖ 00000001; plaintext block i uses J0 + 1 + i. The
    // 32-bit counter never wraps below kMaxLegacyPlaintextBytes, so OpenSSL's 128-bit CTR
    // increment gives the same blocks.
    std::array<uint8_t, 16> iv{};
    std::copy(info.nonce.begin(), info.nonce.end(), iv.begin());
    const uint64_t counter = 2 + start / 16;
    for (int i = 0; i < 4; ++i) iv[15 - i] = static_cast<uint8_t>(counter >> (8 * i));
    CipherCtx c;
    int outl = 0;
    if (!c.ctx || EVP_DecryptInit_ex(c.ctx, EVP_aes_256_ctr(), nullptr, f.key_.secret().data(), iv.data()) != 1 ||
        EVP_DecryptUpdate(c.ctx, out.data(), &outl, out.data(), static_cast<int>(len)) != 1 ||
        static_cast<size_t>(outl) != len) {
      sodium_memzero(out.data(), out.size());
      return CryptoError("AES-256-CTR");
    }
    return OkStatus();
  }

  ~PlaintextSource() override {
    for (auto& e : cache_) sodium_memzero(e.plain.data(), e.plain.size());
  }

 private:
  struct Entry {
    uint64_t block = UINT64_MAX;
    Bytes plain;
  };

  Result<const Bytes*> Block(uint64_t b) const {
    for (auto& e : cache_) {
      if (e.block == b) return &e.plain;
    }
    Entry& victim = cache_[next_];
    next_ = (next_ + 1) % cache_.size();
    victim.block = UINT64_MAX;
    HMOD_TRY(LoadBlock(f_, b, victim.plain));
    victim.block = b;
    return &victim.plain;
  }

  const LegacyFile& f_;
  mutable std::mutex mu_;
  mutable std::array<Entry, 2> cache_;
  mutable size_t next_ = 0;
};

LegacyFile::LegacyFile(const PositionalSource& file, LegacyInfo info) : file_(file), info_(std::move(info)) {}
LegacyFile::~LegacyFile() {
  if (!aad_.empty()) sodium_memzero(aad_.data(), aad_.size());
}

Result<std::unique_ptr<LegacyFile>> LegacyFile::Open(const PositionalSource& file, const LegacyKeys& keys,
                                                     std::string key_description) {
  HMOD_TRY(InitCrypto());
  HMOD_ASSIGN_OR_RETURN(LegacyInfo info, ReadLegacyInfo(file));
  std::unique_ptr<LegacyFile> f(new LegacyFile(file, std::move(info)));
  const LegacyInfo& i = f->info_;
  if (i.format == LegacyFormat::kEncModel) {
    if (keys.key_file.empty()) {
      return MakeError(ErrorCode::kUsage, "an ENCMODEL file is opened with its raw AES-256 key",
                       "pass --legacy-key FILE (32 raw bytes, 64 hex digits or an hmod-key-v1 file, mode 0600)");
    }
    if (i.has_aad && !keys.aad) {
      return MakeError(ErrorCode::kUsage, "this ENCMODEL file was encrypted with associated data (has_aad: true)",
                       "pass the same data with --legacy-aad STRING or --legacy-aad-file FILE (e.g. \"name:version\")");
    }
    if (!i.has_aad && keys.aad && !keys.aad->empty()) {
      return MakeError(ErrorCode::kUsage, "this ENCMODEL file was encrypted without associated data (has_aad: false)",
                       "drop --legacy-aad");
    }
    HMOD_ASSIGN_OR_RETURN(f->key_, LoadLegacyKey(keys.key_file));
    if (keys.aad) f->aad_ = *keys.aad;
    f->opened_by_ = key_description.empty() ? "legacy-key:" + keys.key_file : key_description;
    f->key_id_ = KeyFingerprint(f->key_);
  } else {
    if (keys.aad) {
      return MakeError(ErrorCode::kUsage, "--legacy-aad is for ENCMODEL files",
                       "an ENVMODEL file's associated data is its metadata");
    }
    std::string region_hint;
    if (i.kms_key_id.rfind("arn:", 0) == 0) (void)aws::NormalizeKmsKey(i.kms_key_id, region_hint);
    const aws::EnvFn env = keys.aws_env ? aws::EnvFn(keys.aws_env) : aws::ProcessEnv();
    HMOD_ASSIGN_OR_RETURN(auto kms, aws::KmsClient::Create(region_hint, env));
    std::string arn;
    HMOD_ASSIGN_OR_RETURN(f->key_, kms->Decrypt(i.encrypted_dek, i.metadata, "", kAeadKeyBytes, arn));
    f->aad_ = Bytes(i.aad_json.begin(), i.aad_json.end());
    f->key_id_ = arn.empty() ? i.kms_key_id : arn;
    f->opened_by_ = "aws-kms:" + f->key_id_;
  }
  return f;
}

Status LegacyFile::Authenticate(const ProgressFn& progress) {
  const LegacyInfo& i = info_;
  CipherCtx c;
  if (!c.ctx || EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kLegacyNonceBytes), nullptr) != 1 ||
      EVP_DecryptInit_ex(c.ctx, nullptr, nullptr, key_.secret().data(), i.nonce.data()) != 1) {
    return CryptoError("AES-256-GCM init");
  }
  int outl = 0;
  if (!aad_.empty() && EVP_DecryptUpdate(c.ctx, nullptr, &outl, aad_.data(), static_cast<int>(aad_.size())) != 1) {
    return CryptoError("AES-256-GCM AAD");
  }
  block_digests_.clear();
  block_digests_.reserve(static_cast<size_t>((i.plaintext_bytes + kLegacyBlockBytes - 1) / kLegacyBlockBytes));
  Bytes ct(static_cast<size_t>(std::min<uint64_t>(kPass1ChunkBytes, i.plaintext_bytes)));
  WipedBuffer scratch(ct.size());
  Sha256Stream whole;
  auto block_hash = std::make_unique<Sha256Stream>();
  for (uint64_t done = 0; done < i.plaintext_bytes;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(ct.size(), i.plaintext_bytes - done));
    HMOD_TRY(file_.ReadAt(i.ciphertext_offset + done, MutableByteSpan(ct.data(), n)));
    block_hash->Update(ByteSpan(ct.data(), n));
    if (EVP_DecryptUpdate(c.ctx, scratch.bytes.data(), &outl, ct.data(), static_cast<int>(n)) != 1 ||
        static_cast<size_t>(outl) != n) {
      return CryptoError("AES-256-GCM decrypt");
    }
    whole.Update(ByteSpan(scratch.bytes.data(), n));
    done += n;
    if (done % kLegacyBlockBytes == 0 || done == i.plaintext_bytes) {
      block_digests_.push_back(block_hash->Finish());
      block_hash = std::make_unique<Sha256Stream>();
    }
    if (progress) progress(done);
  }
  scratch.Wipe();
  std::array<uint8_t, kLegacyTagBytes> tag{};
  HMOD_TRY(file_.ReadAt(i.ciphertext_offset + i.plaintext_bytes, tag));
  if (EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag.size()), tag.data()) != 1) {
    return CryptoError("AES-256-GCM tag");
  }
  uint8_t final_block[16];
  if (EVP_DecryptFinal_ex(c.ctx, final_block, &outl) != 1) {
    block_digests_.clear();
    const std::string why = i.format == LegacyFormat::kEncModel
                                ? "wrong key, wrong associated data, or the file was altered"
                                : "the ciphertext, nonce or metadata was altered";
    return MakeError(ErrorCode::kAuthFailed,
                     std::string(LegacyFormatName(i.format)) + " authentication failed (GCM tag): " + why);
  }
  if (!ConstantTimeEquals(whole.Finish(), i.plaintext_sha256)) {
    block_digests_.clear();
    return MakeError(ErrorCode::kAuthFailed,
                     "the plaintext's SHA-256 differs from the recorded plaintext_hash (the metadata was altered)");
  }
  authenticated_ = true;
  plaintext_ = std::make_unique<PlaintextSource>(*this);
  return OkStatus();
}

const PositionalSource& LegacyFile::plaintext() const {
  // Callers check authenticated(); an unauthenticated file has no source to hand out.
  static const MemorySource kEmpty{ByteSpan()};
  return plaintext_ ? static_cast<const PositionalSource&>(*plaintext_) : kEmpty;
}

Result<uint64_t> LegacyFile::DecryptTo(ByteSink& out, const ProgressFn& progress) {
  if (!authenticated_) return MakeError(ErrorCode::kCrypto, "legacy file decrypted before it was authenticated");
  Sha256Stream whole;
  WipedBuffer block;
  const uint64_t blocks = block_digests_.size();
  uint64_t done = 0;
  for (uint64_t b = 0; b < blocks; ++b) {
    HMOD_TRY(PlaintextSource::LoadBlock(*this, b, block.bytes));
    whole.Update(block.bytes);
    HMOD_TRY(out.Write(block.bytes));
    done += block.bytes.size();
    if (progress) progress(done);
  }
  if (done != info_.plaintext_bytes || !ConstantTimeEquals(whole.Finish(), info_.plaintext_sha256)) {
    return MakeError(ErrorCode::kAuthFailed, "the legacy plaintext changed between the two passes",
                     "make sure nothing writes to the file while it is read, then try again");
  }
  return done;
}

Result<LegacyDecryptSummary> DecryptLegacyFile(const InputFile& in, const LegacyKeys& keys, ByteSink& out,
                                               const ProgressFn& progress, bool verify_only) {
  if (!in.is_regular()) {
    return MakeError(ErrorCode::kUsage, "a legacy ENCMODEL/ENVMODEL file must be read from a file, not a pipe",
                     "its single GCM tag is at the end, so it is read twice; save it to a file first");
  }
  HMOD_ASSIGN_OR_RETURN(auto file, LegacyFile::Open(in, keys));
  const uint64_t total = file->info().plaintext_bytes;
  ProgressFn pass1, pass2;
  if (progress) {
    pass1 = [&](uint64_t d) { progress(verify_only ? d : d / 2); };
    pass2 = [&](uint64_t d) { progress(total / 2 + d / 2); };
  }
  HMOD_TRY(file->Authenticate(pass1));
  LegacyDecryptSummary summary;
  summary.info = file->info();
  summary.opened_by = file->opened_by();
  if (verify_only) {
    summary.plaintext_bytes = total;
    return summary;
  }
  HMOD_ASSIGN_OR_RETURN(summary.plaintext_bytes, file->DecryptTo(out, pass2));
  return summary;
}

}  // namespace hmod
