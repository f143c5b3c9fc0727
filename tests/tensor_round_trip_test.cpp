// Per-tensor layout round trips (FORMAT.md §6): generated safetensors and GGUF models go
// through EncryptModelToContainer / DecryptContainer (and hmodctl on files) and come back
// byte for byte, in both suites, with an encrypted or public index and with plaintext
// tensors; every entry sits at a 4096-aligned offset; TensorFile::ReadEntry returns the
// source bytes of any range, from several threads at once, and reads little more than the
// bytes it needs.
#include <fnmatch.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <set>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/tensor_fixture.h"

namespace hmod::testing {
namespace {

using nlohmann::json;

bool MatchesAny(const std::string& name, const std::vector<std::string>& globs) {
  return std::any_of(globs.begin(), globs.end(),
                     [&](const std::string& g) { return ::fnmatch(g.c_str(), name.c_str(), 0) == 0; });
}

bool Contains(ByteSpan haystack, std::string_view needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) != haystack.end();
}

// Globs that match some tensors of every model below.
const std::vector<std::string> kPlainGlobs = {"*bias", "blk.1.*", "layers.00[0-4]?.weight", "model.t_F*",
                                              "token_embd.weight"};

// ---- the models ----------------------------------------------------------------------------

struct ModelCase {
  const char* name;
  std::function<Bytes()> build;
};

Bytes ThousandTinyTensors() {
  std::vector<SafetensorsTensor> tensors;
  for (int i = 0; i < 1000; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "layers.%04d.weight", i);
    tensors.push_back({name, "F16", {2}, TestData(4, static_cast<uint64_t>(i))});
  }
  return BuildSafetensors(tensors);
}

Bytes OnlyEmptyTensors() {
  // Every tensor empty: the skeleton is the whole file; empty tensors at its end.
  const std::map<std::string, std::string> metadata = {{"k", "v"}};
  return BuildSafetensors({{"a.bias", "F32", {0}, {}}, {"b", "U8", {0, 4}, {}}}, &metadata);
}

// Tensors sized around the pipeline's 512 KiB batches (32 chunks): a message of whole
// batches ends with an empty final chunk, which rides in its last batch (33 chunks).
Bytes BatchBoundaryTensors() {
  constexpr uint64_t kBatch = 32 * 16384;
  std::vector<SafetensorsTensor> tensors;
  const uint64_t sizes[] = {kBatch - 1, kBatch, kBatch + 1, 2 * kBatch, 16384, 33 * 16384, 0};
  for (size_t i = 0; i < std::size(sizes); ++i) {
    tensors.push_back({"t" + std::to_string(i) + ".weight", "U8", {sizes[i]}, TestData(sizes[i], 60 + i)});
  }
  return BuildSafetensors(tensors);
}

Bytes GgufVersion2WithGaps() {
  GgufSpec spec;
  spec.version = 2;
  spec.kvs = {{"general.architecture", GgufValue::String("llama")}};
  spec.tensors = {
      {"late", {8}, 0, TestData(32, 40), uint64_t{256}},
      {"early.bias", {4}, 0, TestData(16, 41), uint64_t{0}},
      {"blk.1.middle", {2}, 30, TestData(4, 42), uint64_t{96}},
  };
  return BuildGguf(spec);
}

Bytes GgufNoTensors() {
  GgufSpec spec;
  spec.kvs = {{"general.architecture", GgufValue::String("llama")}, {"general.alignment", GgufValue::U32(64)}};
  return BuildGguf(spec);
}

const std::vector<ModelCase>& Models() {
  static const std::vector<ModelCase> kModels = {
      {"SafetensorsThousandTiny", ThousandTinyTensors},  // first: instantiated separately, below
      {"SafetensorsEveryDtype", EveryDtypeSafetensors},
      {"SafetensorsNoTensors", [] { return FrameSafetensors("{}", {}); }},
      {"SafetensorsMetadataOnly", [] {
         const std::map<std::string, std::string> m = {{"format", "pt"}};
         return BuildSafetensors({}, &m);
       }},
      {"SafetensorsOnlyEmptyTensors", OnlyEmptyTensors},
      {"SafetensorsBatchBoundaries", BatchBoundaryTensors},
      {"GgufDefaultAlignment", [] { return MixedGguf(0); }},
      {"GgufAlignment64", [] { return MixedGguf(64); }},
      {"GgufAlignment4096", [] { return MixedGguf(4096); }},
      {"GgufVersion2WithGaps", GgufVersion2WithGaps},
      {"GgufNoTensors", GgufNoTensors},
  };
  return kModels;
}

// ---- library round trips ------------------------------------------------------------------

using RoundTripParam = std::tuple<size_t /*model*/, Suite, bool /*public index*/, bool /*plain globs*/>;

class TensorRoundTrip : public ::testing::TestWithParam<RoundTripParam> {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(InitCrypto().ok()); }
  void SetUp() override { providers_ = FileProviders(NewKeyFile(dir_)); }
  TempDir dir_;
  ProviderList providers_;
};

TEST_P(TensorRoundTrip, DecryptIsByteIdenticalAndEntriesAreAligned) {
  const auto [model_index, suite, public_index, plain] = GetParam();
  const Bytes model = Models()[model_index].build();
  const ModelLayout layout = LayoutOfModel(model);
  const std::vector<std::string> globs = plain ? kPlainGlobs : std::vector<std::string>{};
  const Bytes file = EncryptModel(model, providers_, TensorOptions(suite, public_index, globs, {{"model", "m"}}));
  ASSERT_FALSE(file.empty());

  // Whole-file decrypt, through the same entry point as stream-layout files.
  auto out = DecryptBytes(file, providers_, {{"model", "m"}});
  ASSERT_TRUE(out.result.ok()) << out.result.error().message;
  EXPECT_EQ(out.result->plaintext_bytes, model.size());
  EXPECT_EQ(out.result->header.layout, Layout::kTensors);
  EXPECT_EQ(out.result->header.suite, suite);
  ASSERT_EQ(out.released.size(), model.size());
  EXPECT_TRUE(out.released == model) << "restored model differs from the source";

  // The layout extension and the index.
  MemorySource src(file);
  auto opened = OpenTensors(src, providers_);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  const TensorFile& f = **opened;
  const TensorLayoutInfo& info = f.layout();
  EXPECT_EQ(info.index_mode, public_index ? IndexMode::kPublic : IndexMode::kEncrypted);
  EXPECT_EQ(info.source_format,
            layout.format == ModelFormat::kGguf ? SourceFormat::kGguf : SourceFormat::kSafetensors);
  EXPECT_EQ(info.source_size, model.size());
  EXPECT_FALSE(info.is_signed);
  EXPECT_EQ(info.index_offset % kEntryAlign, 0u);
  EXPECT_EQ(info.index_offset + info.index_length, file.size());
  EXPECT_EQ(f.header().region_bytes % kEntryAlign, 0u);

  const auto& entries = f.index().entries;
  ASSERT_EQ(entries.size(), layout.tensors.size() + 1);
  EXPECT_EQ(entries[0].kind, EntryKind::kSkeleton);
  EXPECT_EQ(entries[0].encrypted, !public_index) << "the skeleton is plain exactly in public mode";
  uint64_t end = f.header().region_bytes;
  uint64_t covered = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const IndexEntry& e = entries[i];
    EXPECT_EQ(e.offset % kEntryAlign, 0u) << "entry " << i << " at " << e.offset;
    EXPECT_GE(e.offset, end) << "entry " << i << " overlaps its predecessor";
    EXPECT_LT(e.offset - end, kEntryAlign) << "entry " << i << ": more padding than alignment needs";
    EXPECT_EQ(e.stored_length, e.encrypted ? ChunkedCiphertextSize(e.size) : e.size);
    // Padding before the entry is zero.
    for (uint64_t p = end; p < e.offset; ++p) ASSERT_EQ(file[p], 0) << "padding byte " << p;
    end = e.offset + e.stored_length;
    covered += e.size;
    if (i == 0) continue;
    const TensorInfo& t = layout.tensors[i - 1];
    EXPECT_EQ(e.kind, EntryKind::kTensor);
    EXPECT_EQ(e.name, t.name);
    EXPECT_EQ(e.dtype, t.dtype);
    EXPECT_EQ(e.shape, t.shape);
    EXPECT_EQ(e.size, t.size);
    ASSERT_EQ(e.segments.size(), 1u);
    EXPECT_EQ(e.segments[0].source_offset, t.offset);
    EXPECT_EQ(e.encrypted, !MatchesAny(t.name, globs)) << t.name;
    auto found = f.Find(t.name);
    ASSERT_TRUE(found.ok()) << t.name;
    EXPECT_EQ(*found, i);
    // Random access returns the source bytes of the tensor.
    auto bytes = ReadWholeEntry(f, i);
    ASSERT_TRUE(bytes.ok()) << t.name << ": " << bytes.error().message;
    ASSERT_TRUE(*bytes == SliceOf(model, t.offset, t.size)) << t.name;
    // A plain tensor is stored as is; an encrypted one is not.
    const Bytes stored = SliceOf(file, e.offset, std::min<uint64_t>(e.stored_length, t.size));
    if (!e.encrypted) {
      EXPECT_TRUE(stored == *bytes) << t.name;
    } else if (t.size >= 16) {
      EXPECT_FALSE(Contains(file, AsString(SliceOf(model, t.offset, 16)))) << t.name << " leaked";
    }
  }
  EXPECT_EQ(covered, model.size()) << "entries must cover the source exactly";
  EXPECT_LE(end, info.index_offset);
  for (uint64_t p = end; p < info.index_offset; ++p) ASSERT_EQ(file[p], 0) << "padding byte " << p;

  // The skeleton holds exactly the source bytes outside tensors, in order.
  Bytes skeleton;
  for (const auto& s : entries[0].segments) {
    const Bytes part = SliceOf(model, s.source_offset, s.length);
    skeleton.insert(skeleton.end(), part.begin(), part.end());
  }
  auto read_skeleton = ReadWholeEntry(f, 0);
  ASSERT_TRUE(read_skeleton.ok()) << read_skeleton.error().message;
  EXPECT_TRUE(*read_skeleton == skeleton);

  // Names are confidential unless the index is public (the skeleton carries them too).
  // Names of 4+ bytes only, where a chance match in the ciphertext is negligible.
  for (size_t i = 0; i < layout.tensors.size() && i < 40; ++i) {
    const std::string& name = layout.tensors[i].name;
    if (name.size() >= 4) {
      EXPECT_EQ(Contains(file, name), public_index) << name;
    }
  }
}

std::string RoundTripName(const ::testing::TestParamInfo<RoundTripParam>& info) {
  return std::string(Models()[std::get<0>(info.param)].name) +
         (std::get<1>(info.param) == Suite::kAes256Gcm ? "_Aes" : "_ChaCha") +
         (std::get<2>(info.param) ? "_PublicIndex" : "_EncryptedIndex") + (std::get<3>(info.param) ? "_PlainGlobs" : "");
}

// Every small model in every combination of suite, index mode and plaintext globs.
INSTANTIATE_TEST_SUITE_P(Tensor, TensorRoundTrip,
                         ::testing::Combine(::testing::Range<size_t>(1, Models().size()),
                                            ::testing::Values(Suite::kAes256Gcm, Suite::kChaCha20Poly1305),
                                            ::testing::Bool(), ::testing::Bool()),
                         RoundTripName);
// 1,000 tensors (4 MB of padded entries each time): both suites and both index modes, in
// two runs, to keep the suite fast under sanitizers.
INSTANTIATE_TEST_SUITE_P(TensorThousand, TensorRoundTrip,
                         ::testing::Values(RoundTripParam{0, Suite::kAes256Gcm, false, false},
                                           RoundTripParam{0, Suite::kChaCha20Poly1305, true, true}),
                         RoundTripName);

TEST(TensorModels, ParserKnowsEveryDtypeUsed) {
  EXPECT_EQ(AllSafetensorsDtypes().size(), 22u);
  for (const auto& dtype : AllSafetensorsDtypes()) {
    EXPECT_TRUE(SafetensorsDtypeBits(dtype).has_value()) << dtype;
  }
  const ModelLayout layout = LayoutOfModel(EveryDtypeSafetensors());
  std::set<std::string> dtypes;
  for (const auto& t : layout.tensors) dtypes.insert(t.dtype);
  for (const auto& dtype : AllSafetensorsDtypes()) EXPECT_EQ(dtypes.count(dtype), 1u) << dtype;
  // 0-d and empty tensors are present in both formats.
  for (const Bytes& model : {EveryDtypeSafetensors(), MixedGguf(64)}) {
    const ModelLayout l = LayoutOfModel(model);
    EXPECT_TRUE(std::any_of(l.tensors.begin(), l.tensors.end(), [](const TensorInfo& t) { return t.shape.empty(); }));
    EXPECT_TRUE(std::any_of(l.tensors.begin(), l.tensors.end(), [](const TensorInfo& t) { return t.size == 0; }));
  }
  EXPECT_EQ(LayoutOfModel(MixedGguf(4096)).alignment, 4096u);
  EXPECT_EQ(LayoutOfModel(MixedGguf(64)).alignment, 64u);
}

TEST(TensorRoundTripContext, ContextIsBoundAndRequired) {
  ASSERT_TRUE(InitCrypto().ok());
  TempDir dir;
  ProviderList providers = FileProviders(NewKeyFile(dir));
  const Bytes model = MixedGguf(0);
  const Bytes file = EncryptModel(model, providers, TensorOptions(Suite::kAes256Gcm, false, {}, {{"model", "llama"}}));
  auto wrong = DecryptBytes(file, providers, {{"model", "mistral"}});
  ASSERT_FALSE(wrong.result.ok());
  EXPECT_EQ(wrong.result.error().code, ErrorCode::kContextMismatch);
  EXPECT_TRUE(wrong.released.empty());
  MemorySource src(file);
  auto opened = OpenTensors(src, providers, {{"model", "mistral"}});
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, ErrorCode::kContextMismatch);
  ProviderList other = FileProviders(NewKeyFile(dir, "other.key"));
  auto nokey = DecryptBytes(file, other);
  ASSERT_FALSE(nokey.result.ok());
  EXPECT_EQ(nokey.result.error().code, ErrorCode::kNoMatchingKey);
}

// ---- CLI round trips -----------------------------------------------------------------------

class TensorCliRoundTrip
    : public ::testing::TestWithParam<std::tuple<std::string /*suite*/, bool /*public*/, bool /*globs*/>> {
 protected:
  void SetUp() override { key_ = MakeKeyFile(dir_); }
  std::string Kek() const { return "file:" + key_; }
  TempDir dir_;
  std::string key_;
};

TEST_P(TensorCliRoundTrip, FileToFile) {
  const auto [suite, public_index, plain] = GetParam();
  const std::vector<std::pair<std::string, Bytes>> models = {
      {"every_dtype.safetensors", EveryDtypeSafetensors()},
      {"align4096.gguf", MixedGguf(4096)},
      {"align64.gguf", MixedGguf(64)},
  };
  for (const auto& [name, model] : models) {
    SCOPED_TRACE(name);
    const std::string in = dir_ / name, enc = dir_ / (name + ".hmod"), out = dir_ / (name + ".out");
    WriteFile(in, model);
    std::vector<std::string> args = {"encrypt", "--json", "--kek", Kek(), "--suite", suite, "-o", enc, in};
    if (public_index) args.push_back("--public-index");
    if (plain) {
      for (const auto& g : kPlainGlobs) args.insert(args.end(), {"--plaintext-tensors", g});
    }
    CliResult e = RunCli(args);
    ASSERT_EQ(e.exit_code, 0) << e.err;
    const json ej = json::parse(e.out);
    const ModelLayout layout = LayoutOfModel(model);
    EXPECT_EQ(ej["layout"], "tensors");
    EXPECT_EQ(ej["model_format"], ModelFormatName(layout.format));
    EXPECT_EQ(ej["tensors"], layout.tensors.size());
    EXPECT_EQ(ej["suite"], suite);
    EXPECT_EQ(ej["plaintext_bytes"], model.size());

    CliResult d = RunCli({"decrypt", "-q", "--kek", Kek(), "-o", out, enc});
    ASSERT_EQ(d.exit_code, 0) << d.err;
    EXPECT_TRUE(ReadFile(out) == model) << "restored file differs";
    CliResult v = RunCli({"verify", "-q", "--kek", Kek(), enc});
    EXPECT_EQ(v.exit_code, 0) << v.err;

    // Every entry is 4096-aligned, in the index the CLI shows and in the library's view.
    CliResult i = RunCli({"inspect", "--json", "--tensors", "--kek", Kek(), enc});
    ASSERT_EQ(i.exit_code, 0) << i.err;
    const json ij = json::parse(i.out);
    ASSERT_EQ(ij["tensors"].size(), layout.tensors.size());
    for (const auto& t : ij["tensors"]) EXPECT_EQ(t["offset"].get<uint64_t>() % 4096, 0u) << t["name"];
    auto file = InputFile::Open(enc);
    ASSERT_TRUE(file.ok());
    ProviderList providers = FileProviders(key_);
    auto opened = OpenTensors(**file, providers);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    for (const auto& entry : (*opened)->index().entries) EXPECT_EQ(entry.offset % kEntryAlign, 0u);
    EXPECT_EQ((*opened)->layout().index_offset % kEntryAlign, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Tensor, TensorCliRoundTrip,
                         ::testing::Combine(::testing::Values("aes-256-gcm", "chacha20-poly1305"), ::testing::Bool(),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) == "aes-256-gcm" ? "Aes" : "ChaCha") +
                                  (std::get<1>(info.param) ? "_PublicIndex" : "_EncryptedIndex") +
                                  (std::get<2>(info.param) ? "_PlainGlobs" : "");
                         });

// A tensor over 64 MiB, on disk only: the model is never held in memory whole.
TEST(TensorCliBigModel, TensorOver64MiBRoundTripsThroughFiles) {
  TempDir dir;
  const std::string key = MakeKeyFile(dir), kek = "file:" + key;
  constexpr uint64_t kElements = (uint64_t{64} << 20) / 4 + 3;  // just over 64 MiB of F32
  const std::vector<DiskTensor> tensors = {
      {"small", "F32", {3}, 12, 1},
      {"big", "F32", {kElements}, kElements * 4, 2},
      {"tail.bias", "U8", {5}, 5, 3},
  };
  const std::map<std::string, std::string> metadata = {{"format", "pt"}};
  const std::string src = dir / "big.safetensors", enc = dir / "big.hmod", out = dir / "big.out";
  const uint64_t data_start = WriteSafetensorsFile(src, tensors, &metadata);
  const uint64_t total = data_start + 12 + kElements * 4 + 5;

  CliResult e = RunCli({"encrypt", "--json", "--kek", kek, "--plaintext-tensors", "*.bias", "-o", enc, src});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_EQ(json::parse(e.out)["tensors"], 3);
  EXPECT_EQ(json::parse(e.out)["plaintext_bytes"], total);

  CliResult i = RunCli({"inspect", "--json", "--tensors", "--kek", kek, enc});
  ASSERT_EQ(i.exit_code, 0) << i.err;
  const json ij = json::parse(i.out);
  ASSERT_EQ(ij["tensors"].size(), 3u);
  EXPECT_EQ(ij["tensors"][1]["name"], "big");
  EXPECT_EQ(ij["tensors"][1]["bytes"], kElements * 4);
  for (const auto& t : ij["tensors"]) EXPECT_EQ(t["offset"].get<uint64_t>() % 4096, 0u);

  CliResult d = RunCli({"decrypt", "-q", "--kek", kek, "-o", out, enc});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_TRUE(SameFileContents(src, out)) << "restored 64 MiB model differs";
  std::remove(out.c_str());

  CliResult big = RunCli({"decrypt", "-q", "--kek", kek, "--tensor", "big", "-o", dir / "big.bin", enc});
  ASSERT_EQ(big.exit_code, 0) << big.err;
  EXPECT_TRUE(FileEqualsRange(dir / "big.bin", src, data_start + 12, kElements * 4));
  std::remove((dir / "big.bin").c_str());

  CliResult tail = RunCli({"decrypt", "--kek", kek, "--tensor", "tail.bias", "-o", "-", enc});
  ASSERT_EQ(tail.exit_code, 0) << tail.err;
  EXPECT_EQ(tail.out, AsString(TestData(5, 3 * 1'000'003)));

  // Random access at the far end of the big tensor, through the library.
  auto file = InputFile::Open(enc);
  ASSERT_TRUE(file.ok());
  ProviderList providers = FileProviders(key);
  auto opened = OpenTensors(**file, providers);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto entry = (*opened)->Find("big");
  ASSERT_TRUE(entry.ok());
  auto source = InputFile::Open(src);
  ASSERT_TRUE(source.ok());
  for (uint64_t at : {uint64_t{0}, uint64_t{16383}, kElements * 4 - 70000, kElements * 4 - 1}) {
    const uint64_t n = std::min<uint64_t>(70000, kElements * 4 - at);
    Bytes got(n), want(n);
    ASSERT_TRUE((*opened)->ReadEntry(*entry, at, got).ok()) << at;
    ASSERT_TRUE((*source)->ReadAt(data_start + 12 + at, want).ok());
    EXPECT_TRUE(got == want) << "range at " << at;
  }
}

// ---- random access ---------------------------------------------------------------------------

// Tensors of awkward sizes around the 16 KiB chunk, each twice: "enc.N" and "plain.N".
const std::vector<uint64_t> kSizes = {0, 1, 100, 16383, 16384, 16385, 40000, 100003};

Bytes RandomAccessModel() {
  std::vector<SafetensorsTensor> tensors;
  for (const char* prefix : {"enc.", "plain."}) {
    for (uint64_t n : kSizes) {
      tensors.push_back({prefix + std::to_string(n), "U8", {n}, TestData(n, n * 7 + prefix[0])});
    }
  }
  return BuildSafetensors(tensors);
}

class TensorRandomAccess : public ::testing::TestWithParam<std::tuple<Suite, bool /*public*/>> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    providers_ = FileProviders(NewKeyFile(dir_));
    model_ = RandomAccessModel();
    layout_ = LayoutOfModel(model_);
    file_ = EncryptModel(model_, providers_,
                         TensorOptions(std::get<0>(GetParam()), std::get<1>(GetParam()), {"plain.*"}));
    src_ = std::make_unique<MemorySource>(file_);
    auto opened = OpenTensors(*src_, providers_);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    tensors_ = std::move(*opened);
  }
  Bytes Source(size_t entry, uint64_t offset, uint64_t length) const {
    return SliceOf(model_, layout_.tensors[entry - 1].offset + offset, length);
  }

  TempDir dir_;
  ProviderList providers_;
  Bytes model_, file_;
  ModelLayout layout_;
  std::unique_ptr<MemorySource> src_;
  std::unique_ptr<TensorFile> tensors_;
};

TEST_P(TensorRandomAccess, WholeTensorsAndOddRanges) {
  const auto& entries = tensors_->index().entries;
  ASSERT_EQ(entries.size(), 2 * kSizes.size() + 1);
  uint64_t rng = 12345;
  auto next = [&rng](uint64_t bound) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return bound == 0 ? 0 : (rng >> 33) % bound;
  };
  for (size_t i = 1; i < entries.size(); ++i) {
    const IndexEntry& e = entries[i];
    SCOPED_TRACE(e.name);
    EXPECT_EQ(e.encrypted, e.name.rfind("enc.", 0) == 0);
    const uint64_t size = e.size;
    std::vector<std::pair<uint64_t, uint64_t>> ranges = {{0, size}, {0, 0}, {size, 0}};
    if (size >= 1) ranges.insert(ranges.end(), {{0, 1}, {size - 1, 1}, {size / 2, size - size / 2}});
    if (size >= 3) ranges.push_back({1, size - 2});
    if (size > 16385) ranges.insert(ranges.end(), {{16383, 2}, {16380, 16390}, {16384, 1}, {16383, 1}, {16385, size - 16385}});
    for (int k = 0; k < 25; ++k) {
      const uint64_t off = next(size + 1);
      ranges.push_back({off, next(size - off + 1)});
    }
    for (const auto& [off, len] : ranges) {
      Bytes got(len, 0xEE);
      Status st = tensors_->ReadEntry(i, off, got);
      ASSERT_TRUE(st.ok()) << "[" << off << ", +" << len << "): " << st.error().message;
      ASSERT_TRUE(got == Source(i, off, len)) << "[" << off << ", +" << len << ")";
    }
    // Reads past the end are refused, not clamped.
    Bytes one(1);
    Status past = tensors_->ReadEntry(i, size, one);
    ASSERT_FALSE(past.ok());
    EXPECT_EQ(past.error().code, ErrorCode::kUsage);
    Status beyond = tensors_->ReadEntry(i, size + 1, MutableByteSpan());
    ASSERT_FALSE(beyond.ok());
    EXPECT_EQ(beyond.error().code, ErrorCode::kUsage);
    if (size > 0) {
      Bytes all_plus_one(size + 1);
      EXPECT_FALSE(tensors_->ReadEntry(i, 0, all_plus_one).ok());
    }
  }
  Bytes one(1);
  Status no_entry = tensors_->ReadEntry(entries.size(), 0, one);
  ASSERT_FALSE(no_entry.ok());
  EXPECT_EQ(no_entry.error().code, ErrorCode::kUsage);
  auto missing = tensors_->Find("no.such.tensor");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kUsage);
  EXPECT_NE(missing.error().message.find("no.such.tensor"), std::string::npos);
}

TEST_P(TensorRandomAccess, ConcurrentReadsFromFourThreads) {
  const size_t n_entries = tensors_->index().entries.size();
  std::atomic<int> failures{0}, mismatches{0}, reads{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      uint64_t rng = 99 + static_cast<uint64_t>(t);
      auto next = [&rng](uint64_t bound) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        return bound == 0 ? 0 : (rng >> 33) % bound;
      };
      for (int k = 0; k < 150; ++k) {
        // Spread the first reads over all entries so the lazily opened readers race.
        const size_t entry = k < static_cast<int>(n_entries) - 1 ? 1 + (static_cast<size_t>(k) + t) % (n_entries - 1)
                                                                 : 1 + next(n_entries - 1);
        const uint64_t size = tensors_->index().entries[entry].size;
        const uint64_t off = next(size + 1);
        const uint64_t len = std::min<uint64_t>(next(size - off + 1), 50000);
        Bytes got(len);
        if (!tensors_->ReadEntry(entry, off, got).ok()) {
          ++failures;
        } else if (got != Source(entry, off, len)) {
          ++mismatches;
        }
        ++reads;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(reads.load(), 600);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Tensor, TensorRandomAccess,
                         ::testing::Combine(::testing::Values(Suite::kAes256Gcm, Suite::kChaCha20Poly1305),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) == Suite::kAes256Gcm ? "Aes" : "ChaCha") +
                                  (std::get<1>(info.param) ? "_PublicIndex" : "_EncryptedIndex");
                         });

// 64 tensors of 1 MiB and one small one: opening the file and reading the small tensor reads
// the header region, the index, that tensor's entry and at most one extra chunk (the final
// chunk, authenticated first), nowhere near the 64 MiB of the file.
class TensorReadCost : public ::testing::TestWithParam<bool /*public index, small tensor plain*/> {};

TEST_P(TensorReadCost, OpeningAndReadingOneTensorReadsOnlyItsBytes) {
  const bool public_index = GetParam();
  TempDir dir;
  const std::string key = MakeKeyFile(dir), kek = "file:" + key;
  std::vector<DiskTensor> tensors;
  for (int i = 0; i < 64; ++i) {
    char name[48];
    std::snprintf(name, sizeof name, "model.layers.%02d.mlp.weight", i);
    tensors.push_back({name, "F32", {256, 1024}, uint64_t{1} << 20, static_cast<uint64_t>(10 + i)});
    if (i == 31) tensors.push_back({"model.small.bias", "F32", {250}, 1000, 5});
  }
  const std::string src = dir / "m.safetensors", enc = dir / "m.hmod";
  const uint64_t data_start = WriteSafetensorsFile(src, tensors);
  std::vector<std::string> args = {"encrypt", "-q", "--kek", kek, "-o", enc, src};
  if (public_index) args.insert(args.end(), {"--public-index", "--plaintext-tensors", "*.bias"});
  CliResult encrypted = RunCli(args);
  ASSERT_EQ(encrypted.exit_code, 0) << encrypted.err;

  auto file = InputFile::Open(enc);
  ASSERT_TRUE(file.ok());
  const uint64_t file_size = (*file)->size();
  ASSERT_GT(file_size, uint64_t{64} << 20);
  CountingSource counting(**file);
  ProviderList providers = FileProviders(key);
  auto opened = OpenTensors(counting, providers);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  const TensorFile& f = **opened;
  const uint64_t region = f.header().region_bytes, index_length = f.layout().index_length;
  const uint64_t after_open = counting.bytes();
  // The header region and the index; an encrypted index may re-read its final chunk.
  EXPECT_GE(after_open, region + index_length);
  EXPECT_LE(after_open, region + index_length + kChunkCiphertextBytes);

  auto small = f.Find("model.small.bias");
  ASSERT_TRUE(small.ok());
  const IndexEntry& e = f.index().entries[*small];
  EXPECT_EQ(e.encrypted, !public_index);
  Bytes got(e.size);
  ASSERT_TRUE(f.ReadEntry(*small, 0, got).ok());
  const uint64_t small_offset = data_start + 32 * (uint64_t{1} << 20);
  auto source = InputFile::Open(src);
  ASSERT_TRUE(source.ok());
  Bytes want(1000);
  ASSERT_TRUE((*source)->ReadAt(small_offset, want).ok());
  EXPECT_TRUE(got == want);
  const uint64_t for_tensor = counting.bytes() - after_open;
  // Encrypted: its ciphertext plus the final chunk once more. Plain: hashed whole, then read.
  EXPECT_LE(for_tensor, e.stored_length + std::max<uint64_t>(e.stored_length, kChunkCiphertextBytes))
      << "read " << for_tensor << " bytes for a " << e.stored_length << "-byte entry";
  // An explicit bound: under 64 KiB of a file over 64 MiB.
  EXPECT_LT(counting.bytes(), uint64_t{64} << 10) << "total bytes read";
  EXPECT_LT(counting.bytes() * 1000, file_size);

  // A 100-byte range across a chunk boundary in the middle of a 1 MiB tensor: the two chunks
  // it touches, and the message header and final chunk when the tensor is first opened.
  auto mid = f.Find("model.layers.40.mlp.weight");
  ASSERT_TRUE(mid.ok());
  const uint64_t before_mid = counting.bytes();
  Bytes range(100);
  ASSERT_TRUE(f.ReadEntry(*mid, 10 * kChunkBytes - 50, range).ok());
  EXPECT_LE(counting.bytes() - before_mid, kStreamHeaderBytes + 3 * kChunkCiphertextBytes);
  // Read again: the tensor is already open, only the two chunks are read.
  const uint64_t before_again = counting.bytes();
  ASSERT_TRUE(f.ReadEntry(*mid, 10 * kChunkBytes - 50, range).ok());
  EXPECT_LE(counting.bytes() - before_again, 2 * kChunkCiphertextBytes);
}

INSTANTIATE_TEST_SUITE_P(Tensor, TensorReadCost, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "PublicIndexPlainTensor" : "EncryptedIndex"; });

}  // namespace
}  // namespace hmod::testing
