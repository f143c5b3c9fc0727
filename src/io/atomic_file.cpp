// Atomic output: temp file in the target directory -> write -> fsync -> rename -> fsync dir.
// Temp files are removed on failure, on destruction and on SIGINT/SIGTERM/SIGHUP.
#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>

#include "hmod/io.h"
#include "io/dontcache.h"
#include "io/write_behind.h"

namespace hmod {
namespace {

// Paths the signal handler must unlink. Fixed storage: the handler may not allocate.
constexpr int kCleanupSlots = 64;
constexpr size_t kMaxPath = 4096;
std::array<std::atomic<bool>, kCleanupSlots> g_slot_used{};
char g_slot_path[kCleanupSlots][kMaxPath];
std::mutex g_slot_mu;

extern "C" void CleanupAndReraise(int sig) {
  for (int i = 0; i < kCleanupSlots; ++i) {
    if (g_slot_used[i].load()) ::unlink(g_slot_path[i]);
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void InstallHandlersOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction sa {};
      sa.sa_handler = CleanupAndReraise;
      sigemptyset(&sa.sa_mask);
      ::sigaction(sig, &sa, nullptr);
    }
  });
}

int RegisterCleanup(const std::string& path) {
  if (path.size() >= kMaxPath) return -1;
  std::lock_guard lock(g_slot_mu);
  for (int i = 0; i < kCleanupSlots; ++i) {
    if (!g_slot_used[i].load()) {
      std::memcpy(g_slot_path[i], path.c_str(), path.size() + 1);
      g_slot_used[i].store(true);
      return i;
    }
  }
  return -1;
}

void UnregisterCleanup(int slot) {
  if (slot >= 0) g_slot_used[slot].store(false);
}

std::string DirName(const std::string& path) {
  auto pos = path.rfind('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

std::string BaseName(const std::string& path) {
  auto pos = path.rfind('/');
  return pos == std::string::npos ? path : path.substr(pos + 1);
}

Error IoError(const std::string& what, const std::string& name, int err) {
  return MakeError(ErrorCode::kIo, what + " " + name + ": " + std::strerror(err));
}

}  // namespace

Result<std::unique_ptr<AtomicFile>> AtomicFile::Create(const std::string& path, unsigned mode,
                                                       bool overwrite) {
  if (path.empty() || path.back() == '/') return MakeError(ErrorCode::kUsage, "bad output path");
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return MakeError(ErrorCode::kIo, path + " is a directory");
    if (!overwrite) {
      return MakeError(ErrorCode::kIo, "output " + path + " already exists",
                       "remove it first or pass --force");
    }
  }
  InstallHandlersOnce();
  std::unique_ptr<AtomicFile> f(new AtomicFile());
  f->path_ = path;
  f->overwrite_ = overwrite;
  const std::string dir = DirName(path);
  for (int attempt = 0; attempt < 16; ++attempt) {
    f->temp_path_ = dir + "/." + BaseName(path) + ".hmod-tmp-" + HexEncode(RandomBytes(6));
    f->fd_ = ::open(f->temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (f->fd_ >= 0 || errno != EEXIST) break;
  }
  if (f->fd_ < 0) return IoError("cannot create a temporary file in", dir, errno);
  f->cleanup_slot_ = RegisterCleanup(f->temp_path_);
  f->write_behind_ = std::make_unique<detail::WriteBehind>(f->fd_);
  return f;
}

AtomicFile::AtomicFile() = default;

AtomicFile::~AtomicFile() {
  write_behind_.reset();
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
  UnregisterCleanup(cleanup_slot_);
}

// Uncached buffered writes (Linux 6.14+; ext4, xfs, btrfs...): the kernel starts writeback
// as it goes and frees each page once it is on disk, so the final fsync has almost nothing
// left and the output does not fill the page cache. Measured here: 1 GiB written and
// fsynced in 0.30 s, against 0.50-2.7 s for plain writes (fresh pages are slow on this VM).
ssize_t AtomicFile::WriteSome(ByteSpan data) {
  const auto offset = static_cast<off_t>(written_);
  if (uncached_) {
    struct iovec iov {const_cast<uint8_t*>(data.data()), data.size()};
    const ssize_t n = ::pwritev2(fd_, &iov, 1, offset, RWF_DONTCACHE);
    // An older kernel, or a filesystem without it (tmpfs, NFS...): fall back to plain
    // writes and our own write-behind. The flag is checked before anything is written.
    if (n >= 0 || (errno != EOPNOTSUPP && errno != EINVAL)) return n;
    uncached_ = false;
  }
  return ::pwrite(fd_, data.data(), data.size(), offset);
}

Status AtomicFile::Write(ByteSpan data) {
  while (!data.empty()) {
    const ssize_t n = WriteSome(data);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot write", temp_path_, errno);
    }
    data = data.subspan(static_cast<size_t>(n));
    written_ += static_cast<uint64_t>(n);
  }
  if (!uncached_) write_behind_->Written(written_);
  return OkStatus();
}

// Allocating the blocks up front spares the filesystem its delayed allocation on every
// write (ext4: ~10% of an encrypt's CPU) and keeps the file in few extents. KEEP_SIZE: the
// file still grows only as it is written.
void AtomicFile::Reserve(uint64_t bytes) {
  if (bytes > written_ && ::fallocate(fd_, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(bytes)) == 0) {
    reserved_ = bytes;
  }
}

Status AtomicFile::Commit() {
  write_behind_->Stop();
  // Release blocks reserved past the end (truncating to the same size frees them).
  if (reserved_ > written_ && ::ftruncate(fd_, static_cast<off_t>(written_)) != 0) {
    return IoError("cannot truncate", temp_path_, errno);
  }
  if (::fsync(fd_) != 0) return IoError("cannot fsync", temp_path_, errno);
  if (::close(fd_) != 0) {
    fd_ = -1;
    return IoError("cannot close", temp_path_, errno);
  }
  fd_ = -1;
  // Without --force, never replace a file that appeared while we were writing.
  int rc = overwrite_ ? ::rename(temp_path_.c_str(), path_.c_str())
                      : ::renameat2(AT_FDCWD, temp_path_.c_str(), AT_FDCWD, path_.c_str(),
                                    RENAME_NOREPLACE);
  if (rc != 0) {
    return IoError(errno == EEXIST ? "refusing to replace" : "cannot rename onto", path_, errno);
  }
  committed_ = true;
  UnregisterCleanup(cleanup_slot_);
  cleanup_slot_ = -1;
  // Make the rename itself durable.
  int dfd = ::open(DirName(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return OkStatus();
}

}  // namespace hmod
