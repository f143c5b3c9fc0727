// Small secret files (key files): mode checks, whole reads, 0600 creation.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "hmod/io.h"

namespace hmod {

Status CheckPrivateFileMode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return MakeError(ErrorCode::kKeyFile, "cannot read key file " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return MakeError(ErrorCode::kKeyFile, path + " is not a regular file");
  if (st.st_mode & 077) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return MakeError(ErrorCode::kKeyFile,
                     "key file " + path + " has mode " + mode + ": it must not be accessible by group or others",
                     "run: chmod 600 " + path);
  }
  return OkStatus();
}

Result<Bytes> ReadSmallFile(const std::string& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return MakeError(ErrorCode::kKeyFile, "cannot open " + path + ": " + std::strerror(errno));
  Bytes out(max_bytes + 1);
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  if (done > max_bytes) return MakeError(ErrorCode::kKeyFile, path + " is too large for a key file");
  out.resize(done);
  return out;
}

Status WriteNewPrivateFile(const std::string& path, ByteSpan data) {
  HMOD_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(path, 0600, /*overwrite=*/false));
  HMOD_TRY(file->Write(data));
  HMOD_TRY(file->Commit());
  return OkStatus();
}

}  // namespace hmod
