// The C ABI (hmod/hmod.h) end to end: open, list, find, read whole and ranges, and every
// failure as its documented negative code with a message and a wiped buffer.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

#include "hmod/hmod.h"
#include "hmod/tensor_container.h"
#include "support/library_fixture.h"
#include "support/model_builder.h"
#include "support/test_util.h"

namespace hmod::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StrEq;

void EncryptModelFile(const std::string& path, const Bytes& model, ProviderList providers) {
  MemorySource src(model);
  auto layout = ParseSafetensors(src);
  ASSERT_TRUE(layout.ok()) << layout.error().message;
  auto out = AtomicFile::Create(path, 0644, false);
  ASSERT_TRUE(out.ok()) << out.error().message;
  auto r = EncryptModelToContainer(src, *layout, **out, providers, TensorEncryptOptions{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE((*out)->Commit().ok());
}

bool AllZero(const Bytes& b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
}

class CApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    key_ = NewKeyFile(dir_);
    uri_ = "file:" + key_;
    model_ = BuildSafetensors(tensors_);
    path_ = dir_ / "model.hmod";
    EncryptModelFile(path_, model_, FileProviders(key_));
  }
  void TearDown() override { hmod_close(reader_); }

  // Opens path_ with the good key into reader_.
  void OpenGood() {
    const char* keks[] = {uri_.c_str()};
    ASSERT_EQ(hmod_open(path_.c_str(), keks, 1, &reader_), HMOD_OK) << hmod_last_error();
    ASSERT_NE(reader_, nullptr);
  }
  int OpenWith(const std::string& path, const std::string& uri, hmod_reader** out) {
    const char* keks[] = {uri.c_str()};
    return hmod_open(path.c_str(), keks, 1, out);
  }

  TempDir dir_;
  std::string key_, uri_, path_;
  const std::vector<SafetensorsTensor> tensors_ = {
      {"tok_embeddings.weight", "F32", {50, 300}, TestData(50 * 300 * 4, 21)},  // 60000 bytes, 4 chunks
      {"norm.weight", "BF16", {7}, TestData(14, 22)},
      {"scalar", "F64", {}, TestData(8, 23)},
  };
  Bytes model_;
  hmod_reader* reader_ = nullptr;
};

TEST_F(CApiTest, OpensListsFindsAndReads) {
  OpenGood();
  EXPECT_THAT(hmod_last_error(), StrEq(""));
  ASSERT_EQ(hmod_tensor_count(reader_), tensors_.size());
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const auto& src = tensors_[i];
    hmod_tensor_info_t info;
    ASSERT_EQ(hmod_tensor_info(reader_, i, &info), HMOD_OK);
    EXPECT_THAT(info.name, StrEq(src.name));
    EXPECT_THAT(info.dtype, StrEq(src.dtype));
    ASSERT_EQ(info.rank, src.shape.size());
    if (info.rank == 0) {
      EXPECT_EQ(info.shape, nullptr);
    }
    for (size_t d = 0; d < info.rank; ++d) EXPECT_EQ(info.shape[d], src.shape[d]);
    EXPECT_EQ(info.bytes, src.data.size());
    EXPECT_EQ(info.encrypted, 1);

    size_t index = 99;
    ASSERT_EQ(hmod_find_tensor(reader_, src.name.c_str(), &index), HMOD_OK);
    EXPECT_EQ(index, i);

    Bytes got(src.data.size(), 0xAA);
    ASSERT_EQ(hmod_read_tensor(reader_, src.name.c_str(), got.data(), got.size()), HMOD_OK) << hmod_last_error();
    EXPECT_TRUE(got == src.data) << src.name;
  }
}

TEST_F(CApiTest, ReadsRanges) {
  OpenGood();
  const Bytes& src = tensors_[0].data;
  for (const auto& [offset, length] : std::vector<std::pair<uint64_t, size_t>>{
           {0, 1}, {16383, 2}, {16384, 16384}, {1000, 50000}, {59999, 1}, {60000, 0}}) {
    Bytes got(length, 0xAA);
    ASSERT_EQ(hmod_read_tensor_range(reader_, "tok_embeddings.weight", offset, got.data(), got.size()), HMOD_OK)
        << offset << "+" << length << ": " << hmod_last_error();
    EXPECT_TRUE(std::equal(got.begin(), got.end(), src.begin() + static_cast<ptrdiff_t>(offset)));
  }
  // A zero-length read may pass NULL.
  EXPECT_EQ(hmod_read_tensor_range(reader_, "tok_embeddings.weight", 5, nullptr, 0), HMOD_OK);
  Bytes past(2, 0xAA);
  EXPECT_EQ(hmod_read_tensor_range(reader_, "tok_embeddings.weight", 59999, past.data(), past.size()), HMOD_E_USAGE);
  EXPECT_THAT(hmod_last_error(), HasSubstr("outside"));
  EXPECT_TRUE(AllZero(past));
}

TEST_F(CApiTest, ATooSmallOrTooLargeBufferIsUsageAndWiped) {
  OpenGood();
  Bytes small(tensors_[0].data.size() - 1, 0xAA);
  EXPECT_EQ(hmod_read_tensor(reader_, "tok_embeddings.weight", small.data(), small.size()), HMOD_E_USAGE);
  EXPECT_THAT(hmod_last_error(), HasSubstr("buffer of 59999 bytes"));
  EXPECT_TRUE(AllZero(small));
  Bytes big(tensors_[0].data.size() + 1, 0xAA);
  EXPECT_EQ(hmod_read_tensor(reader_, "tok_embeddings.weight", big.data(), big.size()), HMOD_E_USAGE);
  EXPECT_TRUE(AllZero(big));
  // A later success clears the message.
  Bytes ok(tensors_[1].data.size());
  EXPECT_EQ(hmod_read_tensor(reader_, "norm.weight", ok.data(), ok.size()), HMOD_OK);
  EXPECT_THAT(hmod_last_error(), StrEq(""));
}

TEST_F(CApiTest, OpenFailuresReturnTheirCodes) {
  hmod_reader* r = reinterpret_cast<hmod_reader*>(0x1);  // must be reset to NULL on failure

  EXPECT_EQ(OpenWith(path_, "file:" + NewKeyFile(dir_, "other.key"), &r), HMOD_E_NO_MATCHING_KEY);
  EXPECT_EQ(r, nullptr);
  EXPECT_THAT(hmod_last_error(), ::testing::Not(StrEq("")));

  EXPECT_EQ(OpenWith(dir_ / "absent.hmod", uri_, &r), HMOD_E_IO);
  EXPECT_THAT(hmod_last_error(), HasSubstr("absent.hmod"));

  const std::string raw = dir_ / "model.safetensors";
  WriteFile(raw, model_);
  EXPECT_EQ(OpenWith(raw, uri_, &r), HMOD_E_FORMAT);

  ProviderList providers = FileProviders(key_);
  const std::string whole = dir_ / "whole.hmod";
  WriteFile(whole, EncryptBytes(model_, providers, DefaultSuite()));
  EXPECT_EQ(OpenWith(whole, uri_, &r), HMOD_E_USAGE);
  EXPECT_THAT(hmod_last_error(), HasSubstr("whole file"));

  EXPECT_EQ(OpenWith(path_, "nosuchscheme:x", &r), HMOD_E_USAGE);

  const std::string loose = NewKeyFile(dir_, "loose.key");
  ASSERT_EQ(::chmod(loose.c_str(), 0644), 0);
  EXPECT_EQ(OpenWith(path_, "file:" + loose, &r), HMOD_E_KEY_FILE);
  EXPECT_EQ(r, nullptr);
}

TEST_F(CApiTest, NullAndOutOfRangeArgumentsAreUsageErrors) {
  const char* keks[] = {uri_.c_str()};
  hmod_reader* r = nullptr;
  EXPECT_EQ(hmod_open(nullptr, keks, 1, &r), HMOD_E_USAGE);
  EXPECT_EQ(hmod_open(path_.c_str(), keks, 1, nullptr), HMOD_E_USAGE);
  EXPECT_EQ(hmod_open(path_.c_str(), keks, 0, &r), HMOD_E_USAGE);
  EXPECT_EQ(hmod_open(path_.c_str(), nullptr, 1, &r), HMOD_E_USAGE);
  const char* null_kek[] = {nullptr};
  EXPECT_EQ(hmod_open(path_.c_str(), null_kek, 1, &r), HMOD_E_USAGE);
  EXPECT_EQ(r, nullptr);

  hmod_close(nullptr);
  EXPECT_EQ(hmod_tensor_count(nullptr), 0u);
  hmod_tensor_info_t info;
  EXPECT_EQ(hmod_tensor_info(nullptr, 0, &info), HMOD_E_USAGE);
  size_t index = 0;
  EXPECT_EQ(hmod_find_tensor(nullptr, "x", &index), HMOD_E_USAGE);
  uint8_t byte = 0xAA;
  EXPECT_EQ(hmod_read_tensor(nullptr, "x", &byte, 1), HMOD_E_USAGE);
  EXPECT_EQ(byte, 0);

  OpenGood();
  EXPECT_EQ(hmod_tensor_info(reader_, tensors_.size(), &info), HMOD_E_USAGE);
  EXPECT_THAT(hmod_last_error(), HasSubstr("out of range"));
  EXPECT_EQ(hmod_tensor_info(reader_, 0, nullptr), HMOD_E_USAGE);
  EXPECT_EQ(hmod_find_tensor(reader_, "no.such", &index), HMOD_E_USAGE);
  EXPECT_THAT(hmod_last_error(), HasSubstr("no.such"));
  EXPECT_EQ(hmod_find_tensor(reader_, nullptr, &index), HMOD_E_USAGE);
  EXPECT_EQ(hmod_read_tensor(reader_, nullptr, &byte, 1), HMOD_E_USAGE);
  EXPECT_EQ(hmod_read_tensor(reader_, "norm.weight", nullptr, 14), HMOD_E_USAGE);
}

TEST_F(CApiTest, ATamperedTensorIsAuthFailedAndWiped) {
  OpenGood();
  // The first tensor's entry starts right after the header region (FORMAT.md §6.1), which
  // is one 4096-byte block here; byte 100 of the entry is inside its first chunk.
  auto in = InputFile::Open(path_);
  ASSERT_TRUE(in.ok());
  auto parsed = ReadHeader(**in);
  ASSERT_TRUE(parsed.ok());
  ProviderList providers = FileProviders(key_);
  auto file = TensorFile::Open(**in, std::move(*parsed), providers, {});
  ASSERT_TRUE(file.ok());
  const uint64_t at = (*file)->index().entries[*(*file)->Find("tok_embeddings.weight")].offset + 100;
  const int fd = ::open(path_.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  uint8_t b = 0;
  ASSERT_EQ(::pread(fd, &b, 1, static_cast<off_t>(at)), 1);
  b ^= 0x80;
  ASSERT_EQ(::pwrite(fd, &b, 1, static_cast<off_t>(at)), 1);
  ::close(fd);

  Bytes got(tensors_[0].data.size(), 0xAA);
  EXPECT_EQ(hmod_read_tensor(reader_, "tok_embeddings.weight", got.data(), got.size()), HMOD_E_AUTH_FAILED);
  EXPECT_THAT(hmod_last_error(), HasSubstr("authentication failed"));
  EXPECT_TRUE(AllZero(got));
}

TEST_F(CApiTest, ErrorCodesMirrorTheErrorCodeEnum) {
  const std::vector<std::pair<int, ErrorCode>> codes = {
      {HMOD_E_USAGE, ErrorCode::kUsage},
      {HMOD_E_IO, ErrorCode::kIo},
      {HMOD_E_FORMAT, ErrorCode::kFormat},
      {HMOD_E_UNSUPPORTED, ErrorCode::kUnsupported},
      {HMOD_E_NO_MATCHING_KEY, ErrorCode::kNoMatchingKey},
      {HMOD_E_AUTH_FAILED, ErrorCode::kAuthFailed},
      {HMOD_E_CONTEXT_MISMATCH, ErrorCode::kContextMismatch},
      {HMOD_E_KEY_FILE, ErrorCode::kKeyFile},
      {HMOD_E_CRYPTO, ErrorCode::kCrypto},
      {HMOD_E_LIMIT, ErrorCode::kLimit},
  };
  for (const auto& [c, e] : codes) {
    EXPECT_EQ(c, -static_cast<int>(e));
    EXPECT_THAT(hmod_error_name(c), StrEq(ErrorCodeName(e)));
  }
  EXPECT_THAT(hmod_error_name(HMOD_OK), StrEq("ok"));
  EXPECT_THAT(hmod_error_name(HMOD_E_NO_MEMORY), StrEq("no_memory"));
  EXPECT_THAT(hmod_error_name(HMOD_E_INTERNAL), StrEq("internal"));
  EXPECT_THAT(hmod_error_name(7), StrEq("unknown"));
  EXPECT_THAT(hmod_error_name(-13), StrEq("unknown"));
}

TEST_F(CApiTest, LastErrorIsPerThreadAndReadsRunConcurrently) {
  OpenGood();
  Bytes small(1);
  ASSERT_EQ(hmod_read_tensor(reader_, "norm.weight", small.data(), small.size()), HMOD_E_USAGE);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      if (std::strcmp(hmod_last_error(), "") != 0) ++failures;  // nothing failed on this thread
      const auto& src = tensors_[static_cast<size_t>(t) % 2];
      for (int i = 0; i < 10; ++i) {
        Bytes got(src.data.size());
        if (hmod_read_tensor(reader_, src.name.c_str(), got.data(), got.size()) != HMOD_OK || got != src.data) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_THAT(hmod_last_error(), HasSubstr("buffer of 1 bytes"));  // this thread's, untouched
}

}  // namespace
}  // namespace hmod::testing
