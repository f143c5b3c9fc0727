// Randomness, constant-time comparison, hex and library start-up, from libsodium.
#include <sodium.h>

#include <atomic>

#include "crypto/random_for_testing.h"
#include "hmod/crypto.h"

namespace hmod {
namespace {

// nullptr: the OS CSPRNG. Set only by SetRandomSourceForTesting (tools/gen-vectors).
std::atomic<void (*)(uint8_t*, size_t)> g_test_fill{nullptr};

}  // namespace

void SetRandomSourceForTesting(void (*fill)(uint8_t* out, size_t n)) { g_test_fill.store(fill); }

Status InitCrypto() {
  if (sodium_init() < 0) return MakeError(ErrorCode::kCrypto, "libsodium failed to initialise");
  return OkStatus();
}

bool ConstantTimeEquals(ByteSpan a, ByteSpan b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

void RandomFill(MutableByteSpan out) {
  if (out.empty()) return;
  if (auto* fill = g_test_fill.load()) {
    fill(out.data(), out.size());
    return;
  }
  randombytes_buf(out.data(), out.size());
}

Bytes RandomBytes(size_t n) {
  Bytes b(n);
  RandomFill(b);
  return b;
}

std::string HexEncode(ByteSpan bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

Result<Bytes> HexDecode(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2) return MakeError(ErrorCode::kFormat, "odd-length hex string");
  Bytes out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return MakeError(ErrorCode::kFormat, "invalid hex digit");
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

}  // namespace hmod
