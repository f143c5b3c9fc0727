// Model-file parsers: layouts of generated safetensors and GGUF files, detection by content,
// and one malformed case per rejection rule (kFormat plus a message naming the problem).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "hmod/envelope.h"
#include "hmod/io.h"
#include "hmod/model_file.h"
#include "support/library_fixture.h"
#include "support/model_builder.h"
#include "support/test_util.h"

namespace hmod::testing {
namespace {

using ::testing::HasSubstr;

uint64_t PadTo(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

Result<ModelLayout> ParseSt(const Bytes& file) { return ParseSafetensors(MemorySource(file)); }
Result<ModelLayout> ParseGg(const Bytes& file) { return ParseGguf(MemorySource(file)); }

void ExpectFormatError(const Result<ModelLayout>& r, const std::string& needle) {
  ASSERT_FALSE(r.ok()) << "parsed, but expected an error containing: " << needle;
  EXPECT_EQ(r.error().code, ErrorCode::kFormat) << r.error().message;
  EXPECT_THAT(r.error().message, HasSubstr(needle));
}

// The bytes a layout says a tensor occupies.
Bytes Slice(const Bytes& file, const TensorInfo& t) {
  return Bytes(file.begin() + static_cast<ptrdiff_t>(t.offset),
               file.begin() + static_cast<ptrdiff_t>(t.offset + t.size));
}

std::optional<ModelFormat> Detect(const Bytes& file) {
  auto r = DetectModelFormat(MemorySource(file));
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? *r : std::nullopt;
}

// ---- safetensors: valid files ------------------------------------------------------------

TEST(ModelFileSafetensors, ParsesLayoutWithMetadata) {
  const std::vector<SafetensorsTensor> tensors = {
      {"model.embed", "F32", {2, 3}, TestData(24, 1)},
      {"model.norm", "BF16", {3}, TestData(6, 2)},
      {"lm_head.bias", "I8", {5}, TestData(5, 3)},
  };
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "{\"json\": \"as a string\"}"}};
  const Bytes file = BuildSafetensors(tensors, &metadata);

  auto r = ParseSt(file);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->format, ModelFormat::kSafetensors);
  EXPECT_EQ(r->file_size, file.size());
  EXPECT_EQ(r->alignment, 0u);
  const uint64_t n = SafetensorsHeader(tensors, &metadata).size();
  EXPECT_EQ(r->data_start, 8 + PadTo(n, 8));
  ASSERT_EQ(r->tensors.size(), 3u);
  uint64_t offset = r->data_start;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo& t = r->tensors[i];
    EXPECT_EQ(t.name, tensors[i].name);
    EXPECT_EQ(t.dtype, tensors[i].dtype);
    EXPECT_EQ(t.shape, tensors[i].shape);
    EXPECT_EQ(t.offset, offset);
    EXPECT_EQ(t.size, tensors[i].data.size());
    EXPECT_EQ(Slice(file, t), tensors[i].data);
    offset += t.size;
  }
  EXPECT_EQ(offset, file.size());
}

TEST(ModelFileSafetensors, SortsTensorsByOffsetNotHeaderOrder) {
  const std::string header =
      R"({"b":{"dtype":"F32","shape":[4],"data_offsets":[16,32]},)"
      R"("c":{"dtype":"U8","shape":[0],"data_offsets":[32,32]},)"
      R"("a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  const Bytes file = FrameSafetensors(header, TestData(32, 4));
  auto r = ParseSt(file);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->tensors.size(), 3u);
  EXPECT_EQ(r->tensors[0].name, "a");
  EXPECT_EQ(r->tensors[1].name, "b");
  EXPECT_EQ(r->tensors[2].name, "c");
  EXPECT_EQ(r->tensors[1].offset, r->data_start + 16);
  EXPECT_EQ(r->tensors[2].offset, r->data_start + 32);
  EXPECT_EQ(r->tensors[2].size, 0u);
}

TEST(ModelFileSafetensors, AcceptsEveryReferenceDtype) {
  // huggingface/safetensors tensor.rs Dtype::bitsize().
  const std::vector<std::pair<std::string, uint64_t>> dtypes = {
      {"BOOL", 8},    {"F4", 4},          {"F6_E2M3", 6},     {"F6_E3M2", 6}, {"U8", 8},
      {"I8", 8},      {"F8_E5M2", 8},     {"F8_E4M3", 8},     {"F8_E8M0", 8}, {"F8_E4M3FNUZ", 8},
      {"F8_E5M2FNUZ", 8}, {"I16", 16},    {"U16", 16},        {"F16", 16},    {"BF16", 16},
      {"I32", 32},    {"U32", 32},        {"F32", 32},        {"C64", 64},    {"F64", 64},
      {"I64", 64},    {"U64", 64},
  };
  std::vector<SafetensorsTensor> tensors;
  for (const auto& [dtype, bits] : dtypes) {
    // 8 elements: always a whole number of bytes, `bits` of them.
    tensors.push_back({"t_" + dtype, dtype, {2, 4}, TestData(bits, bits)});
  }
  auto r = ParseSt(BuildSafetensors(tensors));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->tensors.size(), dtypes.size());
  for (size_t i = 0; i < dtypes.size(); ++i) {
    EXPECT_EQ(r->tensors[i].dtype, dtypes[i].first);
    EXPECT_EQ(r->tensors[i].size, dtypes[i].second) << dtypes[i].first;
    EXPECT_EQ(SafetensorsDtypeBits(dtypes[i].first), dtypes[i].second);
  }
}

TEST(ModelFileSafetensors, ScalarAndEmptyTensors) {
  const std::vector<SafetensorsTensor> tensors = {
      {"empty_first", "F32", {0}, {}},
      {"scalar", "F64", {}, TestData(8, 5)},
      {"empty_mid", "BF16", {3, 0, 7}, {}},
      {"vector", "U16", {2}, TestData(4, 6)},
      {"empty_last", "I64", {0, 0}, {}},
  };
  const Bytes file = BuildSafetensors(tensors);
  auto r = ParseSt(file);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->tensors.size(), 5u);
  std::map<std::string, TensorInfo> by_name;
  for (const auto& t : r->tensors) by_name[t.name] = t;
  EXPECT_EQ(by_name["scalar"].shape, std::vector<uint64_t>{});
  EXPECT_EQ(by_name["scalar"].size, 8u);
  EXPECT_EQ(by_name["scalar"].offset, r->data_start);
  EXPECT_EQ(by_name["empty_first"].size, 0u);
  EXPECT_EQ(by_name["empty_first"].offset, r->data_start);
  EXPECT_EQ(by_name["empty_mid"].offset, r->data_start + 8);
  EXPECT_EQ(by_name["vector"].offset, r->data_start + 8);
  EXPECT_EQ(by_name["empty_last"].offset, file.size());
  EXPECT_EQ(by_name["vector"].shape, std::vector<uint64_t>{2});
  for (size_t i = 1; i < r->tensors.size(); ++i) {
    EXPECT_LE(r->tensors[i - 1].offset, r->tensors[i].offset);
  }
}

TEST(ModelFileSafetensors, EmptyModelHasNoTensors) {
  auto r = ParseSt(FrameSafetensors("{}", {}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->tensors.empty());
  EXPECT_EQ(r->data_start, 16u);
  EXPECT_EQ(r->file_size, 16u);
}

TEST(ModelFileSafetensors, UnpaddedHeaderAndUnknownFieldsAccepted) {
  // Readers must not require the writer's 8-byte padding; unknown fields are ignored
  // (the reference's TensorInfo has no deny_unknown_fields).
  const std::string header =
      R"({"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3],"extra":{"x":[1,{"y":null}]}}})";
  const Bytes file = FrameSafetensors(header, TestData(3, 7), /*pad=*/false);
  auto r = ParseSt(file);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->data_start, 8 + header.size());
  ASSERT_EQ(r->tensors.size(), 1u);
  EXPECT_EQ(r->tensors[0].offset, 8 + header.size());
}

TEST(ModelFileSafetensors, ThousandTinyTensors) {
  std::vector<SafetensorsTensor> tensors;
  for (int i = 0; i < 1000; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "layers.%04d.weight", i);
    tensors.push_back({name, "F16", {2}, TestData(4, static_cast<uint64_t>(i))});
  }
  const Bytes file = BuildSafetensors(tensors);
  auto r = ParseSt(file);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->tensors.size(), 1000u);
  for (size_t i = 0; i < 1000; ++i) {
    EXPECT_EQ(r->tensors[i].name, tensors[i].name);
    EXPECT_EQ(r->tensors[i].offset, r->data_start + 4 * i);
  }
  EXPECT_EQ(Slice(file, r->tensors[999]), tensors[999].data);
}

TEST(ModelFileSafetensors, TensorOver64MiBFromDisk) {
  constexpr uint64_t kElements = (uint64_t{64} << 20) / 4 + 3;  // just over 64 MiB of F32
  const std::vector<SafetensorsTensor> tensors = {
      {"small", "F32", {1}, TestData(4, 8)},
      {"big", "F32", {kElements}, TestData(kElements * 4, 9)},
  };
  TempDir dir;
  const std::string path = dir / "big.safetensors";
  const Bytes file = BuildSafetensors(tensors);
  WriteFile(path, file);
  auto in = InputFile::Open(path);
  ASSERT_TRUE(in.ok()) << in.error().message;
  auto detected = DetectModelFormat(**in);
  ASSERT_TRUE(detected.ok());
  EXPECT_EQ(*detected, ModelFormat::kSafetensors);
  auto r = ParseSafetensors(**in);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->tensors.size(), 2u);
  EXPECT_EQ(r->tensors[1].name, "big");
  EXPECT_EQ(r->tensors[1].size, kElements * 4);
  EXPECT_GT(r->tensors[1].size, uint64_t{64} << 20);
  EXPECT_EQ(r->tensors[1].offset + r->tensors[1].size, file.size());
}

// ---- safetensors: malformed corpus -------------------------------------------------------

// Two F32[4] tensors with the given offsets, and `data_bytes` of data.
Bytes TwoTensors(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1, size_t data_bytes) {
  const std::string header = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[)" + std::to_string(a0) + "," +
                             std::to_string(a1) + R"(]},"b":{"dtype":"F32","shape":[4],"data_offsets":[)" +
                             std::to_string(b0) + "," + std::to_string(b1) + "]}}";
  return FrameSafetensors(header, TestData(data_bytes, 10));
}

Bytes OneTensor(const std::string& entry, size_t data_bytes) {
  return FrameSafetensors(R"({"t":)" + entry + "}", TestData(data_bytes, 11));
}

TEST(ModelFileSafetensorsMalformed, OverlappingOffsets) {
  ExpectFormatError(ParseSt(TwoTensors(0, 16, 8, 24, 24)), "tensor 'b' [8, 24) overlaps tensor 'a' [0, 16)");
}

TEST(ModelFileSafetensorsMalformed, IdenticalOffsets) {
  ExpectFormatError(ParseSt(TwoTensors(0, 16, 0, 16, 16)), "overlaps tensor 'a'");
}

TEST(ModelFileSafetensorsMalformed, GapBetweenTensors) {
  ExpectFormatError(ParseSt(TwoTensors(0, 16, 20, 36, 36)), "gap of 4 bytes between tensor 'a'");
}

TEST(ModelFileSafetensorsMalformed, GapBeforeFirstTensor) {
  ExpectFormatError(ParseSt(OneTensor(R"({"dtype":"F32","shape":[4],"data_offsets":[4,20]})", 20)),
                    "before the first tensor 't'");
}

TEST(ModelFileSafetensorsMalformed, TrailingBytes) {
  Bytes file = BuildSafetensors({{"a", "U8", {4}, TestData(4, 12)}});
  file.insert(file.end(), {0, 0, 0});
  ExpectFormatError(ParseSt(file), "3 trailing bytes after the last tensor");
}

TEST(ModelFileSafetensorsMalformed, HugeHeaderLength) {
  Bytes file = FrameSafetensors("{}", {});
  const uint64_t n = kMaxSafetensorsHeaderBytes + 1;
  for (int i = 0; i < 8; ++i) file[i] = static_cast<uint8_t>(n >> (8 * i));
  ExpectFormatError(ParseSt(file), "header length 100000001 exceeds the limit");
}

TEST(ModelFileSafetensorsMalformed, HeaderLengthPastEndOfFile) {
  Bytes file = FrameSafetensors("{}", {});
  file[0] = 200;  // 200 bytes of header in a 16-byte file
  ExpectFormatError(ParseSt(file), "header length 200 runs past the end of the file");
}

TEST(ModelFileSafetensorsMalformed, FileShorterThanLengthField) {
  ExpectFormatError(ParseSt(Bytes{2, 0, 0, 0, 0}), "too short for the header length");
}

TEST(ModelFileSafetensorsMalformed, WrongSizeForShapeAndDtype) {
  ExpectFormatError(ParseSt(OneTensor(R"({"dtype":"F32","shape":[2,2],"data_offsets":[0,12]})", 12)),
                    "hold 12 bytes, but shape [2, 2] of F32 needs 16");
}

TEST(ModelFileSafetensorsMalformed, SubByteDtypeNotWholeBytes) {
  ExpectFormatError(ParseSt(OneTensor(R"({"dtype":"F4","shape":[3],"data_offsets":[0,2]})", 2)),
                    "is 12 bits, not a whole number of bytes");
}

TEST(ModelFileSafetensorsMalformed, UnknownDtype) {
  ExpectFormatError(ParseSt(OneTensor(R"({"dtype":"F33","shape":[1],"data_offsets":[0,4]})", 4)),
                    "tensor 't': unknown dtype 'F33'");
}

TEST(ModelFileSafetensorsMalformed, DtypeIsCaseSensitive) {
  ExpectFormatError(ParseSt(OneTensor(R"({"dtype":"f32","shape":[1],"data_offsets":[0,4]})", 4)),
                    "unknown dtype 'f32'");
}

TEST(ModelFileSafetensorsMalformed, BadUtf8InHeader) {
  const std::string header = "{\"bad\xC3\x28\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
  ExpectFormatError(ParseSt(FrameSafetensors(header, TestData(1, 13))), "header is not valid UTF-8");
}

TEST(ModelFileSafetensorsMalformed, OverlongUtf8InHeader) {
  const std::string header = "{\"\xC0\xAF\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
  ExpectFormatError(ParseSt(FrameSafetensors(header, TestData(1, 13))), "not valid UTF-8");
}

TEST(ModelFileSafetensorsMalformed, DuplicateTensorNames) {
  // nlohmann's DOM would silently keep the second "a"; the offsets alone look valid.
  const std::string header = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                             R"("a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  ExpectFormatError(ParseSt(FrameSafetensors(header, TestData(16, 14))), "duplicate tensor name 'a'");
}

TEST(ModelFileSafetensorsMalformed, DuplicateMetadataKey) {
  const std::string header = R"({"__metadata__":{"k":"1","k":"2"}})";
  ExpectFormatError(ParseSt(FrameSafetensors(header, {})), "duplicate __metadata__ key 'k'");
}

TEST(ModelFileSafetensorsMalformed, DuplicateFieldInTensor) {
  ExpectFormatError(
      ParseSt(OneTensor(R"({"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]})", 1)),
      "tensor 't': duplicate field 'dtype'");
}

TEST(ModelFileSafetensorsMalformed, TruncatedFile) {
  Bytes file = BuildSafetensors({{"a", "F32", {4}, TestData(16, 15)}});
  file.resize(file.size() - 5);
  ExpectFormatError(ParseSt(file), "file truncated: tensors need 16 bytes of data but 11 follow");
}

TEST(ModelFileSafetensorsMalformed, MetadataValueNotString) {
  ExpectFormatError(ParseSt(FrameSafetensors(R"({"__metadata__":{"ok":"x","n":1}})", {})),
                    "__metadata__ must map strings to strings: value of 'n' is not a string");
}

TEST(ModelFileSafetensorsMalformed, MetadataNestedObject) {
  ExpectFormatError(ParseSt(FrameSafetensors(R"({"__metadata__":{"o":{"a":"b"}}})", {})),
                    "value of 'o' is not a string");
}

TEST(ModelFileSafetensorsMalformed, MetadataNotObject) {
  ExpectFormatError(ParseSt(FrameSafetensors(R"({"__metadata__":"x"})", {})),
                    "__metadata__ must be an object of strings");
}

TEST(ModelFileSafetensorsMalformed, ShapeElementCountOverflow) {
  ExpectFormatError(
      ParseSt(OneTensor(R"({"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]})", 0)),
      "overflows: element count exceeds 2^64");
}

TEST(ModelFileSafetensorsMalformed, ShapeBitCountOverflow) {
  ExpectFormatError(ParseSt(OneTensor(R"({"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]})", 0)),
                    "overflows: bit count exceeds 2^64");
}

TEST(ModelFileSafetensorsMalformed, ShapeDimensionAboveU64) {
  ExpectFormatError(ParseSt(OneTensor(R"({"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,0]})", 0)),
                    "shape must hold only non-negative integers");
}

TEST(ModelFileSafetensorsMalformed, NegativeShape) {
  ExpectFormatError(ParseSt(OneTensor(R"({"dtype":"U8","shape":[-1],"data_offsets":[0,0]})", 0)),
                    "shape must hold only non-negative integers");
}

TEST(ModelFileSafetensorsMalformed, FractionalOffset) {
  ExpectFormatError(ParseSt(OneTensor(R"({"dtype":"U8","shape":[1],"data_offsets":[0,1.0]})", 1)),
                    "data_offsets must hold only non-negative integers");
}

TEST(ModelFileSafetensorsMalformed, OffsetsEndBeforeBegin) {
  ExpectFormatError(ParseSt(OneTensor(R"({"dtype":"U8","shape":[0],"data_offsets":[4,0]})", 4)),
                    "data_offsets [4, 0] end before begin");
}

TEST(ModelFileSafetensorsMalformed, OffsetsNotAPair) {
  ExpectFormatError(ParseSt(OneTensor(R"({"dtype":"U8","shape":[1],"data_offsets":[0,1,2]})", 1)),
                    "data_offsets must be [begin, end]");
}

TEST(ModelFileSafetensorsMalformed, MissingField) {
  ExpectFormatError(ParseSt(OneTensor(R"({"dtype":"U8","data_offsets":[0,1]})", 1)), "tensor 't': missing shape");
}

TEST(ModelFileSafetensorsMalformed, EntryNotObject) {
  ExpectFormatError(ParseSt(FrameSafetensors(R"({"t":[1,2]})", {})), "tensor 't': entry is not an object");
}

TEST(ModelFileSafetensorsMalformed, NestingTooDeep) {
  const std::string deep = R"({"t":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"x":)" + std::string(200, '[') +
                           std::string(200, ']') + "}}";
  ExpectFormatError(ParseSt(FrameSafetensors(deep, {})), "header nests deeper than 128 levels");
  // Moderate nesting inside an ignored field is fine.
  const std::string ok = R"({"t":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"x":)" + std::string(100, '[') +
                         std::string(100, ']') + "}}";
  EXPECT_TRUE(ParseSt(FrameSafetensors(ok, {})).ok());
}

TEST(ModelFileSafetensorsMalformed, HeaderNotStartingWithBrace) {
  ExpectFormatError(ParseSt(FrameSafetensors(" {}", {}, /*pad=*/false)), "header does not begin with '{'");
}

TEST(ModelFileSafetensorsMalformed, EmptyHeader) {
  ExpectFormatError(ParseSt(FrameSafetensors("", {})), "header does not begin with '{'");
}

TEST(ModelFileSafetensorsMalformed, InvalidJson) {
  ExpectFormatError(ParseSt(FrameSafetensors(R"({"t":{"dtype":"U8",)", {})), "header is not valid JSON");
}

TEST(ModelFileSafetensorsMalformed, GarbageAfterObject) {
  ExpectFormatError(ParseSt(FrameSafetensors("{} {}", {})), "header is not valid JSON");
}

TEST(ModelFileSafetensorsMalformed, NulByteEndsNothing) {
  // nlohmann's lexer would stop at the NUL and accept the object before it.
  ExpectFormatError(ParseSt(FrameSafetensors(std::string("{}\0garbage", 10), {})), "it contains a NUL byte");
}

TEST(ModelFileSafetensorsMalformed, ControlBytesInNameAreEscapedInMessage) {
  const std::string header = "{\"a\\nb\":{\"dtype\":\"X\",\"shape\":[1],\"data_offsets\":[0,1]}}";
  auto r = ParseSt(FrameSafetensors(header, TestData(1, 16)));
  ExpectFormatError(r, "tensor 'a\\x0ab': unknown dtype 'X'");
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
}

// ---- GGUF: valid files -------------------------------------------------------------------

// ggml type id -> (name, block elements, block bytes), from formats.md §3.3.
struct TypeCase {
  uint32_t id;
  const char* name;
  uint64_t blck, bytes;
};
const std::vector<TypeCase> kTypes = {
    {0, "F32", 1, 4},         {1, "F16", 1, 2},         {2, "Q4_0", 32, 18},      {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},      {7, "Q5_1", 32, 24},      {8, "Q8_0", 32, 34},      {9, "Q8_1", 32, 40},
    {10, "Q2_K", 256, 84},    {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},   {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},   {15, "Q8_K", 256, 292},   {16, "IQ2_XXS", 256, 66}, {17, "IQ2_XS", 256, 74},
    {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},   {20, "IQ4_NL", 32, 18},   {21, "IQ3_S", 256, 110},
    {22, "IQ2_S", 256, 82},   {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},         {25, "I16", 1, 2},
    {26, "I32", 1, 4},        {27, "I64", 1, 8},        {28, "F64", 1, 8},        {29, "IQ1_M", 256, 56},
    {30, "BF16", 1, 2},       {34, "TQ1_0", 256, 54},   {35, "TQ2_0", 256, 66},   {39, "MXFP4", 32, 17},
    {40, "NVFP4", 64, 36},    {41, "Q1_0", 128, 18},    {42, "Q2_0", 64, 18},
};

std::vector<GgufKv> AllValueKinds() {
  using V = GgufValue;
  return {
      {"general.architecture", V::String("llama")},
      {"general.name", V::String("tiny \xE2\x9C\x93")},
      {"test.u8", V::U8(200)},
      {"test.i8", V::I8(-5)},
      {"test.u16", V::U16(60000)},
      {"test.i16", V::I16(-300)},
      {"test.u32", V::U32(4000000000u)},
      {"test.i32", V::I32(-70000)},
      {"test.f32", V::F32(1.5f)},
      {"test.bool", V::Bool(true)},
      {"test.u64", V::U64(uint64_t{1} << 40)},
      {"test.i64", V::I64(-(int64_t{1} << 40))},
      {"test.f64", V::F64(-2.25)},
      {"test.empty_string", V::String("")},
      {"tokenizer.ggml.tokens", V::Array(GgufValueType::kString, {V::String("<s>"), V::String("</s>"), V::String("")})},
      {"test.scores", V::Array(GgufValueType::kF32, {V::F32(0.5f), V::F32(-1.0f)})},
      {"test.flags", V::Array(GgufValueType::kBool, {V::Bool(false), V::Bool(true)})},
      {"test.empty_array", V::Array(GgufValueType::kU64, {})},
      {"test.nested", V::Array(GgufValueType::kArray,
                               {V::Array(GgufValueType::kI16, {V::I16(1), V::I16(-2)}),
                                V::Array(GgufValueType::kString, {V::String("x")}),
                                V::Array(GgufValueType::kArray, {V::Array(GgufValueType::kU8, {V::U8(7)})})})},
      {"general.quantization_version", V::U32(2)},
  };
}

TEST(ModelFileGguf, ParsesLayoutWithEveryValueType) {
  GgufSpec spec;
  spec.kvs = AllValueKinds();
  spec.tensors = {
      {"token_embd.weight", {64, 3}, 2, TestData(3 * 2 * 18, 20), {}},  // Q4_0: 2 blocks/row
      {"output_norm.weight", {5}, 0, TestData(20, 21), {}},             // F32
      {"blk.0.ffn.weight", {256, 2, 1}, 12, TestData(2 * 144, 22), {}},  // Q4_K
  };
  const Bytes file = BuildGguf(spec);
  auto r = ParseGg(file);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->format, ModelFormat::kGguf);
  EXPECT_EQ(r->version, 3u);
  EXPECT_EQ(r->alignment, 32u);
  EXPECT_EQ(r->file_size, file.size());
  EXPECT_EQ(r->data_start, PadTo(GgufHeaderBytes(spec), 32));
  ASSERT_EQ(r->tensors.size(), 3u);
  const uint64_t expected_offsets[] = {0, PadTo(108, 32), PadTo(108, 32) + 32};
  const char* expected_dtypes[] = {"Q4_0", "F32", "Q4_K"};
  for (size_t i = 0; i < 3; ++i) {
    const TensorInfo& t = r->tensors[i];
    EXPECT_EQ(t.name, spec.tensors[i].name);
    EXPECT_EQ(t.dtype, expected_dtypes[i]);
    EXPECT_EQ(t.shape, spec.tensors[i].ne);
    EXPECT_EQ(t.offset, r->data_start + expected_offsets[i]);
    EXPECT_EQ(t.size, spec.tensors[i].data.size());
    EXPECT_EQ(Slice(file, t), spec.tensors[i].data);
  }
}

TEST(ModelFileGguf, EveryGgmlType) {
  GgufSpec spec;
  for (const auto& tc : kTypes) {
    spec.tensors.push_back({std::string("t.") + tc.name, {tc.blck, 2}, tc.id, TestData(2 * tc.bytes, tc.id), {}});
  }
  auto r = ParseGg(BuildGguf(spec));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->tensors.size(), kTypes.size());
  for (size_t i = 0; i < kTypes.size(); ++i) {
    EXPECT_EQ(r->tensors[i].dtype, kTypes[i].name);
    EXPECT_EQ(r->tensors[i].size, 2 * kTypes[i].bytes) << kTypes[i].name;
    auto traits = GgmlType(kTypes[i].id);
    ASSERT_TRUE(traits.has_value());
    EXPECT_EQ(traits->block_elements, kTypes[i].blck);
  }
}

TEST(ModelFileGguf, NonDefaultAlignment) {
  for (uint32_t alignment : {1u, 8u, 64u, 4096u}) {
    GgufSpec spec;
    spec.kvs = {{"general.architecture", GgufValue::String("llama")},
                {"general.alignment", GgufValue::U32(alignment)}};
    spec.tensors = {{"a", {3}, 0, TestData(12, 30), {}}, {"b", {5}, 1, TestData(10, 31), {}}};
    const Bytes file = BuildGguf(spec);
    auto r = ParseGg(file);
    ASSERT_TRUE(r.ok()) << alignment << ": " << r.error().message;
    EXPECT_EQ(r->alignment, alignment);
    EXPECT_EQ(r->data_start, PadTo(GgufHeaderBytes(spec), alignment));
    EXPECT_EQ(r->tensors[1].offset, r->data_start + PadTo(12, alignment));
    EXPECT_EQ(Slice(file, r->tensors[1]), spec.tensors[1].data);
  }
}

TEST(ModelFileGguf, InfosOutOfDataOrderWithGaps) {
  GgufSpec spec;
  spec.tensors = {
      {"late", {8}, 0, TestData(32, 40), uint64_t{256}},
      {"early", {4}, 0, TestData(16, 41), uint64_t{0}},
      {"middle", {2}, 30, TestData(4, 42), uint64_t{96}},
  };
  const Bytes file = BuildGguf(spec);
  auto r = ParseGg(file);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->tensors.size(), 3u);
  EXPECT_EQ(r->tensors[0].name, "early");
  EXPECT_EQ(r->tensors[1].name, "middle");
  EXPECT_EQ(r->tensors[1].dtype, "BF16");
  EXPECT_EQ(r->tensors[2].name, "late");
  EXPECT_EQ(r->tensors[2].offset, r->data_start + 256);
  EXPECT_EQ(Slice(file, r->tensors[2]), spec.tensors[0].data);
}

TEST(ModelFileGguf, Version2Accepted) {
  GgufSpec spec;
  spec.version = 2;
  spec.kvs = {{"general.architecture", GgufValue::String("llama")}};
  spec.tensors = {{"w", {4}, 0, TestData(16, 43), {}}};
  auto r = ParseGg(BuildGguf(spec));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->version, 2u);
  EXPECT_EQ(r->tensors[0].size, 16u);
}

TEST(ModelFileGguf, ScalarAndEmptyTensors) {
  GgufSpec spec;
  spec.tensors = {
      {"scalar", {}, 0, TestData(4, 44), {}},       // n_dims 0: one element
      {"empty", {0, 7}, 2, {}, {}},                 // Q4_0 with ne0 = 0: no bytes
      {"after", {1}, 28, TestData(8, 45), {}},      // F64
  };
  const Bytes file = BuildGguf(spec);
  auto r = ParseGg(file);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->tensors.size(), 3u);
  std::map<std::string, TensorInfo> by_name;
  for (const auto& t : r->tensors) by_name[t.name] = t;
  EXPECT_EQ(by_name["scalar"].size, 4u);
  EXPECT_TRUE(by_name["scalar"].shape.empty());
  EXPECT_EQ(by_name["empty"].size, 0u);
  EXPECT_EQ(by_name["empty"].shape, (std::vector<uint64_t>{0, 7}));
  EXPECT_EQ(by_name["after"].offset, r->data_start + 32);
  EXPECT_EQ(Slice(file, by_name["after"]), spec.tensors[2].data);
}

TEST(ModelFileGguf, NoTensors) {
  GgufSpec spec;
  spec.kvs = {{"general.architecture", GgufValue::String("llama")}};
  const Bytes padded = BuildGguf(spec);
  auto r = ParseGg(padded);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->tensors.empty());
  EXPECT_EQ(r->data_start, padded.size());

  // Without the padding after the header (ggml's reader accepts this too).
  GgufWriter w;
  w.Header(3, 0, 1).Kv(spec.kvs[0]);
  ASSERT_NE(w.size() % 32, 0u);
  auto bare = ParseGg(w.bytes());
  ASSERT_TRUE(bare.ok()) << bare.error().message;
  EXPECT_EQ(bare->data_start, w.size());
}

TEST(ModelFileGguf, ThousandTinyTensors) {
  GgufSpec spec;
  spec.kvs = {{"general.alignment", GgufValue::U32(8)}};
  for (int i = 0; i < 1000; ++i) {
    spec.tensors.push_back({"blk." + std::to_string(i) + ".w", {2}, 0, TestData(8, static_cast<uint64_t>(i)), {}});
  }
  const Bytes file = BuildGguf(spec);
  auto r = ParseGg(file);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->tensors.size(), 1000u);
  for (size_t i = 0; i < 1000; ++i) {
    EXPECT_EQ(r->tensors[i].name, spec.tensors[i].name);
    EXPECT_EQ(r->tensors[i].offset, r->data_start + 8 * i);
  }
}

TEST(ModelFileGguf, TensorOver64MiBFromDisk) {
  constexpr uint64_t kRows = 2'000'000;  // Q8_0 rows of 32 elements, 34 bytes each: 68 MB
  GgufSpec spec;
  spec.kvs = {{"general.architecture", GgufValue::String("llama")}};
  spec.tensors = {{"norm", {4}, 0, TestData(16, 46), {}}, {"big", {32, kRows}, 8, TestData(34 * kRows, 47), {}}};
  TempDir dir;
  const std::string path = dir / "big.gguf";
  const Bytes file = BuildGguf(spec);
  WriteFile(path, file);
  auto in = InputFile::Open(path);
  ASSERT_TRUE(in.ok()) << in.error().message;
  auto detected = DetectModelFormat(**in);
  ASSERT_TRUE(detected.ok());
  EXPECT_EQ(*detected, ModelFormat::kGguf);
  auto r = ParseModel(**in, ModelFormat::kGguf);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->tensors.size(), 2u);
  EXPECT_EQ(r->tensors[1].size, 34 * kRows);
  EXPECT_GT(r->tensors[1].size, uint64_t{64} << 20);
  EXPECT_EQ(r->tensors[1].offset, r->data_start + 32);
}

// ---- GGUF: malformed corpus --------------------------------------------------------------

// One F32[4] tensor at `offset`, with `data_bytes` of data after the padded header.
Bytes OneGgufTensor(uint64_t offset, uint64_t data_bytes, uint32_t type = 0,
                    const std::vector<uint64_t>& ne = {4}) {
  GgufWriter w;
  w.Header(3, 1, 0).TensorInfo("w", ne, type, offset).PadTo(32).Zeros(data_bytes);
  return w.bytes();
}

TEST(ModelFileGgufMalformed, BadMagic) {
  Bytes file = BuildGguf({});
  file[3] = 'X';
  ExpectFormatError(ParseGg(file), "bad magic");
}

TEST(ModelFileGgufMalformed, ShorterThanMagic) { ExpectFormatError(ParseGg(Bytes{'G', 'G'}), "bad magic"); }

TEST(ModelFileGgufMalformed, UnsupportedVersion) {
  GgufWriter w;
  w.Header(4, 0, 0);
  ExpectFormatError(ParseGg(w.bytes()), "unsupported version 4");
}

TEST(ModelFileGgufMalformed, VersionOneRejected) {
  GgufWriter w;
  w.Header(1, 0, 0);
  ExpectFormatError(ParseGg(w.bytes()), "GGUF v1 is no longer supported");
}

TEST(ModelFileGgufMalformed, BigEndianRejected) {
  GgufWriter w;
  w.Header(0x03000000, 0, 0);
  ExpectFormatError(ParseGg(w.bytes()), "big-endian GGUF is not supported");
}

TEST(ModelFileGgufMalformed, AbsurdTensorCount) {
  GgufWriter w;
  w.Header(3, uint64_t{1} << 60, 0).Zeros(64);
  ExpectFormatError(ParseGg(w.bytes()), "tensor count 1152921504606846976 (with 0 KVs) is impossible");
}

TEST(ModelFileGgufMalformed, AbsurdKvCount) {
  GgufWriter w;
  w.Header(3, 0, ~uint64_t{0}).Zeros(64);
  ExpectFormatError(ParseGg(w.bytes()), "KV count 18446744073709551615 is impossible");
}

TEST(ModelFileGgufMalformed, TruncatedKv) {
  GgufWriter w;
  w.Header(3, 0, 1).Str("general.name").U32(8).U64(100).Raw(AsBytes("short"));
  ExpectFormatError(ParseGg(w.bytes()), "file truncated in KV 'general.name': string value needs 100 bytes");
}

TEST(ModelFileGgufMalformed, TruncatedInKvKey) {
  GgufWriter w;
  w.Header(3, 0, 1).U64(100).Raw(AsBytes("general.na"));
  ExpectFormatError(ParseGg(w.bytes()), "file truncated in KV #0: key needs 100 bytes");
}

TEST(ModelFileGgufMalformed, StringOverOneGiB) {
  GgufWriter w;
  w.Header(3, 0, 1).Str("general.name").U32(8).U64(uint64_t{1} << 40).Zeros(16);
  ExpectFormatError(ParseGg(w.bytes()), "KV 'general.name': string value is 1099511627776 bytes, over the 1 GiB limit");
}

TEST(ModelFileGgufMalformed, ArrayLongerThanFile) {
  GgufWriter w;
  w.Header(3, 0, 1).Str("tokenizer.ggml.tokens").U32(9).U32(8).U64(uint64_t{1} << 40).Zeros(64);
  ExpectFormatError(ParseGg(w.bytes()), "KV 'tokenizer.ggml.tokens': array of 1099511627776 elements runs past");
}

TEST(ModelFileGgufMalformed, UnknownValueType) {
  GgufWriter w;
  w.Header(3, 0, 1).Str("test.x").U32(13).Zeros(16);
  ExpectFormatError(ParseGg(w.bytes()), "KV 'test.x': unknown value type 13");
}

TEST(ModelFileGgufMalformed, UnknownArrayElementType) {
  GgufWriter w;
  w.Header(3, 0, 1).Str("test.x").U32(9).U32(99).U64(1).Zeros(16);
  ExpectFormatError(ParseGg(w.bytes()), "unknown array element type 99");
}

TEST(ModelFileGgufMalformed, BoolNotZeroOrOne) {
  GgufWriter w;
  w.Header(3, 0, 1).Str("test.flag").U32(7).U8(2);
  ExpectFormatError(ParseGg(w.bytes()), "KV 'test.flag': bool value 2 is not 0 or 1");
}

TEST(ModelFileGgufMalformed, ArraysNestedTooDeep) {
  GgufValue v = GgufValue::Array(GgufValueType::kU8, {GgufValue::U8(1)});
  for (int i = 0; i < 9; ++i) v = GgufValue::Array(GgufValueType::kArray, {v});
  GgufWriter w;
  w.Header(3, 0, 1).Kv({"test.deep", v});
  ExpectFormatError(ParseGg(w.bytes()), "arrays nested deeper than 8");
}

TEST(ModelFileGgufMalformed, EmptyKey) {
  GgufWriter w;
  w.Header(3, 0, 1).Kv({"", GgufValue::U8(1)});
  ExpectFormatError(ParseGg(w.bytes()), "KV #0 has an empty key");
}

TEST(ModelFileGgufMalformed, DuplicateKey) {
  GgufWriter w;
  w.Header(3, 0, 2).Kv({"general.name", GgufValue::String("a")}).Kv({"general.name", GgufValue::String("b")});
  ExpectFormatError(ParseGg(w.bytes()), "duplicate KV key 'general.name'");
}

TEST(ModelFileGgufMalformed, UnalignedOffset) {
  ExpectFormatError(ParseGg(OneGgufTensor(16, 64)), "tensor 'w': offset 16 is not a multiple of the alignment 32");
}

TEST(ModelFileGgufMalformed, OverlappingTensors) {
  GgufWriter w;
  w.Header(3, 2, 0).TensorInfo("a", {16}, 0, 0).TensorInfo("b", {8}, 0, 32).PadTo(32).Zeros(96);
  ExpectFormatError(ParseGg(w.bytes()), "overlaps tensor 'a'");
}

TEST(ModelFileGgufMalformed, SameOffsetTwice) {
  GgufWriter w;
  w.Header(3, 2, 0).TensorInfo("a", {4}, 0, 0).TensorInfo("b", {4}, 0, 0).PadTo(32).Zeros(32);
  ExpectFormatError(ParseGg(w.bytes()), "tensor 'b'");
  ExpectFormatError(ParseGg(w.bytes()), "overlaps tensor 'a'");
}

TEST(ModelFileGgufMalformed, TensorPastEndOfFile) {
  ExpectFormatError(ParseGg(OneGgufTensor(0, 15)), "tensor 'w': data [0, +16) of the data section runs past the end");
}

TEST(ModelFileGgufMalformed, TensorOffsetFarPastEndOfFile) {
  ExpectFormatError(ParseGg(OneGgufTensor(uint64_t{1} << 62, 16)), "runs past the end of the file");
}

TEST(ModelFileGgufMalformed, DataSectionPastEndOfFile) {
  GgufWriter w;
  w.Header(3, 1, 0).TensorInfo("w", {0}, 0, 0);  // no padding: the aligned data start is past EOF
  ExpectFormatError(ParseGg(w.bytes()), "the data section would start at offset 64");
}

TEST(ModelFileGgufMalformed, TruncatedTensorInfo) {
  Bytes file = OneGgufTensor(0, 16, 0, {4, 1});
  file.resize(24 + 8 + 1 + 4 + 8 + 4);  // cut inside the second dimension
  ExpectFormatError(ParseGg(file), "file truncated in tensor 'w': dimension needs 8 bytes");
}

TEST(ModelFileGgufMalformed, UnknownType) {
  ExpectFormatError(ParseGg(OneGgufTensor(0, 16, 99)), "tensor 'w': unknown ggml type 99");
}

TEST(ModelFileGgufMalformed, RemovedTypeIdIsUnknown) {
  ExpectFormatError(ParseGg(OneGgufTensor(0, 64, 4, {32})), "unknown ggml type 4");
}

TEST(ModelFileGgufMalformed, RowNotWholeBlocks) {
  ExpectFormatError(ParseGg(OneGgufTensor(0, 64, 2, {48})), "ne[0] = 48 is not a multiple of the Q4_0 block size 32");
}

TEST(ModelFileGgufMalformed, TooManyDims) {
  ExpectFormatError(ParseGg(OneGgufTensor(0, 16, 0, {1, 1, 1, 1, 4})), "tensor 'w': n_dims 5 exceeds 4");
}

TEST(ModelFileGgufMalformed, ShapeOverflow) {
  ExpectFormatError(ParseGg(OneGgufTensor(0, 16, 0, {uint64_t{1} << 32, uint64_t{1} << 32})),
                    "overflows: element count exceeds 2^63");
}

TEST(ModelFileGgufMalformed, ByteSizeOverflow) {
  ExpectFormatError(ParseGg(OneGgufTensor(0, 16, 28, {uint64_t{1} << 62})), "overflows: byte size exceeds 2^64");
}

TEST(ModelFileGgufMalformed, NegativeDimension) {
  ExpectFormatError(ParseGg(OneGgufTensor(0, 16, 0, {~uint64_t{0}})), "dimension -1 is negative");
}

TEST(ModelFileGgufMalformed, DuplicateTensorName) {
  GgufWriter w;
  w.Header(3, 2, 0).TensorInfo("w", {4}, 0, 0).TensorInfo("w", {4}, 0, 32).PadTo(32).Zeros(64);
  ExpectFormatError(ParseGg(w.bytes()), "duplicate tensor name 'w'");
}

TEST(ModelFileGgufMalformed, TensorNameTooLong) {
  GgufWriter w;
  w.Header(3, 1, 0).TensorInfo(std::string(64, 'n'), {4}, 0, 0).PadTo(32).Zeros(32);
  ExpectFormatError(ParseGg(w.bytes()), "tensor name is 64 bytes, over the limit of 63");
}

TEST(ModelFileGgufMalformed, BadAlignmentValue) {
  GgufWriter w;
  w.Header(3, 0, 1).Kv({"general.alignment", GgufValue::U32(48)});
  ExpectFormatError(ParseGg(w.bytes()), "general.alignment 48 is not a power of two");
}

TEST(ModelFileGgufMalformed, ZeroAlignment) {
  GgufWriter w;
  w.Header(3, 0, 1).Kv({"general.alignment", GgufValue::U32(0)});
  ExpectFormatError(ParseGg(w.bytes()), "general.alignment 0 is not a power of two");
}

TEST(ModelFileGgufMalformed, AlignmentWrongType) {
  GgufWriter w;
  w.Header(3, 0, 1).Kv({"general.alignment", GgufValue::U64(32)});
  ExpectFormatError(ParseGg(w.bytes()), "general.alignment must be of type UINT32 (4), not 10");
}

// ---- detection ---------------------------------------------------------------------------

TEST(ModelFileDetect, SafetensorsNamedBinRecognisedByContent) {
  TempDir dir;
  const std::string path = dir / "pytorch_model.bin";
  WriteFile(path, BuildSafetensors({{"w", "F16", {2, 2}, TestData(8, 50)}}));
  auto in = InputFile::Open(path);
  ASSERT_TRUE(in.ok());
  auto format = DetectModelFormat(**in);
  ASSERT_TRUE(format.ok()) << format.error().message;
  ASSERT_TRUE(format->has_value());
  EXPECT_EQ(**format, ModelFormat::kSafetensors);
  EXPECT_STREQ(ModelFormatName(**format), "safetensors");
  auto layout = ParseModel(**in, **format);
  ASSERT_TRUE(layout.ok()) << layout.error().message;
  EXPECT_EQ(layout->tensors.size(), 1u);
}

TEST(ModelFileDetect, GgufNamedSafetensorsRecognisedByContent) {
  TempDir dir;
  const std::string path = dir / "model.safetensors";
  GgufSpec spec;
  spec.tensors = {{"w", {4}, 0, TestData(16, 51), {}}};
  WriteFile(path, BuildGguf(spec));
  auto in = InputFile::Open(path);
  ASSERT_TRUE(in.ok());
  auto format = DetectModelFormat(**in);
  ASSERT_TRUE(format.ok());
  EXPECT_EQ(*format, ModelFormat::kGguf);
  EXPECT_STREQ(ModelFormatName(ModelFormat::kGguf), "gguf");
}

TEST(ModelFileDetect, EmptyAndMetadataOnlySafetensors) {
  EXPECT_EQ(Detect(FrameSafetensors("{}", {})), ModelFormat::kSafetensors);
  EXPECT_EQ(Detect(FrameSafetensors(R"({"__metadata__":{"a":"b"}})", {})), ModelFormat::kSafetensors);
  // Padded well past 8 bytes, past the detector's 4096-byte tail window.
  EXPECT_EQ(Detect(FrameSafetensors("{}" + std::string(5000, ' '), {})), ModelFormat::kSafetensors);
}

TEST(ModelFileDetect, RandomBytesNotRecognised) {
  for (size_t size : {0u, 1u, 7u, 8u, 9u, 16u, 100u, 4096u, 100000u}) {
    for (uint64_t seed = 0; seed < 8; ++seed) {
      EXPECT_EQ(Detect(TestData(size, seed)), std::nullopt) << size << " " << seed;
    }
  }
}

TEST(ModelFileDetect, HmodFileNotRecognised) {
  ASSERT_TRUE(InitCrypto().ok());
  TempDir dir;
  ProviderList providers = FileProviders(NewKeyFile(dir));
  const Bytes model = BuildSafetensors({{"w", "F32", {4}, TestData(16, 52)}});
  const Bytes hmod = EncryptBytes(model, providers, Suite::kAes256Gcm);
  ASSERT_FALSE(hmod.empty());
  EXPECT_EQ(Detect(hmod), std::nullopt);
}

TEST(ModelFileDetect, NearMissesNotRecognised) {
  // Plain JSON text: the first 8 bytes read as a huge length.
  EXPECT_EQ(Detect(Bytes(AsBytes(R"({"dtype": "F32", "shape": [1]})").begin(),
                         AsBytes(R"({"dtype": "F32", "shape": [1]})").end())),
            std::nullopt);
  // Right length, but the header is not an object.
  EXPECT_EQ(Detect(FrameSafetensors("[1, 2, 3]", {})), std::nullopt);
  // Opens with '{' but does not close.
  EXPECT_EQ(Detect(FrameSafetensors("{\"a\":1 ", {}, false)), std::nullopt);
  // '{' followed by something that cannot start a key.
  EXPECT_EQ(Detect(FrameSafetensors("{1:2}", {})), std::nullopt);
  // "GGUF" needs the rest of a header.
  EXPECT_EQ(Detect(Bytes{'G', 'G', 'U', 'F'}), std::nullopt);
}

TEST(ModelFileDetect, WrongParserGivesFormatError) {
  const Bytes st = BuildSafetensors({{"w", "U8", {1}, TestData(1, 53)}});
  ExpectFormatError(ParseGg(st), "GGUF: bad magic");
  GgufSpec spec;
  spec.tensors = {{"w", {4}, 0, TestData(16, 54), {}}};
  auto r = ParseSt(BuildGguf(spec));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kFormat);
  EXPECT_THAT(r.error().message, HasSubstr("safetensors: "));
}

// Every prefix of a valid file is rejected cleanly (kFormat), never accepted or crashed on.
TEST(ModelFileParsers, EveryTruncationRejected) {
  const Bytes st = BuildSafetensors({{"a", "F32", {2}, TestData(8, 55)}, {"b", "U8", {3}, TestData(3, 56)}});
  for (size_t n = 0; n < st.size(); ++n) {
    auto r = ParseSt(Bytes(st.begin(), st.begin() + static_cast<ptrdiff_t>(n)));
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.error().code, ErrorCode::kFormat) << n;
  }
  GgufSpec spec;
  spec.kvs = AllValueKinds();
  spec.tensors = {{"w", {4}, 0, TestData(16, 57), {}}};
  const Bytes gg = BuildGguf(spec);
  auto full = ParseGg(gg);
  ASSERT_TRUE(full.ok()) << full.error().message;
  // The zero padding after the last tensor is not needed, so stop at its end.
  const uint64_t end = full->tensors.back().offset + full->tensors.back().size;
  ASSERT_LT(end, gg.size());
  for (size_t n = 0; n < end; ++n) {
    auto r = ParseGg(Bytes(gg.begin(), gg.begin() + static_cast<ptrdiff_t>(n)));
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.error().code, ErrorCode::kFormat) << n;
  }
}

}  // namespace
}  // namespace hmod::testing
