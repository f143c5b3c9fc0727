// Per-tensor .hmod files (FORMAT.md §6): write from a safetensors/GGUF model, restore it
// byte for byte, and read single tensors (the loader API).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hmod/container.h"
#include "hmod/model_file.h"
#include "hmod/signature.h"
#include "hmod/tensor_index.h"

namespace hmod {

struct TensorEncryptOptions {
  Suite suite = DefaultSuite();
  EncryptionContext context;
  bool public_index = false;                   // names, dtypes, shapes readable without a key
  std::vector<std::string> plaintext_globs;    // tensors kept in clear (fnmatch patterns)
  const SigningKey* sign_key = nullptr;        // adds a signature trailer (FORMAT.md §6.5)
  StreamOptions stream;
};

// Writes `source` (already parsed into `layout`) as a layout-2 .hmod to `out`, in one
// sequential pass that reads every source byte once.
Result<EncryptSummary> EncryptModelToContainer(const PositionalSource& source, const ModelLayout& layout,
                                               ByteSink& out, ProviderList& providers,
                                               const TensorEncryptOptions& options);

// An opened per-tensor file: header authenticated, index read and validated. Reads are
// positional and safe to call from several threads at once.
class TensorFile {
 public:
  // `source` must outlive the TensorFile.
  static Result<std::unique_ptr<TensorFile>> Open(const PositionalSource& source, ParsedHeader parsed,
                                                  ProviderList& providers,
                                                  const std::vector<ContextRequirement>& required);
  const Header& header() const { return opened_.parsed.header; }
  const TensorLayoutInfo& layout() const { return layout_; }
  const TensorIndex& index() const { return index_; }
  const std::string& opened_by() const { return opened_.opened_by; }

  // Index of the tensor entry named `name`, or kUsage if there is none.
  Result<size_t> Find(std::string_view name) const;
  // Decrypts bytes [offset, offset + out.size()) of entry `entry` into `out`. Encrypted entries
  // decrypt only the chunks they touch; plain entries are read whole and hashed on every
  // call, and the bytes returned are the bytes hashed. On any failure `out` is wiped.
  Status ReadEntry(size_t entry, uint64_t offset, MutableByteSpan out) const;
  // Writes the whole source file, in order, to `out`; returns its size. Checks all padding.
  Result<uint64_t> Restore(ByteSink& out, const StreamOptions& stream) const;

 private:
  TensorFile(const PositionalSource& source) : source_(source) {}
  Result<Bytes> ReadIndex() const;
  Result<const ChunkedReader*> ReaderFor(size_t entry) const;
  Status CheckZero(uint64_t from, uint64_t to) const;
  Status VerifyPlain(size_t entry) const;
  Status ReadPlain(size_t entry, uint64_t offset, MutableByteSpan out) const;
  static Error PlainMismatch(const IndexEntry& e);

  const PositionalSource& source_;
  OpenedHeader opened_;
  TensorLayoutInfo layout_;
  TensorIndex index_;
  SecretBytes index_mac_key_;
  mutable std::mutex mu_;
  mutable std::vector<std::unique_ptr<ChunkedReader>> readers_;
};

}  // namespace hmod
