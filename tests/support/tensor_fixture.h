// Helpers for the per-tensor layout tests (FORMAT.md §6): generated models, library-level
// encrypt / open / restore calls, a byte-counting positional source, and streaming file
// comparison for models too big to hold twice in memory.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hmod/tensor_container.h"
#include "support/library_fixture.h"
#include "support/model_builder.h"
#include "support/test_util.h"

namespace hmod::testing {

// Every safetensors dtype of huggingface/safetensors tensor.rs (Dtype::bitsize()), which the
// parser accepts (SafetensorsDtypeBits). The round-trip tests assert the parser knows each.
inline const std::vector<std::string>& AllSafetensorsDtypes() {
  static const std::vector<std::string> kDtypes = {
      "BOOL", "F4",  "F6_E2M3", "F6_E3M2", "U8",  "I8",  "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ",
      "I16",  "U16", "F16",     "BF16",    "I32", "U32", "F32",     "C64",     "F64",     "I64",         "U64"};
  return kDtypes;
}

inline std::string AsString(ByteSpan b) { return std::string(b.begin(), b.end()); }

// Bytes [offset, offset + length) of `b`.
inline Bytes SliceOf(ByteSpan b, uint64_t offset, uint64_t length) {
  return Bytes(b.begin() + static_cast<ptrdiff_t>(offset), b.begin() + static_cast<ptrdiff_t>(offset + length));
}

// A sequential view of a positional source, for ReadHeader.
class SequentialView final : public ByteSource {
 public:
  explicit SequentialView(const PositionalSource& src) : src_(src) {}
  Result<size_t> Read(MutableByteSpan buf) override {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), src_.size() - pos_));
    if (n == 0) return size_t{0};
    HMOD_TRY(src_.ReadAt(pos_, buf.first(n)));
    pos_ += n;
    return n;
  }

 private:
  const PositionalSource& src_;
  uint64_t pos_ = 0;
};

// Forwards to another positional source and counts the bytes (and calls) read through it.
class CountingSource final : public PositionalSource {
 public:
  explicit CountingSource(const PositionalSource& inner) : inner_(inner) {}
  uint64_t size() const override { return inner_.size(); }
  Status ReadAt(uint64_t offset, MutableByteSpan buf) const override {
    bytes_ += buf.size();
    ++calls_;
    return inner_.ReadAt(offset, buf);
  }
  uint64_t bytes() const { return bytes_; }
  uint64_t calls() const { return calls_; }

 private:
  const PositionalSource& inner_;
  mutable std::atomic<uint64_t> bytes_{0}, calls_{0};
};

// Parses a generated model (by content, as the CLI does).
inline ModelLayout LayoutOfModel(ByteSpan model) {
  MemorySource src(model);
  auto format = DetectModelFormat(src);
  EXPECT_TRUE(format.ok() && format->has_value()) << "not recognised as a model";
  if (!format.ok() || !format->has_value()) return {};
  auto layout = ParseModel(src, **format);
  EXPECT_TRUE(layout.ok()) << layout.error().message;
  return layout.ok() ? *layout : ModelLayout{};
}

inline TensorEncryptOptions TensorOptions(Suite suite, bool public_index = false,
                                          std::vector<std::string> plaintext_globs = {},
                                          EncryptionContext context = {}) {
  TensorEncryptOptions o;
  o.suite = suite;
  o.public_index = public_index;
  o.plaintext_globs = std::move(plaintext_globs);
  o.context = std::move(context);
  return o;
}

// EncryptModelToContainer over memory.
inline Bytes EncryptModel(ByteSpan model, ProviderList& providers, const TensorEncryptOptions& options) {
  const ModelLayout layout = LayoutOfModel(model);
  MemorySource src(model);
  MemorySink out;
  auto r = EncryptModelToContainer(src, layout, out, providers, options);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return out.bytes;
}

// ReadHeader + TensorFile::Open over any positional source (which must outlive the result).
inline Result<std::unique_ptr<TensorFile>> OpenTensors(const PositionalSource& src, ProviderList& providers,
                                                      const std::vector<ContextRequirement>& required = {}) {
  SequentialView seq(src);
  HMOD_ASSIGN_OR_RETURN(ParsedHeader parsed, ReadHeader(seq));
  return TensorFile::Open(src, std::move(parsed), providers, required);
}

// The whole source of an entry, through ReadEntry.
inline Result<Bytes> ReadWholeEntry(const TensorFile& f, size_t entry) {
  Bytes out(f.index().entries[entry].size);
  HMOD_TRY(f.ReadEntry(entry, 0, out));
  return out;
}

// A small safetensors model covering every dtype, a multi-chunk tensor, 0-d and empty
// tensors, and __metadata__.
inline Bytes EveryDtypeSafetensors() {
  std::vector<SafetensorsTensor> tensors;
  uint64_t seed = 100;
  for (const auto& dtype : AllSafetensorsDtypes()) {
    const uint32_t bits = SafetensorsDtypeBits(dtype).value_or(8);
    // 8 * k elements: always a whole number of bytes, k * bits of them.
    const uint64_t k = 1 + seed % 7;
    tensors.push_back({"model.t_" + dtype, dtype, {2, 4 * k}, TestData(k * bits, seed)});
    ++seed;
  }
  tensors.push_back({"model.scalar", "F64", {}, TestData(8, 1)});
  tensors.push_back({"model.empty", "BF16", {3, 0, 7}, {}});
  tensors.push_back({"model.big.weight", "F32", {10000}, TestData(40000, 2)});  // 3 chunks
  tensors.push_back({"lm_head.bias", "F16", {4096}, TestData(8192, 3)});
  tensors.push_back({"z.empty_last", "I64", {0}, {}});
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "{\"nested\": \"json text\"}"}};
  return BuildSafetensors(tensors, &metadata);
}

// A GGUF model with several ggml types (F32, F16, Q4_0, Q8_0, Q4_K, BF16, I8), a 0-d and an
// empty tensor, KVs and the given alignment (0: default, no general.alignment KV).
inline Bytes MixedGguf(uint32_t alignment) {
  GgufSpec spec;
  spec.kvs = {{"general.architecture", GgufValue::String("llama")},
              {"general.name", GgufValue::String("tensor test")},
              {"llama.block_count", GgufValue::U32(2)},
              {"tokenizer.ggml.tokens",
               GgufValue::Array(GgufValueType::kString, {GgufValue::String("<s>"), GgufValue::String("</s>")})}};
  if (alignment != 0) spec.kvs.push_back({"general.alignment", GgufValue::U32(alignment)});
  spec.tensors = {
      {"token_embd.weight", {64, 3}, 2, TestData(3 * 2 * 18, 20), {}},  // Q4_0
      {"output_norm.weight", {5}, 0, TestData(20, 21), {}},             // F32
      {"blk.0.ffn.weight", {256, 2}, 12, TestData(2 * 144, 22), {}},    // Q4_K
      {"blk.0.attn_q.weight", {32, 700}, 8, TestData(700 * 34, 23), {}},  // Q8_0, > 1 chunk
      {"blk.0.attn_norm.weight", {7}, 1, TestData(14, 24), {}},         // F16
      {"blk.1.scale", {}, 0, TestData(4, 25), {}},                      // 0-d
      {"blk.1.empty", {0, 7}, 2, {}, {}},                               // empty
      {"blk.1.bf16", {9}, 30, TestData(18, 26), {}},                    // BF16
      {"blk.1.i8", {33}, 24, TestData(33, 27), {}},                     // I8
  };
  return BuildGguf(spec);
}

// A tensor of a model written straight to disk (WriteSafetensorsFile): `size` bytes of
// pseudo-random data derived from `seed`, generated 1 MiB at a time.
struct DiskTensor {
  std::string name, dtype;
  std::vector<uint64_t> shape;
  uint64_t size = 0;
  uint64_t seed = 0;
};

// Writes a valid safetensors file to `path` without holding its data in memory: the header
// (padded to 8 bytes), then every tensor back to back in the given order. Returns the offset
// of the data section.
inline uint64_t WriteSafetensorsFile(const std::string& path, const std::vector<DiskTensor>& tensors,
                                     const std::map<std::string, std::string>* metadata = nullptr) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (metadata != nullptr) header["__metadata__"] = *metadata;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.size}}};
    offset += t.size;
  }
  const Bytes prefix = FrameSafetensors(header.dump(), {});
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(prefix.data()), static_cast<std::streamsize>(prefix.size()));
  for (const auto& t : tensors) {
    for (uint64_t done = 0, block = 0; done < t.size; ++block) {
      const uint64_t n = std::min<uint64_t>(t.size - done, 1 << 20);
      const Bytes data = TestData(n, t.seed * 1'000'003 + block);
      f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(n));
      done += n;
    }
  }
  f.close();
  EXPECT_TRUE(f.good()) << "writing " << path;
  return prefix.size();
}

// Whether two files have the same bytes, compared in blocks (for files of 64 MiB and more).
inline bool SameFileContents(const std::string& a, const std::string& b) {
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  if (!fa || !fb) return false;
  std::vector<char> ba(1 << 20), bb(1 << 20);
  for (;;) {
    fa.read(ba.data(), static_cast<std::streamsize>(ba.size()));
    fb.read(bb.data(), static_cast<std::streamsize>(bb.size()));
    const std::streamsize n = fa.gcount();
    if (n != fb.gcount() || !std::equal(ba.begin(), ba.begin() + n, bb.begin())) return false;
    if (n == 0) return true;  // both at their end
  }
}

// Whether `path` holds exactly bytes [offset, offset + length) of file `source`.
inline bool FileEqualsRange(const std::string& path, const std::string& source, uint64_t offset, uint64_t length) {
  std::ifstream fp(path, std::ios::binary | std::ios::ate), fs(source, std::ios::binary);
  if (!fp || !fs || static_cast<uint64_t>(fp.tellg()) != length) return false;
  fp.seekg(0);
  fs.seekg(static_cast<std::streamoff>(offset));
  std::vector<char> ba(1 << 20), bb(1 << 20);
  for (uint64_t done = 0; done < length;) {
    const auto n = static_cast<std::streamsize>(std::min<uint64_t>(ba.size(), length - done));
    if (!fp.read(ba.data(), n) || !fs.read(bb.data(), n)) return false;
    if (!std::equal(ba.begin(), ba.begin() + n, bb.begin())) return false;
    done += static_cast<uint64_t>(n);
  }
  return true;
}

// No hmodctl temporary file left in `dir`.
inline void ExpectNoTempFiles(const TempDir& dir, const std::string& what) {
  for (const auto& name : dir.List()) {
    EXPECT_EQ(name.find(".hmod-tmp-"), std::string::npos) << what << ": left " << name;
  }
}

}  // namespace hmod::testing
