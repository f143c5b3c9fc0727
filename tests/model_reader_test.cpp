// ModelReader, the loader API: tensors listed as the source model has them, whole and
// partial reads equal to the source bytes, every failure a clear error with the caller's
// buffer wiped (FORMAT.md §6.4), and concurrent reads from several threads.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "hmod/model_reader.h"
#include "support/library_fixture.h"
#include "support/model_builder.h"
#include "support/test_util.h"

namespace hmod::testing {
namespace {

using ::testing::HasSubstr;

// Writes `model` (safetensors or GGUF) as a per-tensor .hmod at `path`.
void EncryptModelFile(const std::string& path, const Bytes& model, ProviderList providers,
                      const TensorEncryptOptions& options = {}) {
  MemorySource src(model);
  auto format = DetectModelFormat(src);
  ASSERT_TRUE(format.ok() && format->has_value());
  auto layout = ParseModel(src, **format);
  ASSERT_TRUE(layout.ok()) << layout.error().message;
  auto out = AtomicFile::Create(path, 0644, false);
  ASSERT_TRUE(out.ok()) << out.error().message;
  auto r = EncryptModelToContainer(src, *layout, **out, providers, options);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE((*out)->Commit().ok());
}

// Overwrites one byte of `path` in place (same inode), as an attacker with write access to
// an open model file could.
void FlipByteInPlace(const std::string& path, uint64_t offset) {
  const int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  uint8_t b = 0;
  ASSERT_EQ(::pread(fd, &b, 1, static_cast<off_t>(offset)), 1);
  b ^= 0x01;
  ASSERT_EQ(::pwrite(fd, &b, 1, static_cast<off_t>(offset)), 1);
  ::close(fd);
}

// Absolute file offset of tensor `name`'s stored bytes (read with the lower-level API).
uint64_t StoredOffset(const std::string& path, const std::string& key, const std::string& name) {
  auto in = InputFile::Open(path);
  EXPECT_TRUE(in.ok());
  auto parsed = ReadHeader(**in);
  EXPECT_TRUE(parsed.ok());
  ProviderList providers = FileProviders(key);
  auto file = TensorFile::Open(**in, std::move(*parsed), providers, {});
  EXPECT_TRUE(file.ok()) << file.error().message;
  auto entry = (*file)->Find(name);
  EXPECT_TRUE(entry.ok());
  return (*file)->index().entries[*entry].offset;
}

bool AllZero(ByteSpan b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
}

std::vector<SafetensorsTensor> SourceTensors() {
  return {
      {"model.embed_tokens.weight", "F32", {64, 200}, TestData(64 * 200 * 4, 1)},  // 3 full chunks + a part
      {"model.norm.weight", "BF16", {300}, TestData(600, 2)},
      {"lm_head.weight", "F16", {128, 130}, TestData(128 * 130 * 2, 3)},
      {"empty", "F32", {0}, {}},
      {"model.layers.0.bias", "I8", {5}, TestData(5, 4)},
      {"scalar", "F64", {}, TestData(8, 5)},
  };
}

class ModelReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    key_ = NewKeyFile(dir_);
    model_ = BuildSafetensors(tensors_);
    path_ = dir_ / "model.hmod";
    TensorEncryptOptions options;
    options.context = {{"model", "tiny"}};
    EncryptModelFile(path_, model_, FileProviders(key_), options);
  }

  Result<std::unique_ptr<ModelReader>> Open(const std::string& path,
                                            std::vector<ContextRequirement> required = {}) {
    return ModelReader::Open(path, FileProviders(key_), std::move(required));
  }
  const SafetensorsTensor& Source(const std::string& name) const {
    return *std::find_if(tensors_.begin(), tensors_.end(), [&](const auto& t) { return t.name == name; });
  }

  TempDir dir_;
  std::string key_, path_;
  const std::vector<SafetensorsTensor> tensors_ = SourceTensors();
  Bytes model_;
};

TEST_F(ModelReaderTest, ListsTheSourceModelsTensors) {
  auto reader = Open(path_);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  const auto& listed = (*reader)->tensors();
  ASSERT_EQ(listed.size(), tensors_.size());
  for (size_t i = 0; i < tensors_.size(); ++i) {  // source order
    EXPECT_EQ(listed[i].name, tensors_[i].name);
    EXPECT_EQ(listed[i].dtype, tensors_[i].dtype);
    EXPECT_EQ(listed[i].shape, tensors_[i].shape);
    EXPECT_EQ(listed[i].bytes, tensors_[i].data.size());
    EXPECT_TRUE(listed[i].encrypted);
    auto found = (*reader)->Find(tensors_[i].name);
    ASSERT_TRUE(found.ok());
    EXPECT_EQ(found->bytes, tensors_[i].data.size());
    auto index = (*reader)->IndexOf(tensors_[i].name);
    ASSERT_TRUE(index.ok());
    EXPECT_EQ(*index, i);
  }
  auto missing = (*reader)->Find("model.nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kUsage);
  EXPECT_THAT(missing.error().message, HasSubstr("model.nope"));
  EXPECT_EQ((*reader)->header().context.at("model"), "tiny");
  EXPECT_THAT((*reader)->opened_by(), HasSubstr("file:"));
}

TEST_F(ModelReaderTest, ReadTensorReturnsTheSourceBytes) {
  auto reader = Open(path_);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  for (const auto& t : tensors_) {
    Bytes got(t.data.size(), 0xAA);
    Status st = (*reader)->ReadTensor(t.name, got);
    ASSERT_TRUE(st.ok()) << t.name << ": " << st.error().message;
    EXPECT_TRUE(got == t.data) << t.name;
  }
}

TEST_F(ModelReaderTest, ReadTensorRangeReturnsTheSourceBytes) {
  auto reader = Open(path_);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  const Bytes& src = Source("model.embed_tokens.weight").data;  // 51200 bytes
  const std::vector<std::pair<uint64_t, size_t>> ranges = {
      {0, 1},        {0, 16384},  {16383, 2},   {16384, 16384}, {100, 40000},
      {51199, 1},    {51200, 0},  {0, 51200},   {49152, 2048},  {32767, 16386}};
  for (const auto& [offset, length] : ranges) {
    Bytes got(length, 0xAA);
    Status st = (*reader)->ReadTensorRange("model.embed_tokens.weight", offset, got);
    ASSERT_TRUE(st.ok()) << offset << "+" << length << ": " << st.error().message;
    EXPECT_TRUE(std::equal(got.begin(), got.end(), src.begin() + static_cast<ptrdiff_t>(offset)))
        << offset << "+" << length;
  }
  Bytes small(3);
  ASSERT_TRUE((*reader)->ReadTensorRange("model.layers.0.bias", 2, small).ok());
  EXPECT_TRUE(std::equal(small.begin(), small.end(), Source("model.layers.0.bias").data.begin() + 2));
}

TEST_F(ModelReaderTest, WrongSizesRangesAndNamesAreUsageErrorsAndWipeTheBuffer) {
  auto reader = Open(path_);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  const uint64_t n = Source("lm_head.weight").data.size();
  auto expect_usage = [](const Status& st, Bytes& buf, const std::string& needle) {
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, ErrorCode::kUsage);
    EXPECT_THAT(st.error().message, HasSubstr(needle));
    EXPECT_TRUE(AllZero(buf));
  };
  Bytes too_small(n - 1, 0xAA), too_big(n + 1, 0xAA), past_end(2, 0xAA), beyond(0), unknown(4, 0xAA);
  expect_usage((*reader)->ReadTensor("lm_head.weight", too_small), too_small, "bytes");
  expect_usage((*reader)->ReadTensor("lm_head.weight", too_big), too_big, "bytes");
  expect_usage((*reader)->ReadTensorRange("lm_head.weight", n - 1, past_end), past_end, "outside");
  expect_usage((*reader)->ReadTensorRange("lm_head.weight", n + 1, beyond), beyond, "outside");
  expect_usage((*reader)->ReadTensor("no.such.tensor", unknown), unknown, "no.such.tensor");
}

TEST_F(ModelReaderTest, WrongKeyIsNoMatchingKey) {
  auto reader = ModelReader::Open(path_, FileProviders(NewKeyFile(dir_, "other.key")));
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.error().code, ErrorCode::kNoMatchingKey) << reader.error().message;
}

TEST_F(ModelReaderTest, TriesEveryProviderInOrder) {
  ProviderList providers = FileProviders(NewKeyFile(dir_, "other.key"));
  providers.push_back(std::move(FileProviders(key_).front()));
  auto reader = ModelReader::Open(path_, std::move(providers));
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  EXPECT_THAT((*reader)->opened_by(), HasSubstr(key_));
}

TEST_F(ModelReaderTest, ChecksTheRequiredContext) {
  auto wrong = Open(path_, {{"model", std::string("llama")}});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, ErrorCode::kContextMismatch);
  auto missing = Open(path_, {{"owner", std::nullopt}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kContextMismatch);
  EXPECT_TRUE(Open(path_, {{"model", std::string("tiny")}, {"model", std::nullopt}}).ok());
}

TEST_F(ModelReaderTest, AWholeFileHmodIsAClearUsageError) {
  ProviderList providers = FileProviders(key_);
  const std::string whole = dir_ / "whole.hmod";
  WriteFile(whole, EncryptBytes(model_, providers, DefaultSuite()));
  auto reader = Open(whole);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.error().code, ErrorCode::kUsage);
  EXPECT_THAT(reader.error().message, HasSubstr("whole file, not per tensor"));
  EXPECT_THAT(reader.error().hint, HasSubstr("--whole-file"));
}

TEST_F(ModelReaderTest, MissingDirectoryAndNonHmodInputs) {
  auto missing = Open(dir_ / "absent.hmod");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kIo);
  auto directory = Open(dir_.path());
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.error().code, ErrorCode::kIo);
  const std::string raw = dir_ / "model.safetensors";
  WriteFile(raw, model_);
  auto plain = Open(raw);
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.error().code, ErrorCode::kFormat);
}

TEST_F(ModelReaderTest, AnEncryptedTensorModifiedAfterOpenFailsAndIsWiped) {
  auto reader = Open(path_);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  const SafetensorsTensor& t = Source("model.embed_tokens.weight");
  Bytes got(t.data.size());
  ASSERT_TRUE((*reader)->ReadTensor(t.name, got).ok());
  // Inside the second chunk's ciphertext: the first chunk still authenticates.
  FlipByteInPlace(path_, StoredOffset(path_, key_, t.name) + kStreamHeaderBytes + kChunkCiphertextBytes + 7);
  std::fill(got.begin(), got.end(), 0xAA);
  Status st = (*reader)->ReadTensor(t.name, got);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kAuthFailed);
  EXPECT_TRUE(AllZero(got));
  Bytes range(20000, 0xAA);
  st = (*reader)->ReadTensorRange(t.name, 10000, range);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kAuthFailed);
  EXPECT_TRUE(AllZero(range));
  // The first chunk alone, and the other tensors, are intact.
  Bytes first(16384);
  ASSERT_TRUE((*reader)->ReadTensorRange(t.name, 0, first).ok());
  EXPECT_TRUE(std::equal(first.begin(), first.end(), t.data.begin()));
  Bytes other(Source("lm_head.weight").data.size());
  ASSERT_TRUE((*reader)->ReadTensor("lm_head.weight", other).ok());
  EXPECT_TRUE(other == Source("lm_head.weight").data);
}

TEST_F(ModelReaderTest, PlainTensorsAreReadAndCheckedOnEveryRead) {
  const std::string path = dir_ / "plain.hmod";
  TensorEncryptOptions options;
  options.plaintext_globs = {"model.norm.*"};
  EncryptModelFile(path, model_, FileProviders(key_), options);
  auto reader = Open(path);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  const SafetensorsTensor& t = Source("model.norm.weight");
  auto desc = (*reader)->Find(t.name);
  ASSERT_TRUE(desc.ok());
  EXPECT_FALSE(desc->encrypted);
  EXPECT_TRUE((*reader)->Find("lm_head.weight")->encrypted);
  Bytes got(t.data.size());
  ASSERT_TRUE((*reader)->ReadTensor(t.name, got).ok());
  EXPECT_TRUE(got == t.data);
  Bytes range(100);
  ASSERT_TRUE((*reader)->ReadTensorRange(t.name, 250, range).ok());
  EXPECT_TRUE(std::equal(range.begin(), range.end(), t.data.begin() + 250));

  // Changed on disk after it was read (and checked) once: still caught, nothing released.
  FlipByteInPlace(path, StoredOffset(path, key_, t.name) + 300);
  std::fill(got.begin(), got.end(), 0xAA);
  Status st = (*reader)->ReadTensor(t.name, got);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kAuthFailed);
  EXPECT_TRUE(AllZero(got));
  std::fill(range.begin(), range.end(), 0xAA);
  st = (*reader)->ReadTensorRange(t.name, 0, range);  // does not even cover the changed byte
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kAuthFailed);
  EXPECT_TRUE(AllZero(range));
}

TEST_F(ModelReaderTest, PublicIndexFilesReadTheSame) {
  const std::string path = dir_ / "public.hmod";
  TensorEncryptOptions options;
  options.public_index = true;
  EncryptModelFile(path, model_, FileProviders(key_), options);
  auto reader = Open(path);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  ASSERT_EQ((*reader)->tensors().size(), tensors_.size());
  for (const auto& t : tensors_) {
    Bytes got(t.data.size());
    ASSERT_TRUE((*reader)->ReadTensor(t.name, got).ok()) << t.name;
    EXPECT_TRUE(got == t.data) << t.name;
  }
}

TEST_F(ModelReaderTest, ReadsGgufModels) {
  GgufSpec spec;
  spec.kvs = {{"general.architecture", GgufValue::String("llama")}};
  spec.tensors = {{"token_embd.weight", {8, 4}, 0, TestData(8 * 4 * 4, 11)},
                  {"output_norm.weight", {40000}, 1, TestData(80000, 12)}};
  const std::string path = dir_ / "model.gguf.hmod";
  EncryptModelFile(path, BuildGguf(spec), FileProviders(key_));
  auto reader = Open(path);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  const auto& listed = (*reader)->tensors();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].name, "token_embd.weight");
  EXPECT_EQ(listed[0].dtype, "F32");
  EXPECT_EQ(listed[0].shape, (std::vector<uint64_t>{8, 4}));
  EXPECT_EQ(listed[1].dtype, "F16");
  for (const auto& t : spec.tensors) {
    Bytes got(t.data.size());
    ASSERT_TRUE((*reader)->ReadTensor(t.name, got).ok()) << t.name;
    EXPECT_TRUE(got == t.data) << t.name;
  }
}

TEST_F(ModelReaderTest, FourThreadsReadDifferentTensorsAtOnce) {
  std::vector<SafetensorsTensor> tensors;
  for (int i = 0; i < 8; ++i) {
    tensors.push_back({"layers." + std::to_string(i) + ".weight", "F32", {25000 + static_cast<uint64_t>(i)},
                       TestData(4 * (25000 + i), 100 + i)});
  }
  const std::string path = dir_ / "threads.hmod";
  EncryptModelFile(path, BuildSafetensors(tensors), FileProviders(key_));
  auto reader = Open(path);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  const ModelReader& r = **reader;

  std::atomic<int> failures{0}, reads{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        // Each thread owns tensors t and t + 4; the first rounds are the first reads of
        // those entries, racing with the other threads' first reads.
        const SafetensorsTensor& src = tensors[static_cast<size_t>(t + 4 * (round % 2))];
        Bytes whole(src.data.size());
        if (!r.ReadTensor(src.name, whole).ok() || whole != src.data) ++failures;
        const uint64_t offset = static_cast<uint64_t>(round) * 3001;
        Bytes part(20000);
        if (!r.ReadTensorRange(src.name, offset, part).ok() ||
            !std::equal(part.begin(), part.end(), src.data.begin() + static_cast<ptrdiff_t>(offset))) {
          ++failures;
        }
        reads += 2;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(reads.load(), 4 * 20 * 2);
}

}  // namespace
}  // namespace hmod::testing
