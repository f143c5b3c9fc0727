// The loader API over TensorFile (FORMAT.md §6.4, "To read one tensor").
#include "hmod/model_reader.h"

#include <algorithm>

namespace hmod {
namespace {

void Wipe(MutableByteSpan out) { std::fill(out.begin(), out.end(), uint8_t{0}); }

}  // namespace

ModelReader::~ModelReader() = default;

Result<std::unique_ptr<ModelReader>> ModelReader::Open(const std::string& path, ProviderList providers,
                                                       std::vector<ContextRequirement> required) {
  std::unique_ptr<ModelReader> r(new ModelReader());
  HMOD_ASSIGN_OR_RETURN(r->input_, InputFile::Open(path));
  if (!r->input_->is_regular()) {
    return MakeError(ErrorCode::kUnsupported, r->input_->path() + " is not a regular file",
                     "a per-tensor .hmod is read with positional reads; save it to a file first");
  }
  HMOD_ASSIGN_OR_RETURN(ParsedHeader parsed, ReadHeader(*r->input_));
  // Refused before any key is tried: the answer would not change with the right key.
  if (parsed.header.layout != Layout::kTensors) {
    return MakeError(ErrorCode::kUsage,
                     path + " was encrypted as a whole file, not per tensor: it has no tensors to read one by one",
                     "decrypt it with `hmodctl decrypt`, or re-encrypt the model without --whole-file");
  }
  HMOD_ASSIGN_OR_RETURN(r->file_, TensorFile::Open(*r->input_, std::move(parsed), providers, required));
  providers.clear();  // unwrapping is done; do not keep key material around

  const auto& entries = r->file_->index().entries;
  r->tensors_.reserve(entries.size() - 1);
  for (size_t i = 1; i < entries.size(); ++i) {
    const IndexEntry& e = entries[i];
    r->tensors_.push_back(TensorDesc{e.name, e.dtype, e.shape, e.size, e.encrypted});
  }
  // Built after tensors_ stops growing: the keys are views into its names.
  r->by_name_.reserve(r->tensors_.size());
  for (size_t i = 0; i < r->tensors_.size(); ++i) r->by_name_.emplace(r->tensors_[i].name, i);
  return r;
}

Result<size_t> ModelReader::IndexOf(std::string_view name) const {
  const auto it = by_name_.find(name);
  if (it == by_name_.end()) {
    return MakeError(ErrorCode::kUsage, "no tensor named '" + std::string(name) + "'",
                     "list them with: hmodctl inspect --tensors --kek URI FILE");
  }
  return it->second;
}

Result<TensorDesc> ModelReader::Find(std::string_view name) const {
  HMOD_ASSIGN_OR_RETURN(size_t pos, IndexOf(name));
  return tensors_[pos];
}

Status ModelReader::ReadTensor(std::string_view name, MutableByteSpan out) const {
  auto pos = IndexOf(name);
  if (!pos.ok()) {
    Wipe(out);
    return pos.error();
  }
  const TensorDesc& t = tensors_[*pos];
  if (out.size() != t.bytes) {
    Wipe(out);
    return MakeError(ErrorCode::kUsage, "buffer of " + std::to_string(out.size()) + " bytes for tensor '" + t.name +
                                            "' of " + std::to_string(t.bytes) + " bytes",
                     "pass a buffer of exactly the tensor's size, or use ReadTensorRange");
  }
  return ReadChecked(*pos, 0, out);
}

Status ModelReader::ReadTensorRange(std::string_view name, uint64_t offset, MutableByteSpan out) const {
  auto pos = IndexOf(name);
  if (!pos.ok()) {
    Wipe(out);
    return pos.error();
  }
  const TensorDesc& t = tensors_[*pos];
  if (offset > t.bytes || out.size() > t.bytes - offset) {
    Wipe(out);
    return MakeError(ErrorCode::kUsage, "range [" + std::to_string(offset) + ", +" + std::to_string(out.size()) +
                                            ") is outside tensor '" + t.name + "' of " + std::to_string(t.bytes) +
                                            " bytes");
  }
  return ReadChecked(*pos, offset, out);
}

Status ModelReader::ReadChecked(size_t position, uint64_t offset, MutableByteSpan out) const {
  const size_t entry = position + 1;
  // Encrypted entries: every chunk is authenticated on every read. Plain entries are
  // hashed here on every read, not once at first use as TensorFile does: the file stays
  // open for the reader's lifetime and may change on disk after a first check.
  Status st = tensors_[position].encrypted ? file_->ReadEntry(entry, offset, out) : ReadPlain(entry, offset, out);
  // An I/O error part-way leaves earlier (authenticated) chunks in `out`; the contract is
  // all or nothing.
  if (!st.ok()) Wipe(out);
  return st;
}

Status ModelReader::ReadPlain(size_t entry, uint64_t offset, MutableByteSpan out) const {
  const IndexEntry& e = file_->index().entries[entry];
  const bool whole = offset == 0 && out.size() == e.size;
  Bytes scratch;
  MutableByteSpan all = out;
  if (!whole) {
    scratch.resize(e.size);
    all = scratch;
  }
  if (!all.empty()) HMOD_TRY(input_->ReadAt(e.offset, all));
  if (!ConstantTimeEquals(Sha256(all), e.sha256)) {
    Wipe(all);
    return MakeError(ErrorCode::kAuthFailed,
                     "plaintext tensor '" + e.name + "' digest mismatch: the file was tampered with or corrupted");
  }
  if (!whole) std::copy_n(scratch.begin() + static_cast<ptrdiff_t>(offset), out.size(), out.begin());
  return OkStatus();
}

}  // namespace hmod
