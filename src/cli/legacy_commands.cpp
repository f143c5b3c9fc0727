#include "cli/legacy_commands.h"

#include <cstdio>
#include <cstring>

#include <cstdlib>

#include "hmod/audit_log.h"
#include "hmod/envelope.h"

namespace hmod::cli {

void AddLegacyOptions(CLI::App& sub, LegacyCliOptions& o) {
  sub.add_option("--legacy-key", o.key_file,
                 "Legacy ENCMODEL input: its raw AES-256 key (32 raw bytes, 64 hex digits or an hmod-key-v1\n"
                 "file; mode 0600). ENVMODEL inputs need only AWS credentials (docs/LEGACY.md)")
      ->type_name("FILE");
  sub.add_option("--legacy-aad", o.aad, "Legacy ENCMODEL input: the associated data it was encrypted with")
      ->type_name("STRING");
  sub.add_option("--legacy-aad-file", o.aad_file, "As --legacy-aad, read from FILE (exact bytes)")->type_name("FILE");
}

Result<LegacyKeys> LegacyKeysFromOptions(const LegacyCliOptions& o) {
  LegacyKeys keys;
  keys.key_file = o.key_file;
  if (o.aad && !o.aad_file.empty()) {
    return MakeError(ErrorCode::kUsage, "--legacy-aad and --legacy-aad-file are exclusive");
  }
  if (o.aad) keys.aad = Bytes(o.aad->begin(), o.aad->end());
  if (!o.aad_file.empty()) {
    HMOD_ASSIGN_OR_RETURN(Bytes aad, ReadSmallFile(o.aad_file, 1 << 20));
    keys.aad = std::move(aad);
  }
  return keys;
}

Result<std::optional<LegacyFormat>> SniffedInput::Sniff() {
  sniffed_ = true;
  std::array<uint8_t, kLegacyMagicBytes> magic{};
  if (in_.is_regular()) {
    if (in_.size() < magic.size()) return std::optional<LegacyFormat>();
    HMOD_TRY(in_.ReadAt(0, magic));
    return DetectLegacyFormat(magic);
  }
  ahead_.resize(magic.size());
  HMOD_ASSIGN_OR_RETURN(size_t n, in_.Read(ahead_));
  ahead_.resize(n);
  return DetectLegacyFormat(ahead_);
}

Result<size_t> SniffedInput::Read(MutableByteSpan buf) {
  size_t done = 0;
  if (ahead_pos_ < ahead_.size()) {
    done = std::min(buf.size(), ahead_.size() - ahead_pos_);
    std::memcpy(buf.data(), ahead_.data() + ahead_pos_, done);
    ahead_pos_ += done;
  }
  if (done == buf.size()) return done;
  HMOD_ASSIGN_OR_RETURN(size_t n, in_.Read(buf.subspan(done)));
  return done + n;
}

namespace {

// Names the legacy key in an audit line; it wraps and unwraps nothing itself.
class LegacyKeyRef final : public KeyProvider {
 public:
  LegacyKeyRef(std::string provider, std::string key) : provider_(std::move(provider)), key_(std::move(key)) {}
  std::string provider_id() const override { return provider_; }
  std::string key_id() const override { return key_; }
  std::string description() const override { return provider_ + ":" + key_; }
  bool is_local() const override { return provider_ != "aws-kms"; }
  Result<WrappedKey> Wrap(const SecretBytes&, const WrapContext&) override {
    return MakeError(ErrorCode::kUsage, "legacy keys are read-only");
  }
  Result<SecretBytes> Unwrap(const WrappedKey&, const WrapContext&) override {
    return MakeError(ErrorCode::kNoMatchingKey, "legacy keys open legacy files only");
  }

 private:
  std::string provider_, key_;
};

// Appends one "unwrap" line for the legacy key use, if an audit log is configured.
Status AuditLegacyUse(const std::string& path, const InputFile& in, const LegacyCliOptions& legacy,
                      const LegacyFile* file, const EncryptionContext* context, const std::string& outcome) {
  std::string log_path = path;
  if (log_path.empty() && std::getenv("HMOD_AUDIT_LOG")) log_path = std::getenv("HMOD_AUDIT_LOG");
  if (log_path.empty()) return OkStatus();
  HMOD_ASSIGN_OR_RETURN(auto log, AuditLog::Open(log_path));
  std::string provider = "legacy-key", key = legacy.key_file;
  if (file) {
    key = file->key_id();
    if (file->info().format == LegacyFormat::kEnvModel) provider = "aws-kms";
  } else if (auto info = ReadLegacyInfo(in); info.ok() && info->format == LegacyFormat::kEnvModel) {
    provider = "aws-kms";
    key = info->kms_key_id;
  }
  log->Record("unwrap", LegacyKeyRef(provider, key), in.path(), context, outcome);
  return OkStatus();
}

}  // namespace

int RunLegacy(InputFile& in, LegacyFormat format, const LegacyCliOptions& legacy, const LegacyRunOptions& o) {
  const bool data_on_stdout = !o.verify && o.output == "-";
  auto fail = [&](const Error& e) { return ReportError(e, o.out, data_on_stdout); };
  if (!in.is_regular()) {
    return fail(MakeError(ErrorCode::kUsage,
                          std::string("the input is a legacy ") + LegacyFormatName(format) +
                              " file on a pipe; it must be a seekable file",
                          "its single GCM tag is at the end, so it is read twice: save it to a file first"));
  }
  auto required = ParseRequirements(o.context);
  if (!required.ok()) return fail(required.error());
  auto keys = LegacyKeysFromOptions(legacy);
  if (!keys.ok()) return fail(keys.error());
  // Plaintext model weights: readable by the owner only.
  std::optional<Output> output;
  if (!o.verify) {
    auto opened = OpenOutput(o.output, in, 0600, o.force);
    if (!opened.ok()) return fail(opened.error());
    output = std::move(*opened);
  }
  auto file = LegacyFile::Open(in, *keys);
  if (!file.ok()) {
    if (Status st = AuditLegacyUse(o.audit_log, in, legacy, nullptr, nullptr, ErrorCodeName(file.error().code)); !st.ok()) {
      return fail(st.error());
    }
    return fail(file.error());
  }
  const LegacyInfo& info = (*file)->info();
  const uint64_t total = info.plaintext_bytes;
  ProgressFn progress = MakeProgress(o.verify ? "verifying" : "decrypting", total, o.out.quiet);
  ProgressFn pass1, pass2;
  if (progress) {
    pass1 = [&](uint64_t d) { progress(o.verify ? d : d / 2); };
    pass2 = [&](uint64_t d) { progress(total / 2 + d / 2); };
  }
  const Status authenticated = (*file)->Authenticate(pass1);
  // The ENVMODEL metadata is authenticated (AAD and KMS encryption context) by now.
  EncryptionContext context(info.metadata.begin(), info.metadata.end());
  if (Status st = AuditLegacyUse(o.audit_log, in, legacy, file->get(), &context,
                                 authenticated.ok() ? "ok" : ErrorCodeName(authenticated.error().code));
      !st.ok()) {
    return fail(st.error());
  }
  if (!authenticated.ok()) return fail(authenticated.error());
  if (Status st = CheckContext(context, *required); !st.ok()) return fail(st.error());
  if (output) {
    auto written = (*file)->DecryptTo(output->sink(), pass2);
    if (!written.ok()) return fail(written.error());
    if (Status st = output->Commit(); !st.ok()) return fail(st.error());
  }
  FinishProgress();

  const std::string sha = HexEncode(info.plaintext_sha256);
  if (o.out.json) {
    nlohmann::json j = {{"ok", true},
                        {"input", in.path()},
                        {"legacy_format", LegacyFormatName(format)},
                        {"opened_by", (*file)->opened_by()},
                        {"plaintext_bytes", total},
                        {"plaintext_sha256", sha},
                        {"context", ContextJson(context)}};
    if (o.verify) {
      j["verified"] = true;
    } else {
      j["output"] = o.output;
    }
    if (info.format == LegacyFormat::kEnvModel) j["kms_key_id"] = info.kms_key_id;
    PrintJson(j, data_on_stdout);
  } else if (!o.out.quiet && o.verify) {
    std::printf("OK %s: legacy %s file authentic (GCM tag and recorded SHA-256 %s; %llu bytes, opened by %s)\n",
                in.path().c_str(), LegacyFormatName(format), sha.c_str(), static_cast<unsigned long long>(total),
                (*file)->opened_by().c_str());
  } else if (!o.out.quiet && !data_on_stdout) {
    std::fprintf(stderr, "decrypted legacy %s %s -> %s (%llu bytes, SHA-256 checked, opened by %s)\n",
                 LegacyFormatName(format), in.path().c_str(), o.output.c_str(), static_cast<unsigned long long>(total),
                 (*file)->opened_by().c_str());
  }
  return kExitOk;
}

}  // namespace hmod::cli
