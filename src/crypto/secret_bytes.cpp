#include "hmod/secret_bytes.h"

#include <sodium.h>

#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#include "hmod/crypto.h"

namespace hmod {
namespace {

bool SodiumReady() {
  // sodium_malloc needs sodium_init (page size, canary); it is idempotent and thread-safe,
  // so a library user who forgot InitCrypto() still gets guarded memory, not a crash.
  static const bool ready = sodium_init() >= 0;
  return ready;
}

// Small secrets (keys, nonces' key material) come from slabs of sodium_malloc'd memory:
// mlock'ed, guard pages around each slab, every slot wiped when freed. One sodium_malloc
// per key costs ~10 system calls (mmap, mprotect, mlock, ...) and page faults each way,
// which a per-tensor file pays for every tensor; a slot costs a lock.
constexpr size_t kSlotBytes = 128;
constexpr size_t kSlabBytes = 64 * 1024;

class SmallSecretPool {
 public:
  void* Allocate() {
    std::lock_guard lock(mu_);
    if (free_.empty()) {
      auto* slab = static_cast<uint8_t*>(sodium_malloc(kSlabBytes));
      if (slab == nullptr) return nullptr;
      for (size_t off = kSlabBytes; off >= kSlotBytes; off -= kSlotBytes) free_.push_back(slab + off - kSlotBytes);
    }
    void* slot = free_.back();
    free_.pop_back();
    return slot;
  }
  void Free(void* slot) {
    sodium_memzero(slot, kSlotBytes);
    std::lock_guard lock(mu_);
    free_.push_back(static_cast<uint8_t*>(slot));
  }

 private:
  std::mutex mu_;
  std::vector<uint8_t*> free_;  // slabs live until exit (a few KiB of keys at most)
};

SmallSecretPool& Pool() {
  static auto* pool = new SmallSecretPool;  // never destroyed: secrets may outlive statics
  return *pool;
}

void* SecureAllocate(size_t size) {
  if (!SodiumReady()) return nullptr;
  if (size <= kSlotBytes) return Pool().Allocate();
  return sodium_malloc(size);  // mlock'ed, surrounded by guard pages, wiped by sodium_free
}

void SecureFree(void* p, size_t size) {
  if (size <= kSlotBytes) {
    Pool().Free(p);
  } else {
    sodium_free(p);
  }
}

}  // namespace

SecretBytes::SecretBytes(size_t size) : size_(size) {
  if (size == 0) return;
  data_ = static_cast<uint8_t*>(SecureAllocate(size));
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
  if (data_) SecureFree(data_, size_);
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept : data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    if (data_) SecureFree(data_, size_);
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
