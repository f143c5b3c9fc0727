// ModelReader: the loader API. Opens a per-tensor .hmod (FORMAT.md §6) and decrypts single
// tensors, or byte ranges of them, straight into caller-owned memory, touching only the
// chunks they need. Plaintext never goes to disk. docs/LOADER.md shows it in use; the C
// ABI over it is hmod/hmod.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hmod/envelope.h"
#include "hmod/io.h"
#include "hmod/key_provider.h"
#include "hmod/result.h"
#include "hmod/tensor_container.h"

namespace hmod {

// One tensor as the authenticated index describes it.
struct TensorDesc {
  std::string name;             // unique in the file
  std::string dtype;            // safetensors dtype ("F32", "BF16", ...) or GGUF type name ("Q4_0", ...)
  std::vector<uint64_t> shape;  // as the source file states it (GGUF: ne[] in file order)
  uint64_t bytes = 0;           // size of the tensor's raw data
  bool encrypted = true;        // false for tensors kept in clear (--plaintext-tensors)
};

// An open per-tensor .hmod file. Every method is const and safe to call from several
// threads at once on the same reader. Nothing here throws (allocation failure aside).
class ModelReader {
 public:
  // Opens `path` (a regular file; not "-" or a pipe), reads its header, unwraps the data
  // key with the first of `providers` that can, checks the header MAC and the `required`
  // context, and reads and authenticates the tensor index. The providers are used only
  // here and destroyed before Open returns; the reader keeps the file open (one fd) and
  // the derived payload key until it is destroyed.
  // Errors: kIo (cannot open/read), kFormat (not a valid .hmod), kUsage (a whole-file
  // .hmod: it has no tensors to read one by one), kUnsupported (not a regular file, or an
  // unknown version/suite/extension), kNoMatchingKey (no provider opens it), kAuthFailed
  // (tampered header or index), kContextMismatch (a `required` entry fails), kKeyFile.
  static Result<std::unique_ptr<ModelReader>> Open(const std::string& path, ProviderList providers,
                                                   std::vector<ContextRequirement> required = {});
  ~ModelReader();
  ModelReader(const ModelReader&) = delete;
  ModelReader& operator=(const ModelReader&) = delete;

  // Every tensor, in the order their data lies in the source file. Valid as long as the
  // reader is.
  const std::vector<TensorDesc>& tensors() const { return tensors_; }
  // The tensor named `name`, or kUsage if there is none.
  Result<TensorDesc> Find(std::string_view name) const;
  // Its position in tensors(), or kUsage if there is none.
  Result<size_t> IndexOf(std::string_view name) const;

  // Decrypts the whole tensor `name` into `out`, whose size must equal the tensor's size
  // (kUsage otherwise). Encrypted tensors are decrypted chunk by chunk, each authenticated
  // before it is copied; plain tensors are read into `out` and their SHA-256 checked
  // against the index before the call returns.
  // On any failure `out` is wiped (all zeros) and the error returned: no unauthenticated
  // byte is released. kUsage (no such tensor, wrong size), kAuthFailed (the file was
  // tampered with, possibly after Open), kIo.
  Status ReadTensor(std::string_view name, MutableByteSpan out) const;
  // As ReadTensor, for bytes [offset, offset + out.size()) of the tensor; kUsage if that
  // range is not inside it. Encrypted tensors decrypt only the 16 KiB chunks the range
  // touches; a plain tensor is read and hashed whole on every call (so prefer ReadTensor).
  Status ReadTensorRange(std::string_view name, uint64_t offset, MutableByteSpan out) const;

  // The authenticated header: suite, file id, encryption context.
  const Header& header() const { return file_->header(); }
  // Which provider unwrapped the data key (its description, no secret).
  const std::string& opened_by() const { return file_->opened_by(); }

 private:
  ModelReader() = default;
  Status ReadChecked(size_t position, uint64_t offset, MutableByteSpan out) const;
  Status ReadPlain(size_t entry, uint64_t offset, MutableByteSpan out) const;

  std::unique_ptr<InputFile> input_;  // declared first: file_ refers to it
  std::unique_ptr<TensorFile> file_;
  std::vector<TensorDesc> tensors_;   // tensors_[i] is index entry i + 1
  std::unordered_map<std::string_view, size_t> by_name_;  // views into tensors_
};

}  // namespace hmod
