// AtomicFile: the output is whole under its final name or absent, and a size reservation
// never shows in the result.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <cstdlib>

#include "hmod/io.h"
#include "support/test_util.h"

namespace hmod {
namespace {

using testing::Exists;
using testing::ReadFile;
using testing::TempDir;
using testing::TestData;

struct stat StatOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st;
}

TEST(AtomicFile, CommitPutsTheWholeFileUnderItsNameAndNothingElse) {
  TempDir dir;
  const Bytes data = TestData(20u << 20, 1);  // several write-behind windows
  auto out = AtomicFile::Create(dir / "out", 0640, false);
  ASSERT_TRUE(out.ok()) << out.error().message;
  for (size_t i = 0; i < data.size(); i += 1u << 20) {
    ASSERT_TRUE((*out)->Write(ByteSpan(data.data() + i, 1u << 20)).ok());
  }
  EXPECT_FALSE(Exists(dir / "out"));  // nothing under the final name before Commit
  ASSERT_TRUE((*out)->Commit().ok());
  EXPECT_EQ(ReadFile(dir / "out"), data);
  EXPECT_EQ(StatOf(dir / "out").st_mode & 0777, 0640u);
  EXPECT_EQ(dir.List(), std::vector<std::string>{"out"});
}

// tmpfs has no uncached writes (RWF_DONTCACHE): the fallback (pwrite and the write-behind
// helper over several windows) must produce the same file.
TEST(AtomicFile, FallbackWithoutUncachedWritesWritesTheSameFile) {
  char templ[] = "/dev/shm/hmod-atomic-XXXXXX";
  if (::mkdtemp(templ) == nullptr) GTEST_SKIP() << "no writable /dev/shm";
  const std::string dir = templ;
  const Bytes data = TestData(80u << 20, 7);  // past the helper's 8-window lag
  {
    auto out = AtomicFile::Create(dir + "/out", 0644, false);
    ASSERT_TRUE(out.ok());
    (*out)->Reserve(data.size());
    for (size_t i = 0; i < data.size(); i += 3u << 20) {
      const size_t n = std::min<size_t>(3u << 20, data.size() - i);
      ASSERT_TRUE((*out)->Write(ByteSpan(data.data() + i, n)).ok());
    }
    ASSERT_TRUE((*out)->Commit().ok());
  }
  EXPECT_EQ(ReadFile(dir + "/out"), data);
  ::unlink((dir + "/out").c_str());
  ::rmdir(dir.c_str());
}

// Any mix of write sizes, page-aligned or not, smaller or larger than a page or a
// write-behind window, makes the same file.
TEST(AtomicFile, AnyWriteSizesMakeTheSameFile) {
  TempDir dir;
  const Bytes data = TestData(3u << 20, 8);
  const size_t sizes[] = {1, 4095, 1, 4096, 4097, 0, 8191, 2097664, 3, 65552, 12288, 100};
  auto out = AtomicFile::Create(dir / "out", 0644, false);
  ASSERT_TRUE(out.ok());
  size_t at = 0;
  for (size_t i = 0; at < data.size(); ++i) {
    const size_t n = std::min(sizes[i % std::size(sizes)], data.size() - at);
    ASSERT_TRUE((*out)->Write(ByteSpan(data.data() + at, n)).ok());
    at += n;
  }
  ASSERT_TRUE((*out)->Commit().ok());
  EXPECT_EQ(ReadFile(dir / "out"), data);
}

TEST(AtomicFile, NotCommittedLeavesNothing) {
  TempDir dir;
  {
    auto out = AtomicFile::Create(dir / "out", 0644, false);
    ASSERT_TRUE(out.ok());
    (*out)->Reserve(4u << 20);
    ASSERT_TRUE((*out)->Write(TestData(100, 2)).ok());
  }
  EXPECT_TRUE(dir.List().empty());
}

TEST(AtomicFile, ReservedSpaceIsReleasedAndNeverRead) {
  TempDir dir;
  const Bytes data = TestData(100000, 3);
  auto out = AtomicFile::Create(dir / "out", 0644, false);
  ASSERT_TRUE(out.ok());
  (*out)->Reserve(64u << 20);
  // The temp file grows only as it is written, whatever was reserved.
  EXPECT_EQ(StatOf((*out)->temp_path()).st_size, 0);
  ASSERT_TRUE((*out)->Write(data).ok());
  EXPECT_EQ(StatOf((*out)->temp_path()).st_size, static_cast<off_t>(data.size()));
  ASSERT_TRUE((*out)->Commit().ok());
  EXPECT_EQ(ReadFile(dir / "out"), data);
  const struct stat st = StatOf(dir / "out");
  // Blocks beyond what was written were given back (the reservation was 64 MiB).
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, 1u << 20);
}

TEST(AtomicFile, ReservingLessThanWrittenIsHarmless) {
  TempDir dir;
  const Bytes data = TestData(300000, 4);
  auto out = AtomicFile::Create(dir / "out", 0644, false);
  ASSERT_TRUE(out.ok());
  (*out)->Reserve(1000);
  ASSERT_TRUE((*out)->Write(data).ok());
  ASSERT_TRUE((*out)->Commit().ok());
  EXPECT_EQ(ReadFile(dir / "out"), data);
}

TEST(AtomicFile, RefusesAnExistingFileUnlessAskedToReplaceIt) {
  TempDir dir;
  testing::WriteFile(dir / "out", TestData(10, 5));
  auto refused = AtomicFile::Create(dir / "out", 0644, false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kIo);
  auto out = AtomicFile::Create(dir / "out", 0644, true);
  ASSERT_TRUE(out.ok());
  ASSERT_TRUE((*out)->Write(TestData(7, 6)).ok());
  EXPECT_EQ(ReadFile(dir / "out"), TestData(10, 5));  // the old file until Commit
  ASSERT_TRUE((*out)->Commit().ok());
  EXPECT_EQ(ReadFile(dir / "out"), TestData(7, 6));
}

}  // namespace
}  // namespace hmod
