// InputFile's positional reads, and the uncached ones that keep a cold file's page cache
// fit for the sequential pass after them.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hmod/io.h"
#include "io/dontcache.h"
#include "support/test_util.h"

namespace hmod {
namespace {

using testing::TempDir;
using testing::TestData;

// Whether the page at `offset` of `path` is in the page cache.
bool Cached(const std::string& path, uint64_t offset) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  const long page = ::sysconf(_SC_PAGESIZE);
  const uint64_t at = offset - offset % static_cast<uint64_t>(page);
  void* p = ::mmap(nullptr, static_cast<size_t>(page), PROT_READ, MAP_SHARED, fd, static_cast<off_t>(at));
  EXPECT_NE(p, MAP_FAILED);
  unsigned char vec = 0;
  EXPECT_EQ(::mincore(p, static_cast<size_t>(page), &vec), 0);
  ::munmap(p, static_cast<size_t>(page));
  ::close(fd);
  return (vec & 1) != 0;
}

void Evict(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ::fdatasync(fd);
  ASSERT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  ::close(fd);
}

// Asks the kernel directly (one byte at offset 0, which may stay cached; the test looks
// further in).
bool KernelHasUncachedReads(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  uint8_t b = 0;
  struct iovec iov {&b, 1};
  const bool ok = ::preadv2(fd, &iov, 1, 0, RWF_DONTCACHE) == 1;
  ::close(fd);
  return ok;
}

TEST(InputFile, UncachedReadsReadTheSameBytes) {
  TempDir dir;
  const Bytes data = TestData(3u << 20, 11);
  testing::WriteFile(dir / "f", data);
  auto in = InputFile::Open(dir / "f");
  ASSERT_TRUE(in.ok());
  for (uint64_t offset : {uint64_t{0}, uint64_t{4095}, uint64_t{1u << 20}, uint64_t{(3u << 20) - 7}}) {
    Bytes got(7), want(data.begin() + static_cast<long>(offset), data.begin() + static_cast<long>(offset) + 7);
    ASSERT_TRUE((*in)->ReadAtUncached(offset, got).ok()) << offset;
    EXPECT_EQ(got, want) << offset;
  }
  Bytes past(8);
  auto st = (*in)->ReadAtUncached((3u << 20) - 7, past);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kFormat);
}

TEST(InputFile, UncachedReadsLeaveNoNewPageCached) {
  TempDir dir;
  testing::WriteFile(dir / "f", TestData(4u << 20, 12));
  Evict(dir / "f");
  if (Cached(dir / "f", 2u << 20)) GTEST_SKIP() << "cannot evict the file's pages here";
  if (!KernelHasUncachedReads(dir / "f")) GTEST_SKIP() << "no RWF_DONTCACHE here (Linux 6.14+)";
  auto in = InputFile::Open(dir / "f");
  ASSERT_TRUE(in.ok());
  Bytes pad(100);
  ASSERT_TRUE((*in)->ReadAtUncached(2u << 20, pad).ok());
  EXPECT_FALSE(Cached(dir / "f", 2u << 20));
  // The control: an ordinary read of another cold page does leave it cached.
  ASSERT_TRUE((*in)->ReadAt(3u << 20, pad).ok());
  EXPECT_TRUE(Cached(dir / "f", 3u << 20));
}

}  // namespace
}  // namespace hmod
