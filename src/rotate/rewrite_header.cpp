#include "rotate/rewrite_header.h"

#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "hmod/tensor_index.h"
#include "rotate/rewrap_journal.h"

namespace hmod::rotate {

void CrashPointForTesting(const char* point) {
  const char* at = std::getenv("HMOD_TEST_CRASH_AT");
  if (at != nullptr && std::strcmp(at, point) == 0) ::raise(SIGKILL);
}

Status RewriteHeaderInPlace(const std::string& path, int fd, ByteSpan old_region, ByteSpan new_region) {
  if (new_region.size() != kRegionAlign || old_region.size() != kRegionAlign) {
    return MakeError(ErrorCode::kCrypto, "in-place rewrite needs a one-page header region");
  }
  HMOD_TRY(WriteJournal(path, fd, old_region, new_region));
  CrashPointForTesting("journal-written");
  // One page at offset 0 in one call: a process killed during it leaves the old page or the
  // new one, never a mix (the page cache copies a page under its lock). Power loss is what
  // the journal is for.
  ssize_t n;
  do {
    n = ::pwrite(fd, new_region.data(), new_region.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(new_region.size())) {
    const int err = n < 0 ? errno : EIO;
    return Error{ErrorCode::kIo, "cannot rewrite the header of " + path + ": " + std::strerror(err), ""};
  }
  CrashPointForTesting("header-written");
  if (::fdatasync(fd) != 0) {
    return Error{ErrorCode::kIo, "cannot fsync " + path + ": " + std::strerror(errno), ""};
  }
  // No directory fsync after the unlink: if power loss brings the journal back, the next
  // rotation finds the page already new and discards it. Saves one sync (~4 ms here).
  return RemoveJournal(path, /*sync_directory=*/false);
}

Result<uint64_t> RewriteFileWithHeader(const std::string& path, const InputFile& in,
                                       const ParsedHeader& parsed, ByteSpan new_region,
                                       const SigningKey* sign_key, unsigned mode) {
  const Header& h = parsed.header;
  uint64_t body_end = in.size();
  bool is_signed = false;
  std::array<uint8_t, kSignatureTrailerBytes> old_trailer{};
  if (h.layout == Layout::kTensors) {
    HMOD_ASSIGN_OR_RETURN(TensorLayoutInfo info, TensorLayoutOf(h));
    // Entry and index offsets are absolute: the region must keep its length.
    if (new_region.size() != h.region_bytes) {
      return MakeError(ErrorCode::kUnsupported,
                       "the new key set does not fit in this per-tensor file's header region",
                       "use --reencrypt, which lays the file out anew");
    }
    if (info.is_signed) {
      if (sign_key == nullptr) {
        return MakeError(ErrorCode::kUsage,
                         "the file is signed, and a new header needs a new signature",
                         "pass --sign-key FILE (the publisher's signing key)");
      }
      if (body_end < h.region_bytes + kSignatureTrailerBytes) {
        return MakeError(ErrorCode::kFormat, "signed file shorter than its trailer");
      }
      body_end -= kSignatureTrailerBytes;
      is_signed = true;
      // Re-sign only what this publisher signed before: same key, same body (checked below).
      HMOD_TRY(CheckSignatureTrailer(in, parsed));
      HMOD_TRY(in.ReadAt(body_end, old_trailer));
      if (!ConstantTimeEquals(ByteSpan(old_trailer).subspan(5, 32), sign_key->public_key)) {
        return MakeError(ErrorCode::kUsage, "the file is signed by another key than --sign-key",
                         "re-sign with the publisher's key, or re-encrypt to sign anew");
      }
    }
  }
  HMOD_ASSIGN_OR_RETURN(auto out, AtomicFile::Create(path, mode, true));
  HMOD_TRY(out->Write(new_region));
  Sha256Stream body_hash;
  Bytes buf(1 << 20);
  for (uint64_t at = h.region_bytes; at < body_end;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), body_end - at));
    const MutableByteSpan chunk(buf.data(), n);
    HMOD_TRY(in.ReadAt(at, chunk));
    if (is_signed) body_hash.Update(chunk);
    HMOD_TRY(out->Write(chunk));
    at += n;
  }
  uint64_t written = new_region.size() + (body_end - h.region_bytes);
  if (is_signed) {
    const auto body_digest = body_hash.Finish();
    if (!ConstantTimeEquals(body_digest, ByteSpan(old_trailer).subspan(37, 32))) {
      return MakeError(ErrorCode::kAuthFailed,
                       "the file's body does not match its signature: it was changed after signing");
    }
    HMOD_ASSIGN_OR_RETURN(Bytes trailer, MakeSignatureTrailer(*sign_key, new_region, body_digest));
    HMOD_TRY(out->Write(trailer));
    written += trailer.size();
  }
  CrashPointForTesting("new-file-written");
  HMOD_TRY(out->Commit());
  return written;
}

}  // namespace hmod::rotate
