#include "rotate/rewrap_journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "format/byte_writer.h"
#include "hmod/header.h"

namespace hmod::rotate {
namespace {

// journal = "HMRJ" ‖ u32 version 1 ‖ u64 dev ‖ u64 ino ‖ u64 file size ‖ u32 region length
//           ‖ old region ‖ new region ‖ SHA-256(everything before)
constexpr char kJournalMagic[4] = {'H', 'M', 'R', 'J'};
constexpr size_t kFixedBytes = 4 + 4 + 8 + 8 + 8 + 4;

std::string DirName(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}
std::string BaseName(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

Error IoError(const std::string& what, const std::string& path, int err) {
  return Error{ErrorCode::kIo, what + " " + path + ": " + std::strerror(err), ""};
}

Status SyncDirectory(const std::string& path) {
  const int dfd = ::open(DirName(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return IoError("cannot open the directory of", path, errno);
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0) return IoError("cannot fsync the directory of", path, err);
  return OkStatus();
}

uint32_t U32At(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
bool SameBytes(ByteSpan a, ByteSpan b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}
uint64_t U64At(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

Status WriteAll(int fd, ByteSpan data, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, offset + done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return IoError("cannot write", path, errno);
    done += static_cast<size_t>(n);
  }
  return OkStatus();
}

}  // namespace

std::string JournalPath(const std::string& path) {
  return DirName(path) + "/." + BaseName(path) + ".hmod-rewrap";
}

Status WriteJournal(const std::string& path, int fd, ByteSpan old_region, ByteSpan new_region) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return IoError("cannot stat", path, errno);
  ByteWriter w;
  w.Raw(std::string_view(kJournalMagic, 4));
  w.U32(1);
  w.U64(static_cast<uint64_t>(st.st_dev));
  w.U64(static_cast<uint64_t>(st.st_ino));
  w.U64(static_cast<uint64_t>(st.st_size));
  w.U32(static_cast<uint32_t>(old_region.size()));
  w.Raw(old_region);
  w.Raw(new_region);
  const auto digest = Sha256(w.bytes());
  w.Raw(ByteSpan(digest));

  const std::string jpath = JournalPath(path);
  ::unlink(jpath.c_str());  // a stale one was handled by RecoverJournal under the same lock
  const int jfd = ::open(jpath.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (jfd < 0) return IoError("cannot create the rotation journal", jpath, errno);
  Status s = WriteAll(jfd, w.bytes(), 0, jpath);
  if (s.ok() && ::fsync(jfd) != 0) s = IoError("cannot fsync", jpath, errno);
  ::close(jfd);
  if (s.ok()) s = SyncDirectory(path);
  if (!s.ok()) ::unlink(jpath.c_str());
  return s;
}

Status RemoveJournal(const std::string& path, bool sync_directory) {
  const std::string jpath = JournalPath(path);
  if (::unlink(jpath.c_str()) != 0 && errno != ENOENT) return IoError("cannot remove", jpath, errno);
  return sync_directory ? SyncDirectory(path) : OkStatus();
}

Result<bool> RecoverJournal(const std::string& path, int fd) {
  const std::string jpath = JournalPath(path);
  const int jfd = ::open(jpath.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (jfd < 0) {
    if (errno == ENOENT) return false;
    return IoError("cannot open the rotation journal", jpath, errno);
  }
  Bytes j;
  uint8_t buf[65536];
  for (;;) {
    const ssize_t n = ::read(jfd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(jfd);
      return IoError("cannot read", jpath, err);
    }
    if (n == 0) break;
    j.insert(j.end(), buf, buf + n);
    if (j.size() > 2 * size_t{kMaxRegionBytes} + 128) break;
  }
  ::close(jfd);

  struct stat st {};
  if (::fstat(fd, &st) != 0) return IoError("cannot stat", path, errno);
  bool valid = j.size() >= kFixedBytes + 32 && std::memcmp(j.data(), kJournalMagic, 4) == 0;
  uint32_t region = 0;
  if (valid) {
    region = U32At(j.data() + 32);
    valid = j.size() == kFixedBytes + 2 * size_t{region} + 32 &&
            ConstantTimeEquals(Sha256(ByteSpan(j).first(j.size() - 32)), ByteSpan(j).last(32)) &&
            U64At(j.data() + 8) == static_cast<uint64_t>(st.st_dev) &&
            U64At(j.data() + 16) == static_cast<uint64_t>(st.st_ino) &&
            U64At(j.data() + 24) == static_cast<uint64_t>(st.st_size);
  }
  if (valid) valid = region <= kMaxRegionBytes && U32At(j.data() + 4) == 1;
  if (!valid) {
    HMOD_TRY(RemoveJournal(path));
    return false;
  }
  const ByteSpan old_region = ByteSpan(j).subspan(kFixedBytes, region);
  const ByteSpan new_region = ByteSpan(j).subspan(kFixedBytes + region, region);
  Bytes current(region);
  size_t got = 0;
  while (got < region) {
    const ssize_t n = ::pread(fd, current.data() + got, region - got, got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return IoError("cannot read", path, errno);
    got += static_cast<size_t>(n);
  }
  bool rewritten = false;
  if (!SameBytes(current, new_region) && !SameBytes(current, old_region)) {
    // Torn by a crash mid-write: finish it.
    HMOD_TRY(WriteAll(fd, new_region, 0, path));
    if (::fdatasync(fd) != 0) return IoError("cannot fsync", path, errno);
    rewritten = true;
  }
  HMOD_TRY(RemoveJournal(path));
  return rewritten;
}

void RemoveStaleTemporaries(const std::string& path) {
  const std::string dir = DirName(path);
  std::string prefix = ".";
  prefix += BaseName(path);
  prefix += ".hmod-tmp-";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (const dirent* ent = ::readdir(d)) {
    if (std::strncmp(ent->d_name, prefix.c_str(), prefix.size()) == 0) {
      ::unlinkat(::dirfd(d), ent->d_name, 0);
    }
  }
  ::closedir(d);
}

}  // namespace hmod::rotate
