// One file's rotation: lock, recover, plan, then re-wrap or re-encrypt (docs/ROTATION.md).
#include "hmod/rotate.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "hmod/envelope.h"
#include "hmod/tensor_index.h"
#include "rotate/key_set.h"
#include "rotate/reencrypt.h"
#include "rotate/rewrap_journal.h"
#include "rotate/rewrite_header.h"

namespace hmod {
namespace {

using rotate::KeySetPlan;

// Holds the file's rotation lock (flock) for the lifetime of the object.
class LockedFile {
 public:
  static Result<LockedFile> Open(const std::string& path) {
    LockedFile f;
    f.fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (f.fd_ < 0 && (errno == EACCES || errno == EROFS)) {
      f.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // read-only: rewrite by rename only
    } else {
      f.writable_ = f.fd_ >= 0;
    }
    if (f.fd_ < 0) return Error{ErrorCode::kIo, "cannot open " + path + ": " + std::strerror(errno), ""};
    struct stat st {};
    if (::fstat(f.fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
      return MakeError(ErrorCode::kUsage, path + " is not a regular file");
    }
    f.mode_ = st.st_mode & 07777;
    if (::flock(f.fd_, LOCK_EX | LOCK_NB) != 0) {
      return MakeError(ErrorCode::kIo, "another rotation is working on " + path,
                       "wait for it to finish, then run again: finished files are skipped");
    }
    return f;
  }
  LockedFile(LockedFile&& o) noexcept : fd_(o.fd_), writable_(o.writable_), mode_(o.mode_) { o.fd_ = -1; }
  ~LockedFile() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  int fd() const { return fd_; }
  bool writable() const { return writable_; }
  unsigned mode() const { return mode_; }

 private:
  LockedFile() = default;
  int fd_ = -1;
  bool writable_ = false;
  unsigned mode_ = 0644;
};

std::vector<std::string> Describe(const std::vector<WrappedKey>& keys) {
  std::vector<std::string> out;
  for (const auto& k : keys) out.push_back(DescribeWrappedKey(k));
  return out;
}

std::vector<std::string> Describe(const KeySetPlan& plan) {
  std::vector<std::string> out;
  for (const auto& s : plan.slots) out.push_back(rotate::DescribeSlot(s));
  return out;
}

bool IsSigned(const Header& h) {
  if (h.layout != Layout::kTensors) return false;
  auto info = TensorLayoutOf(h);
  return info.ok() && info->is_signed;
}

}  // namespace

const char* RotateOutcomeName(RotateOutcome outcome) {
  switch (outcome) {
    case RotateOutcome::kRotated: return "rotated";
    case RotateOutcome::kSkipped: return "skipped";
    case RotateOutcome::kWouldRotate: return "would-rotate";
  }
  return "?";
}

std::string DescribeWrappedKey(const WrappedKey& key) { return key.provider_id + ":" + key.key_id; }

Result<RotateResult> RotateFile(const std::string& given_path, RotateRequest& request) {
  RotateResult result;
  // A symbolic link is followed: the file it names is rotated, and the link stays a link
  // (a new file renamed over the link itself would replace it).
  char resolved[PATH_MAX];
  if (::realpath(given_path.c_str(), resolved) == nullptr) {
    return Error{ErrorCode::kIo, "cannot open " + given_path + ": " + std::strerror(errno), ""};
  }
  const std::string path = resolved;
  HMOD_ASSIGN_OR_RETURN(LockedFile locked, LockedFile::Open(path));
  if (!request.dry_run) {
    // A killed earlier run: finish its header write, drop its temporary files.
    HMOD_ASSIGN_OR_RETURN(result.recovered, rotate::RecoverJournal(path, locked.fd()));
    rotate::RemoveStaleTemporaries(path);
  }
  HMOD_ASSIGN_OR_RETURN(auto in, InputFile::Open(path));
  if (in->dev() == 0 && in->ino() == 0) return MakeError(ErrorCode::kIo, "cannot stat " + path);
  HMOD_ASSIGN_OR_RETURN(ParsedHeader parsed, ReadHeader(*in));
  const Header& h = parsed.header;
  result.keys_before = Describe(h.wrapped_keys);
  result.file_id = HexEncode(h.file_id);

  HMOD_ASSIGN_OR_RETURN(KeySetPlan plan, rotate::PlanKeySet(h, request.change));
  result.keys_after = Describe(plan);
  const bool reencrypt = request.mode == RotateMode::kReencrypt;
  if (!reencrypt && !plan.changed) {
    result.outcome = RotateOutcome::kSkipped;
    result.reason = "already has the target key set";
    return result;
  }
  if (reencrypt && request.done_file_ids && request.done_file_ids->count(result.file_id)) {
    result.outcome = RotateOutcome::kSkipped;
    result.reason = "already re-encrypted by this rotation (--state)";
    return result;
  }
  if (reencrypt) HMOD_TRY(rotate::AssignProvidersForReencrypt(plan, request.open));

  if (reencrypt) {
    result.method = "re-encrypt";
    if (request.dry_run) {
      HMOD_ASSIGN_OR_RETURN(OpenedHeader opened, OpenHeader(parsed, request.open));
      result.opened_by = opened.opened_by;
      result.outcome = RotateOutcome::kWouldRotate;
      return result;
    }
    HMOD_ASSIGN_OR_RETURN(auto out, AtomicFile::Create(path, locked.mode(), true));
    out->Reserve(in->size() + (1u << 20));  // the same layout again: about the same size
    HMOD_ASSIGN_OR_RETURN(result.bytes_written,
                          rotate::Reencrypt(path, parsed, plan, request, *out, result.opened_by, result.file_id));
    rotate::CrashPointForTesting("new-file-written");
    HMOD_TRY(out->Commit());
    result.outcome = RotateOutcome::kRotated;
    result.reason = "new data key; every payload byte re-encrypted";
    return result;
  }

  // Re-wrap: the same data key, wrapped for the new set; the core and payload stay as they are.
  HMOD_ASSIGN_OR_RETURN(OpenedHeader opened, OpenHeader(parsed, request.open));
  result.opened_by = opened.opened_by;
  const bool in_place = locked.writable() && !IsSigned(h) && parsed.region.size() == kRegionAlign;
  if (request.dry_run) {
    result.method = in_place ? "in-place header" : "new file";
    result.outcome = RotateOutcome::kWouldRotate;
    return result;
  }
  const WrapContext wctx{h.file_id, &h.context};
  Header next = h;
  HMOD_ASSIGN_OR_RETURN(next.wrapped_keys, rotate::BuildRecords(plan, opened.data_key, wctx, false));
  HMOD_ASSIGN_OR_RETURN(FileKeys keys, DeriveFileKeys(opened.data_key, h.file_id));
  HMOD_ASSIGN_OR_RETURN(Bytes region, EncodeHeaderRegion(next, keys.mac_key));
  HMOD_ASSIGN_OR_RETURN(ParsedHeader check, ParseHeader(region));
  if (!ConstantTimeEquals(check.core(), parsed.core())) {
    return MakeError(ErrorCode::kCrypto, "re-encoding the header changed its core; nothing written");
  }
  if (in_place && region.size() == kRegionAlign) {
    HMOD_TRY(rotate::RewriteHeaderInPlace(path, locked.fd(), parsed.region, region));
    result.method = "in-place header";
    result.bytes_written = region.size();
  } else {
    HMOD_ASSIGN_OR_RETURN(result.bytes_written,
                          rotate::RewriteFileWithHeader(path, *in, parsed, region, request.sign_key, locked.mode()));
    result.method = "new file";
  }
  result.outcome = RotateOutcome::kRotated;
  result.reason = "data key re-wrapped; payload unchanged";
  return result;
}

}  // namespace hmod
