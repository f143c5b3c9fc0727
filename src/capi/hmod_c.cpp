// The C ABI (hmod/hmod.h) over hmod::ModelReader. Every entry point is noexcept and runs
// its body inside Guard(), which turns any escaping exception into a return code.
#include "hmod/hmod.h"

#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "hmod/model_reader.h"

struct hmod_reader {
  std::unique_ptr<hmod::ModelReader> model;
};

namespace hmod {
namespace {

// The documented codes are the negated ErrorCode values; keep them in lockstep.
static_assert(HMOD_E_USAGE == -static_cast<int>(ErrorCode::kUsage));
static_assert(HMOD_E_IO == -static_cast<int>(ErrorCode::kIo));
static_assert(HMOD_E_FORMAT == -static_cast<int>(ErrorCode::kFormat));
static_assert(HMOD_E_UNSUPPORTED == -static_cast<int>(ErrorCode::kUnsupported));
static_assert(HMOD_E_NO_MATCHING_KEY == -static_cast<int>(ErrorCode::kNoMatchingKey));
static_assert(HMOD_E_AUTH_FAILED == -static_cast<int>(ErrorCode::kAuthFailed));
static_assert(HMOD_E_CONTEXT_MISMATCH == -static_cast<int>(ErrorCode::kContextMismatch));
static_assert(HMOD_E_KEY_FILE == -static_cast<int>(ErrorCode::kKeyFile));
static_assert(HMOD_E_CRYPTO == -static_cast<int>(ErrorCode::kCrypto));
static_assert(HMOD_E_LIMIT == -static_cast<int>(ErrorCode::kLimit));

// The last error of this thread. `fixed` is used when the message itself cannot be
// allocated.
thread_local std::string t_message;
thread_local const char* t_fixed = "";

void ClearError() noexcept {
  t_message.clear();
  t_fixed = nullptr;
}

void SetMessage(const char* fixed_fallback, const std::string& message) noexcept {
  try {
    t_message = message;
    t_fixed = nullptr;
  } catch (...) {
    t_fixed = fixed_fallback;
  }
}

int Fail(const Error& e) noexcept {
  try {
    SetMessage("error (message unavailable: out of memory)",
               e.hint.empty() ? e.message : e.message + " (" + e.hint + ")");
  } catch (...) {
    t_fixed = "error (message unavailable: out of memory)";
  }
  return -static_cast<int>(e.code);
}

int Fail(ErrorCode code, const char* message) noexcept {
  SetMessage(message, message);
  return -static_cast<int>(code);
}

template <typename Body>
int Guard(Body&& body) noexcept {
  ClearError();
  try {
    return body();
  } catch (const std::bad_alloc&) {
    t_fixed = "out of memory";
    return HMOD_E_NO_MEMORY;
  } catch (const std::exception& e) {
    SetMessage("internal error", std::string("internal error: ") + e.what());
    return HMOD_E_INTERNAL;
  } catch (...) {
    t_fixed = "internal error: unknown exception";
    return HMOD_E_INTERNAL;
  }
}

void WipeBuffer(void* buf, size_t len) noexcept {
  if (buf != nullptr && len > 0) std::memset(buf, 0, len);
}

// Shared by both reads: argument checks, then the reader's own all-or-nothing read.
int Read(const hmod_reader* reader, const char* name, uint64_t offset, void* buf, size_t len, bool whole) {
  if (reader == nullptr || name == nullptr || (buf == nullptr && len > 0)) {
    WipeBuffer(buf, len);
    return Fail(ErrorCode::kUsage, "hmod_read_tensor: reader, name and buf must not be NULL");
  }
  const MutableByteSpan out(static_cast<uint8_t*>(buf), len);
  try {
    const Status st = whole ? reader->model->ReadTensor(name, out) : reader->model->ReadTensorRange(name, offset, out);
    return st.ok() ? HMOD_OK : Fail(st.error());
  } catch (...) {
    WipeBuffer(buf, len);  // an allocation failure part-way: still all or nothing
    throw;
  }
}

}  // namespace
}  // namespace hmod

extern "C" {

int hmod_open(const char* path, const char* const* kek_uris, size_t n_keks, hmod_reader** out) {
  using namespace hmod;
  return Guard([&]() -> int {
    if (out == nullptr) return Fail(ErrorCode::kUsage, "hmod_open: out must not be NULL");
    *out = nullptr;
    if (path == nullptr) return Fail(ErrorCode::kUsage, "hmod_open: path must not be NULL");
    if (n_keks == 0 || kek_uris == nullptr) {
      return Fail(ErrorCode::kUsage, "hmod_open: give at least one key URI (file:PATH or pass:)");
    }
    if (Status st = InitCrypto(); !st.ok()) return Fail(st.error());
    ProviderList providers;
    for (size_t i = 0; i < n_keks; ++i) {
      if (kek_uris[i] == nullptr) return Fail(ErrorCode::kUsage, "hmod_open: a key URI is NULL");
      auto p = ProviderFromUri(kek_uris[i]);
      if (!p.ok()) return Fail(p.error());
      providers.push_back(std::move(*p));
    }
    auto model = ModelReader::Open(path, std::move(providers));
    if (!model.ok()) return Fail(model.error());
    auto* reader = new hmod_reader;
    reader->model = std::move(*model);
    *out = reader;
    return HMOD_OK;
  });
}

void hmod_close(hmod_reader* reader) { delete reader; }

size_t hmod_tensor_count(const hmod_reader* reader) {
  return reader == nullptr ? 0 : reader->model->tensors().size();
}

int hmod_tensor_info(const hmod_reader* reader, size_t index, hmod_tensor_info_t* out) {
  using namespace hmod;
  return Guard([&]() -> int {
    if (reader == nullptr || out == nullptr) {
      return Fail(ErrorCode::kUsage, "hmod_tensor_info: reader and out must not be NULL");
    }
    const auto& tensors = reader->model->tensors();
    if (index >= tensors.size()) {
      return Fail(MakeError(ErrorCode::kUsage, "hmod_tensor_info: index " + std::to_string(index) +
                                                   " is out of range (" + std::to_string(tensors.size()) +
                                                   " tensors)"));
    }
    const TensorDesc& t = tensors[index];
    out->name = t.name.c_str();
    out->dtype = t.dtype.c_str();
    out->rank = t.shape.size();
    out->shape = t.shape.empty() ? nullptr : t.shape.data();
    out->bytes = t.bytes;
    out->encrypted = t.encrypted ? 1 : 0;
    return HMOD_OK;
  });
}

int hmod_find_tensor(const hmod_reader* reader, const char* name, size_t* index) {
  using namespace hmod;
  return Guard([&]() -> int {
    if (reader == nullptr || name == nullptr || index == nullptr) {
      return Fail(ErrorCode::kUsage, "hmod_find_tensor: reader, name and index must not be NULL");
    }
    auto found = reader->model->IndexOf(name);
    if (!found.ok()) return Fail(found.error());
    *index = *found;
    return HMOD_OK;
  });
}

int hmod_read_tensor(const hmod_reader* reader, const char* name, void* buf, size_t len) {
  return hmod::Guard([&] { return hmod::Read(reader, name, 0, buf, len, true); });
}

int hmod_read_tensor_range(const hmod_reader* reader, const char* name, uint64_t offset, void* buf, size_t len) {
  return hmod::Guard([&] { return hmod::Read(reader, name, offset, buf, len, false); });
}

const char* hmod_last_error(void) {
  return hmod::t_fixed != nullptr ? hmod::t_fixed : hmod::t_message.c_str();
}

const char* hmod_error_name(int code) {
  switch (code) {
    case HMOD_OK: return "ok";
    case HMOD_E_NO_MEMORY: return "no_memory";
    case HMOD_E_INTERNAL: return "internal";
    default: break;
  }
  if (code >= HMOD_E_LIMIT && code <= HMOD_E_USAGE) return hmod::ErrorCodeName(static_cast<hmod::ErrorCode>(-code));
  return "unknown";
}

}  // extern "C"
