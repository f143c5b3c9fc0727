#include "hmod/key_file.h"

#include <sodium.h>

#include <optional>

#include "hmod/io.h"
#include "keys/key_line.h"

namespace hmod {
namespace {

constexpr std::string_view kKeyLinePrefix = "hmod-key-v1 ";
constexpr size_t kMaxKeyFileBytes = 4096;

}  // namespace

std::string KeyFingerprint(const SecretBytes& key) {
  Bytes input;
  const std::string_view label = "hmod/v1 key fingerprint";
  input.insert(input.end(), label.begin(), label.end());
  input.push_back(0);
  auto k = key.secret();
  input.insert(input.end(), k.begin(), k.end());
  const auto digest = Sha256(input);
  sodium_memzero(input.data(), input.size());
  return HexEncode(ByteSpan(digest).first(16));
}

std::string EncodeKeyFile(const SecretBytes& key) {
  std::string text =
      "# hmodctl key-encryption key. Keep it secret: anyone with this file can decrypt\n"
      "# every model wrapped to it. Mode must stay 0600.\n"
      "# fingerprint: " + KeyFingerprint(key) + "\n";
  text += kKeyLinePrefix;
  text += HexEncode(key.secret());
  text += "\n";
  return text;
}

Result<SecretBytes> DecodeKeyFile(std::string_view text) {
  return DecodeKeyLine(text, {kKeyLinePrefix, kKekBytes, "an hmodctl key file", "create one with: hmodctl keygen -o FILE"},
                       "");
}

Result<SecretBytes> LoadKeyFile(const std::string& path) {
  HMOD_TRY(CheckPrivateFileMode(path));
  HMOD_ASSIGN_OR_RETURN(Bytes raw, ReadSmallFile(path, kMaxKeyFileBytes));
  auto key = DecodeKeyFile(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
  sodium_memzero(raw.data(), raw.size());
  if (!key.ok()) {
    Error e = key.error();
    e.message = path + ": " + e.message;
    return e;
  }
  return key;
}

Result<std::string> GenerateKeyFile(const std::string& path) {
  SecretBytes key = SecretBytes::Random(kKekBytes);
  std::string text = EncodeKeyFile(key);
  Status st = WriteNewPrivateFile(path, AsBytes(text));
  sodium_memzero(text.data(), text.size());
  HMOD_TRY(st);
  return KeyFingerprint(key);
}

}  // namespace hmod
