// Data keys: generate, wrap to every provider, unwrap, check the header MAC (FORMAT.md §3).
#include <cstring>

#include "hmod/envelope.h"

namespace hmod {
namespace {

constexpr std::string_view kMacLabel = "hmod/v1 header mac";
constexpr std::string_view kPayloadLabel = "hmod/v1 payload key";
constexpr std::string_view kIndexMacLabel = "hmod/v1 index mac";
constexpr size_t kMaxUnwrapAttemptsPerProvider = 4;

}  // namespace

Result<FileKeys> DeriveFileKeys(const SecretBytes& data_key, ByteSpan file_id) {
  if (data_key.size() != kDataKeyBytes) return MakeError(ErrorCode::kCrypto, "data key must be 32 bytes");
  HMOD_ASSIGN_OR_RETURN(SecretBytes prk, HkdfExtract(HashAlg::kSha512, file_id, data_key.secret()));
  FileKeys keys;
  HMOD_ASSIGN_OR_RETURN(keys.mac_key, HkdfExpand(HashAlg::kSha512, prk.secret(), AsBytes(kMacLabel), 32));
  HMOD_ASSIGN_OR_RETURN(keys.payload_key,
                        HkdfExpand(HashAlg::kSha512, prk.secret(), AsBytes(kPayloadLabel), 32));
  HMOD_ASSIGN_OR_RETURN(keys.index_mac_key,
                        HkdfExpand(HashAlg::kSha512, prk.secret(), AsBytes(kIndexMacLabel), 32));
  return keys;
}

Result<SealedHeader> SealHeaderWithKey(Header header, const SecretBytes& data_key,
                                       ProviderList& providers) {
  if (providers.empty()) {
    return MakeError(ErrorCode::kUsage, "no key provider given", "pass at least one --kek URI");
  }
  if (providers.size() > kMaxWrappedKeys) return MakeError(ErrorCode::kLimit, "more than 64 key providers");
  HMOD_TRY(ValidateContext(header.context));
  const WrapContext wctx{header.file_id, &header.context};
  header.wrapped_keys.clear();
  for (auto& p : providers) {
    HMOD_ASSIGN_OR_RETURN(WrappedKey wk, p->Wrap(data_key, wctx));
    header.wrapped_keys.push_back(std::move(wk));
  }
  HMOD_ASSIGN_OR_RETURN(FileKeys keys, DeriveFileKeys(data_key, header.file_id));
  SealedHeader sealed;
  HMOD_ASSIGN_OR_RETURN(sealed.region, EncodeHeaderRegion(header, keys.mac_key));
  HMOD_ASSIGN_OR_RETURN(Bytes core, EncodeCore(header));
  sealed.core_digest = Sha256(core);
  header.region_bytes = static_cast<uint32_t>(sealed.region.size());
  sealed.header = std::move(header);
  sealed.data_key = SecretBytes::CopyFrom(data_key.secret());
  sealed.payload_key = std::move(keys.payload_key);
  return sealed;
}

Status ResealHeader(SealedHeader& sealed) {
  HMOD_ASSIGN_OR_RETURN(FileKeys keys, DeriveFileKeys(sealed.data_key, sealed.header.file_id));
  sealed.header.region_bytes = 0;  // recompute the smallest region that fits
  HMOD_ASSIGN_OR_RETURN(sealed.region, EncodeHeaderRegion(sealed.header, keys.mac_key));
  HMOD_ASSIGN_OR_RETURN(Bytes core, EncodeCore(sealed.header));
  sealed.core_digest = Sha256(core);
  sealed.header.region_bytes = static_cast<uint32_t>(sealed.region.size());
  return OkStatus();
}

Result<SealedHeader> SealNewHeader(Layout layout, Suite suite, const EncryptionContext& context,
                                   std::vector<Extension> extensions, ProviderList& providers) {
  Header h;
  h.layout = layout;
  h.suite = suite;
  RandomFill(h.file_id);
  h.context = context;
  h.extensions = std::move(extensions);
  SecretBytes data_key = SecretBytes::Random(kDataKeyBytes);
  return SealHeaderWithKey(std::move(h), data_key, providers);
}

Result<OpenedHeader> OpenHeader(ParsedHeader parsed, ProviderList& providers) {
  const Header& h = parsed.header;
  const WrapContext wctx{h.file_id, &h.context};
  std::optional<Error> failure;
  for (auto& provider : providers) {
    size_t attempts = 0;
    std::vector<WrappedKey> records = h.wrapped_keys;
    for (auto& r : provider->ExternalRecords()) records.push_back(std::move(r));
    for (const auto& record : records) {
      if (record.provider_id != provider->provider_id()) continue;
      // FORMAT.md §3.3: bound the work a hostile file can cause (Argon2id per pass record).
      if (++attempts > kMaxUnwrapAttemptsPerProvider) {
        if (!failure) {
          failure = MakeError(ErrorCode::kLimit, "more than 4 wrapped keys for " +
                                                     provider->description() + "; not trying more");
        }
        break;
      }
      auto dk = provider->Unwrap(record, wctx);
      if (!dk.ok()) {
        if (dk.error().code != ErrorCode::kNoMatchingKey && !failure) failure = dk.error();
        continue;
      }
      HMOD_ASSIGN_OR_RETURN(FileKeys keys, DeriveFileKeys(*dk, h.file_id));
      const auto mac = HmacSha256(keys.mac_key.secret(), parsed.authenticated());
      // FORMAT.md §3.2: constant-time comparison; nothing from the header is trusted before.
      if (!ConstantTimeEquals(mac, parsed.mac)) {
        return MakeError(ErrorCode::kAuthFailed,
                         "header authentication failed: the file was tampered with or corrupted");
      }
      OpenedHeader opened;
      opened.core_digest = Sha256(parsed.core());
      opened.data_key = std::move(*dk);
      opened.payload_key = std::move(keys.payload_key);
      opened.opened_by = provider->description();
      opened.parsed = std::move(parsed);
      return opened;
    }
  }
  if (failure) {
    Error e = *failure;
    if (e.code == ErrorCode::kAuthFailed && e.message == "authentication failed") {
      e.message = "a wrapped data key failed to open: the file was tampered with";  // a bare AEAD failure
    }
    return e;
  }
  std::string who;
  for (const auto& k : h.wrapped_keys) who += (who.empty() ? "" : ", ") + k.provider_id + ":" + k.key_id;
  return MakeError(ErrorCode::kNoMatchingKey, "no key provider could open this file",
                   "it can be opened by: " + who + " (see: hmodctl inspect FILE)");
}

Result<ContextRequirement> ParseContextRequirement(const std::string& text) {
  ContextRequirement r;
  auto eq = text.find('=');
  r.key = text.substr(0, eq);
  if (eq != std::string::npos) r.value = text.substr(eq + 1);
  if (r.key.empty()) {
    return MakeError(ErrorCode::kUsage, "bad --context '" + text + "'", "use key=value or key");
  }
  return r;
}

Status CheckContext(const EncryptionContext& context,
                    const std::vector<ContextRequirement>& required) {
  for (const auto& r : required) {
    auto it = context.find(r.key);
    if (it == context.end()) {
      return MakeError(ErrorCode::kContextMismatch,
                       "encryption context has no key '" + r.key + "'");
    }
    if (r.value && it->second != *r.value) {
      return MakeError(ErrorCode::kContextMismatch,
                       "encryption context '" + r.key + "' is '" + it->second + "', expected '" +
                           *r.value + "'");
    }
  }
  return OkStatus();
}

}  // namespace hmod
