// SecretBytes: key material in locked, guarded memory that is zeroed when freed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace hmod {

// Owns `size` bytes of libsodium's sodium_malloc'd memory (mlock'ed, guard pages, wiped
// when freed); secrets of up to 128 bytes share guarded slabs, one slot each. Move-only.
// The only way to reach the bytes is the greppable accessor `secret()`; nothing here ever
// prints or logs them.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t size);                 // zero-filled
  static SecretBytes Random(size_t size);            // from the OS CSPRNG
  static SecretBytes CopyFrom(std::span<const uint8_t> bytes);
  ~SecretBytes();

  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // The one accessor to secret bytes. Grep for `.secret()` to audit every use.
  std::span<uint8_t> secret() { return {data_, size_}; }
  std::span<const uint8_t> secret() const { return {data_, size_}; }

  // Constant-time comparison.
  bool Equals(const SecretBytes& other) const;

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace hmod
