// Sources and sinks over file descriptors and memory.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "hmod/io.h"
#include "io/dontcache.h"

namespace hmod {
namespace {

Error IoError(const std::string& what, const std::string& name, int err) {
  return MakeError(ErrorCode::kIo, what + " " + name + ": " + std::strerror(err));
}

// read() until `buf` is full or EOF.
Result<size_t> ReadFull(int fd, MutableByteSpan buf, const std::string& name) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::read(fd, buf.data() + done, buf.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot read", name, errno);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

// preadv2 until `buf` is full; `flags` are RWF_* flags. Where the kernel or filesystem has
// none of them (older kernel, tmpfs: refused before anything is read), plain reads do.
Status PreadFull(int fd, uint64_t offset, MutableByteSpan buf, const std::string& name, int flags = 0) {
  size_t done = 0;
  while (done < buf.size()) {
    struct iovec iov {buf.data() + done, buf.size() - done};
    const ssize_t n = ::preadv2(fd, &iov, 1, static_cast<off_t>(offset + done), flags);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (flags != 0 && (errno == EOPNOTSUPP || errno == EINVAL)) {
        flags = 0;
        continue;
      }
      return IoError("cannot read", name, errno);
    }
    if (n == 0) return MakeError(ErrorCode::kFormat, name + ": unexpected end of file");
    done += static_cast<size_t>(n);
  }
  return OkStatus();
}

}  // namespace

Result<size_t> FdSource::Read(MutableByteSpan buf) { return ReadFull(fd_, buf, name_); }

Status FdSink::Write(ByteSpan data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot write", name_, errno);
    }
    done += static_cast<size_t>(n);
  }
  return OkStatus();
}

Result<size_t> MemorySource::Read(MutableByteSpan buf) {
  const size_t n = std::min(buf.size(), data_.size() - pos_);
  if (n) std::memcpy(buf.data(), data_.data() + pos_, n);
  pos_ += n;
  return n;
}

Status MemorySource::ReadAt(uint64_t offset, MutableByteSpan buf) const {
  if (offset > data_.size() || buf.size() > data_.size() - offset) {
    return MakeError(ErrorCode::kFormat, "unexpected end of data");
  }
  if (!buf.empty()) std::memcpy(buf.data(), data_.data() + offset, buf.size());
  return OkStatus();
}

Result<std::unique_ptr<InputFile>> InputFile::Open(const std::string& path) {
  std::unique_ptr<InputFile> f(new InputFile());
  f->path_ = path;
  if (path == "-") {
    f->fd_ = STDIN_FILENO;
    f->path_ = "<stdin>";
  } else {
    f->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (f->fd_ < 0) return IoError("cannot open", path, errno);
    f->owned_ = true;
  }
  struct stat st {};
  if (::fstat(f->fd_, &st) != 0) return IoError("cannot stat", f->path_, errno);
  if (S_ISDIR(st.st_mode)) return MakeError(ErrorCode::kIo, path + " is a directory");
  f->regular_ = S_ISREG(st.st_mode);
  f->size_ = f->regular_ ? static_cast<uint64_t>(st.st_size) : 0;
  f->dev_ = st.st_dev;
  f->ino_ = st.st_ino;
  if (f->regular_) ::posix_fadvise(f->fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
  return f;
}

InputFile::~InputFile() {
  if (owned_ && fd_ >= 0) ::close(fd_);
}

Result<size_t> InputFile::Read(MutableByteSpan buf) { return ReadFull(fd_, buf, path_); }

Status InputFile::ReadAt(uint64_t offset, MutableByteSpan buf) const {
  if (!regular_) return MakeError(ErrorCode::kUsage, path_ + " is not seekable");
  return PreadFull(fd_, offset, buf, path_);
}

Status InputFile::ReadAtUncached(uint64_t offset, MutableByteSpan buf) const {
  if (!regular_) return ReadAt(offset, buf);
  return PreadFull(fd_, offset, buf, path_, RWF_DONTCACHE);
}

bool IsSameFile(const InputFile& in, const std::string& path) {
  if (path == "-" || !in.is_regular()) return false;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  return st.st_dev == in.dev() && st.st_ino == in.ino();
}

}  // namespace hmod
