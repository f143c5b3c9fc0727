// The signature trailer of per-tensor files (FORMAT.md §6.5).
#include <sodium.h>

#include <cstring>

#include "format/byte_writer.h"
#include "hmod/signature.h"

namespace hmod {
namespace {

constexpr std::string_view kTrailerMagic = "HMSG";
constexpr std::string_view kSignatureLabel = "hmod/v1 signature";

Bytes SignedMessage(ByteSpan region, const std::array<uint8_t, 32>& body_digest) {
  ByteWriter w;
  w.Raw(kSignatureLabel);
  w.U8(0);
  w.Raw(ByteSpan(Sha256(region)));
  w.Raw(ByteSpan(body_digest));
  return std::move(w.bytes());
}

}  // namespace

Result<Bytes> MakeSignatureTrailer(const SigningKey& key, ByteSpan region,
                                   const std::array<uint8_t, 32>& body_digest) {
  const Bytes message = SignedMessage(region, body_digest);
  std::array<uint8_t, crypto_sign_BYTES> sig{};
  if (crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), key.secret.secret().data()) != 0) {
    return MakeError(ErrorCode::kCrypto, "Ed25519 signing failed");
  }
  ByteWriter w;
  w.Raw(kTrailerMagic);
  w.U8(1);
  w.Raw(ByteSpan(key.public_key));
  w.Raw(ByteSpan(body_digest));
  w.Raw(ByteSpan(sig));
  return std::move(w.bytes());
}

Status CheckSignatureTrailer(const PositionalSource& file, const ParsedHeader& parsed) {
  HMOD_ASSIGN_OR_RETURN(TensorLayoutInfo info, TensorLayoutOf(parsed.header));
  const uint64_t trailer_at = info.index_offset + info.index_length;
  if (file.size() != trailer_at + kSignatureTrailerBytes) {
    return MakeError(ErrorCode::kAuthFailed, "signature trailer missing or file length wrong");
  }
  Bytes trailer(kSignatureTrailerBytes);
  HMOD_TRY(file.ReadAt(trailer_at, trailer));
  if (std::memcmp(trailer.data(), kTrailerMagic.data(), 4) != 0 || trailer[4] != 1) {
    return MakeError(ErrorCode::kAuthFailed, "malformed signature trailer");
  }
  std::array<uint8_t, 32> body_digest{};
  std::memcpy(body_digest.data(), trailer.data() + 37, 32);
  const Bytes message = SignedMessage(parsed.region, body_digest);
  if (crypto_sign_verify_detached(trailer.data() + 69, message.data(), message.size(), trailer.data() + 5) != 0) {
    return MakeError(ErrorCode::kAuthFailed, "signature trailer does not verify: the file was tampered with");
  }
  return OkStatus();
}

Status VerifyFileSignature(const PositionalSource& file, const ParsedHeader& parsed,
                           const Ed25519PublicKey& expected) {
  const Header& h = parsed.header;
  if (h.layout != Layout::kTensors) return MakeError(ErrorCode::kUsage, "this file is not signed (whole-file layout)");
  HMOD_ASSIGN_OR_RETURN(TensorLayoutInfo info, TensorLayoutOf(h));
  if (!info.is_signed) return MakeError(ErrorCode::kUsage, "this file is not signed", "encrypt with --sign-key");
  const uint64_t trailer_at = info.index_offset + info.index_length;
  if (trailer_at < h.region_bytes || file.size() != trailer_at + kSignatureTrailerBytes) {
    return MakeError(ErrorCode::kAuthFailed, "signature trailer missing or file length wrong");
  }
  Bytes trailer(kSignatureTrailerBytes);
  HMOD_TRY(file.ReadAt(trailer_at, trailer));
  if (std::memcmp(trailer.data(), kTrailerMagic.data(), 4) != 0 || trailer[4] != 1) {
    return MakeError(ErrorCode::kAuthFailed, "malformed signature trailer");
  }
  // The expected key decides, not the key the file names (anyone can sign with theirs).
  if (!ConstantTimeEquals(ByteSpan(trailer).subspan(5, 32), expected)) {
    return MakeError(ErrorCode::kAuthFailed, "signed by a different key than the one given");
  }
  // Recompute the body digest: every byte between the region and the trailer.
  Sha256Stream body;
  Bytes buf(1 << 20);
  for (uint64_t at = h.region_bytes; at < trailer_at;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), trailer_at - at));
    HMOD_TRY(file.ReadAt(at, MutableByteSpan(buf.data(), n)));
    body.Update(ByteSpan(buf.data(), n));
    at += n;
  }
  const auto body_digest = body.Finish();
  if (!ConstantTimeEquals(body_digest, ByteSpan(trailer).subspan(37, 32))) {
    return MakeError(ErrorCode::kAuthFailed, "signature does not cover this file's contents (modified after signing)");
  }
  const Bytes message = SignedMessage(parsed.region, body_digest);
  if (crypto_sign_verify_detached(trailer.data() + 69, message.data(), message.size(), expected.data()) != 0) {
    return MakeError(ErrorCode::kAuthFailed, "invalid publisher signature");
  }
  return OkStatus();
}

}  // namespace hmod
