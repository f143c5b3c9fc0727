#include "hmod/secret_bytes.h"

#include <sodium.h>

#include <cstring>
#include <new>

#include "hmod/crypto.h"

namespace hmod {

SecretBytes::SecretBytes(size_t size) : size_(size) {
  if (size == 0) return;
  // sodium_malloc needs sodium_init (page size, canary); it is idempotent and thread-safe,
  // so a library user who forgot InitCrypto() still gets guarded memory, not a crash.
  static const bool sodium_ready = sodium_init() >= 0;
  if (!sodium_ready) throw std::bad_alloc();
  // sodium_malloc: mlock'ed, surrounded by guard pages, wiped by sodium_free.
  data_ = static_cast<uint8_t*>(sodium_malloc(size));
  if (data_ == nullptr) throw std::bad_alloc();
  sodium_memzero(data_, size);
}

SecretBytes SecretBytes::Random(size_t size) {
  SecretBytes s(size);
  RandomFill(s.secret());  // the one randomness path (random_for_testing.h)
  return s;
}

SecretBytes SecretBytes::CopyFrom(std::span<const uint8_t> bytes) {
  SecretBytes s(bytes.size());
  if (!bytes.empty()) std::memcpy(s.data_, bytes.data(), bytes.size());
  return s;
}

SecretBytes::~SecretBytes() {
  if (data_) sodium_free(data_);
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept : data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    if (data_) sodium_free(data_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

bool SecretBytes::Equals(const SecretBytes& other) const {
  if (size_ != other.size_) return false;
  if (size_ == 0) return true;
  return sodium_memcmp(data_, other.data_, size_) == 0;
}

}  // namespace hmod
