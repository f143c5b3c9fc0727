#include "keys/pass_provider.h"

#include <sodium.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "format/byte_writer.h"
#include "keys/wrap_aad.h"

namespace hmod {
namespace {

constexpr std::string_view kWrapLabel = "hmod/v1 pass wrap";
constexpr size_t kSaltBytes = 16;
constexpr size_t kParamBytes = 8;  // BE32 opslimit ‖ BE32 memlimit in KiB
constexpr size_t kRecordBytes =
    kSaltBytes + kParamBytes + kAeadNonceBytes + kWrappedDataKeyBytes + kAeadTagBytes;
// Writing parameters: Argon2id, 3 passes over 64 MiB (about 0.3 s here).
constexpr uint32_t kOpsLimit = 3;
constexpr uint32_t kMemLimitKiB = 64 * 1024;
// Reading limits: refuse records that would make us burn unbounded CPU or memory.
constexpr uint32_t kMaxOpsLimit = 16;
constexpr uint32_t kMinMemLimitKiB = 8 * 1024;
constexpr uint32_t kMaxMemLimitKiB = 1024 * 1024;
constexpr size_t kMaxPassphraseBytes = 4096;

uint32_t ReadBe32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

class PassProvider final : public KeyProvider {
 public:
  PassProvider(SecretBytes passphrase, std::string source)
      : passphrase_(std::move(passphrase)), source_(std::move(source)) {}

  std::string provider_id() const override { return "pass"; }
  std::string key_id() const override { return "argon2id"; }
  std::string description() const override { return "pass: (" + source_ + ")"; }
  bool is_local() const override { return true; }

  Result<WrappedKey> Wrap(const SecretBytes& data_key, const WrapContext& ctx) override {
    WrappedKey wk{"pass", "argon2id", Bytes(kRecordBytes)};
    uint8_t* rec = wk.wrapped.data();
    RandomFill(MutableByteSpan(rec, kSaltBytes));
    ByteWriter params;
    params.U32(kOpsLimit);
    params.U32(kMemLimitKiB);
    std::memcpy(rec + kSaltBytes, params.bytes().data(), kParamBytes);
    RandomFill(MutableByteSpan(rec + kSaltBytes + kParamBytes, kAeadNonceBytes));
    HMOD_ASSIGN_OR_RETURN(SecretBytes key, Derive(ByteSpan(rec, kSaltBytes), kOpsLimit, kMemLimitKiB));
    HMOD_ASSIGN_OR_RETURN(Aead aead, Aead::Create(Suite::kAes256Gcm, key.secret()));
    const Bytes aad = WrapAad(kWrapLabel, ctx.file_id, ByteSpan(rec, kSaltBytes + kParamBytes));
    const size_t nonce_at = kSaltBytes + kParamBytes;
    HMOD_TRY(aead.Seal(ByteSpan(rec + nonce_at, kAeadNonceBytes), aad, data_key.secret(),
                       MutableByteSpan(rec + nonce_at + kAeadNonceBytes,
                                       kWrappedDataKeyBytes + kAeadTagBytes)));
    return wk;
  }

  Result<SecretBytes> Unwrap(const WrappedKey& record, const WrapContext& ctx) override {
    if (record.provider_id != "pass" || record.key_id != "argon2id") {
      return MakeError(ErrorCode::kNoMatchingKey, "not a passphrase record");
    }
    if (record.wrapped.size() != kRecordBytes) {
      return MakeError(ErrorCode::kAuthFailed, "passphrase-wrapped key has the wrong length");
    }
    const uint8_t* rec = record.wrapped.data();
    const uint32_t ops = ReadBe32(rec + kSaltBytes);
    const uint32_t mem = ReadBe32(rec + kSaltBytes + 4);
    if (ops < 1 || ops > kMaxOpsLimit || mem < kMinMemLimitKiB || mem > kMaxMemLimitKiB) {
      return MakeError(ErrorCode::kLimit, "Argon2id parameters out of the accepted range");
    }
    HMOD_ASSIGN_OR_RETURN(SecretBytes key, Derive(ByteSpan(rec, kSaltBytes), ops, mem));
    HMOD_ASSIGN_OR_RETURN(Aead aead, Aead::Create(Suite::kAes256Gcm, key.secret()));
    const Bytes aad = WrapAad(kWrapLabel, ctx.file_id, ByteSpan(rec, kSaltBytes + kParamBytes));
    const size_t nonce_at = kSaltBytes + kParamBytes;
    SecretBytes dk(kWrappedDataKeyBytes);
    Status st = aead.Open(ByteSpan(rec + nonce_at, kAeadNonceBytes), aad,
                          ByteSpan(rec + nonce_at + kAeadNonceBytes, kWrappedDataKeyBytes + kAeadTagBytes),
                          dk.secret());
    if (!st.ok()) return MakeError(ErrorCode::kAuthFailed, "wrong passphrase");
    return dk;
  }

 private:
  Result<SecretBytes> Derive(ByteSpan salt, uint32_t ops, uint32_t mem_kib) const {
    SecretBytes key(kAeadKeyBytes);
    auto pw = passphrase_.secret();
    if (crypto_pwhash(key.secret().data(), key.size(), reinterpret_cast<const char*>(pw.data()),
                      pw.size(), salt.data(), ops, static_cast<size_t>(mem_kib) * 1024,
                      crypto_pwhash_ALG_ARGON2ID13) != 0) {
      return MakeError(ErrorCode::kCrypto, "Argon2id failed (out of memory?)");
    }
    return key;
  }

  SecretBytes passphrase_;
  std::string source_;
};

Result<SecretBytes> ReadPassphraseFd(int fd) {
  SecretBytes buf(kMaxPassphraseBytes);
  size_t n = 0;
  while (n < buf.size()) {
    ssize_t r = ::read(fd, buf.secret().data() + n, buf.size() - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return MakeError(ErrorCode::kIo, "cannot read passphrase from fd " + std::to_string(fd));
    if (r == 0) break;
    n += static_cast<size_t>(r);
  }
  // One line: drop a trailing newline (and CR), as `echo pass | hmodctl ...` would send.
  if (n == buf.size()) {
    return MakeError(ErrorCode::kUsage, "passphrase longer than 4095 bytes");
  }
  auto s = buf.secret();
  if (n > 0 && s[n - 1] == '\n') --n;
  if (n > 0 && s[n - 1] == '\r') --n;
  return SecretBytes::CopyFrom(s.first(n));
}

}  // namespace

Result<std::unique_ptr<KeyProvider>> MakePassProvider(const std::string& spec) {
  SecretBytes pass;
  std::string source;
  if (spec.empty() || spec.rfind("env=", 0) == 0) {
    const std::string var = spec.empty() ? "HMOD_PASSPHRASE" : spec.substr(4);
    const char* value = std::getenv(var.c_str());
    if (value == nullptr) {
      return MakeError(ErrorCode::kUsage, "pass: needs a passphrase in $" + var,
                       "export " + var + "=..., or use pass:fd=N to read it from a file descriptor");
    }
    pass = SecretBytes::CopyFrom(AsBytes(value));
    source = "$" + var;
  } else if (spec.rfind("fd=", 0) == 0) {
    char* end = nullptr;
    long fd = std::strtol(spec.c_str() + 3, &end, 10);
    if (*end != '\0' || fd < 0 || fd > 1 << 20) return MakeError(ErrorCode::kUsage, "bad pass:fd=N");
    HMOD_ASSIGN_OR_RETURN(pass, ReadPassphraseFd(static_cast<int>(fd)));
    source = "fd " + std::to_string(fd);
  } else {
    return MakeError(ErrorCode::kUsage, "passphrases are never taken from the command line",
                     "use pass: (reads $HMOD_PASSPHRASE), pass:env=NAME or pass:fd=N");
  }
  if (pass.empty()) return MakeError(ErrorCode::kUsage, "empty passphrase");
  if (pass.size() >= kMaxPassphraseBytes) {
    return MakeError(ErrorCode::kUsage, "passphrase longer than 4095 bytes");
  }
  return std::unique_ptr<KeyProvider>(new PassProvider(std::move(pass), source));
}

}  // namespace hmod
