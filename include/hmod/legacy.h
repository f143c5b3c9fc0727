// Legacy model files (docs/LEGACY.md): the two formats of the "naive" whole-file approach
// this tool replaces, read strictly and migrated to .hmod.
//
//   ENCMODEL  "ENCMODEL" ‖ BE32 n ‖ n bytes JSON metadata ‖ nonce(12) ‖ AES-256-GCM(ct ‖ tag)
//             raw 32-byte key; optional caller-chosen associated data
//   ENVMODEL  "ENVMODEL" ‖ BE32 n ‖ n bytes JSON envelope ‖ AES-256-GCM(ct ‖ tag)
//             data key wrapped by AWS KMS with the metadata as encryption context; the AAD is
//             Python's json.dumps(metadata)
//
// A legacy file is one GCM message with a single tag at the end, so it is read in two passes
// over a seekable file, in constant memory (plus 32 bytes per 4 MiB of ciphertext):
//   pass 1  Authenticate(): GCM-decrypts everything into a scratch buffer that is wiped and
//           discarded, checks the tag and the recorded plaintext SHA-256, and remembers a
//           SHA-256 of every 4 MiB ciphertext block;
//   pass 2  plaintext(): AES-256-CTR over the same ciphertext (GCM's own counter blocks,
//           starting at J0+1), each block checked against its pass-1 digest before a byte of it
//           is released. A file changed between the passes fails with kAuthFailed.
// No plaintext is ever written anywhere but the caller's sink.
//
// ---------------------------------------------------------------------------------------------
// For `hmodctl rotate --from-legacy` (src/cli/cmd_rotate.cpp), call MigrateLegacyFile:
//
//   hmod::LegacyKeys legacy;                      // ENCMODEL: key file (+ AAD); ENVMODEL: nothing
//   legacy.key_file = legacy_key_path;            // --legacy-key FILE (may stay empty for ENVMODEL)
//   if (aad) legacy.aad = hmod::Bytes(aad->begin(), aad->end());   // --legacy-aad STRING
//   hmod::LegacyMigrationOptions mo;              // output defaults to PATH + ".hmod"
//   mo.output = explicit_output_or_empty;         // -o
//   mo.keep_legacy = keep;                        // default: PATH is removed after success
//   mo.context = extra_context;                   // --context k=v (added to ENVMODEL metadata)
//   mo.stream.progress = progress;                // optional
//   auto m = hmod::MigrateLegacyFile(path, legacy, providers /* ProviderList from --kek */, mo);
//   if (!m.ok()) return fail(m.error());          // nothing was written, PATH untouched
//   // m->output, m->layout, m->model_format, m->tensors, m->plaintext_bytes, m->plaintext_sha256,
//   // m->legacy_removed, m->already_migrated, m->header (the new file's header: context, keys)
//
// Use IsLegacyFile(path) to decide whether a rotate input is legacy at all.
// ---------------------------------------------------------------------------------------------
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hmod/chunked_stream.h"
#include "hmod/container.h"
#include "hmod/io.h"
#include "hmod/key_provider.h"
#include "hmod/model_file.h"

namespace hmod {

enum class LegacyFormat { kEncModel, kEnvModel };

// "ENCMODEL" / "ENVMODEL".
const char* LegacyFormatName(LegacyFormat format);

inline constexpr size_t kLegacyMagicBytes = 8;
inline constexpr uint32_t kMaxLegacyMetadataBytes = 1u << 20;  // our limit on the JSON length
inline constexpr size_t kLegacyNonceBytes = 12;
inline constexpr size_t kLegacyTagBytes = 16;
inline constexpr uint64_t kLegacyBlockBytes = 4u << 20;        // pass-2 verification unit
// GCM's limit: 2^32 - 2 blocks of 16 bytes (NIST SP 800-38D).
inline constexpr uint64_t kMaxLegacyPlaintextBytes = ((uint64_t{1} << 32) - 2) * 16;

// The legacy format whose magic begins `prefix`, or nullopt (also if it is shorter than 8).
std::optional<LegacyFormat> DetectLegacyFormat(ByteSpan prefix);
// True if `path` is a regular file beginning with a legacy magic. Fails only on I/O errors.
Result<bool> IsLegacyFile(const std::string& path);

// What the metadata says; nothing here is authenticated until Authenticate() succeeds.
struct LegacyInfo {
  LegacyFormat format = LegacyFormat::kEncModel;
  uint64_t file_bytes = 0;
  uint64_t metadata_bytes = 0;       // the JSON, at offset 12
  uint64_t ciphertext_offset = 0;    // first ciphertext byte; the tag is the last 16 bytes
  uint64_t plaintext_bytes = 0;      // ciphertext length without the tag
  std::array<uint8_t, 32> plaintext_sha256{};
  std::array<uint8_t, kLegacyNonceBytes> nonce{};
  // ENCMODEL
  bool has_aad = false;
  // ENVMODEL
  std::string kms_key_id;            // as recorded (informational)
  Bytes encrypted_dek;               // the KMS ciphertext blob
  std::vector<std::pair<std::string, std::string>> metadata;  // in file order
  std::string aad_json;              // json.dumps(metadata): the AAD and the KMS context
};

// Parses and checks the metadata of the legacy file `file` (its first bytes must be a
// legacy magic). No key needed. kFormat for a malformed file, kUnsupported for a version,
// algorithm or nonce length the seed's code never writes, kLimit beyond the stated limits.
Result<LegacyInfo> ReadLegacyInfo(const PositionalSource& file);

// How the legacy data key is obtained.
struct LegacyKeys {
  // ENCMODEL: the raw AES-256 key, in a file of mode 0600: either our key-file format
  // ("hmod-key-v1 <64 hex>", from `hmodctl keygen`), exactly 32 raw bytes, or 64 hex digits.
  std::string key_file;
  // ENCMODEL: the associated data the file was encrypted with (required when its metadata
  // says has_aad; e.g. "name:version" as the seed's distributor uses).
  std::optional<Bytes> aad;
  // ENVMODEL: AWS settings lookup (AWS_ACCESS_KEY_ID, AWS_REGION, AWS_ENDPOINT_URL_KMS, ...);
  // empty = the process environment. The key comes from the blob; KMS Decrypt gets the
  // metadata as encryption context.
  std::function<std::optional<std::string>(const std::string&)> aws_env;
};

// Loads an ENCMODEL key file (see LegacyKeys::key_file). kKeyFile on a bad mode or content.
Result<SecretBytes> LoadLegacyKey(const std::string& path);

// An opened legacy file. Not copyable; `file` must outlive it.
class LegacyFile {
 public:
  // Reads the metadata and obtains the data key (ENVMODEL: one KMS Decrypt call). Errors:
  // kUsage (non-seekable input, missing --legacy-key / AAD), kKeyFile, kFormat, kAuthFailed
  // (KMS refuses the blob or the metadata), kIo (KMS unreachable / access denied).
  static Result<std::unique_ptr<LegacyFile>> Open(const PositionalSource& file, const LegacyKeys& keys,
                                                  std::string key_description = {});
  ~LegacyFile();

  const LegacyInfo& info() const { return info_; }
  // "legacy-key:FILE" or "aws-kms:KEY-ARN".
  const std::string& opened_by() const { return opened_by_; }
  // For audit logs, never secret: the key's fingerprint (ENCMODEL, as `hmodctl keygen` prints
  // it) or the KMS key ARN that unwrapped the data key (ENVMODEL).
  const std::string& key_id() const { return key_id_; }

  // Pass 1. kAuthFailed if the tag or the recorded SHA-256 does not match (wrong key, wrong
  // AAD, tampered or truncated file). `progress` gets bytes done so far.
  Status Authenticate(const ProgressFn& progress = {});
  bool authenticated() const { return authenticated_; }

  // Pass 2, random access; only after Authenticate(). Thread-safe. Every byte it returns
  // comes from a ciphertext block identical to the one pass 1 authenticated; kAuthFailed if
  // the file changed since.
  const PositionalSource& plaintext() const;

  // Pass 2, sequential: writes the whole plaintext to `out` (whole verified blocks at a
  // time) and re-hashes it; kAuthFailed at the end if the hash differs. Returns the size.
  Result<uint64_t> DecryptTo(ByteSink& out, const ProgressFn& progress = {});

 private:
  class PlaintextSource;
  LegacyFile(const PositionalSource& file, LegacyInfo info);
  const PositionalSource& file_;
  LegacyInfo info_;
  SecretBytes key_;
  Bytes aad_;
  std::string opened_by_;
  std::string key_id_;
  bool authenticated_ = false;
  std::vector<std::array<uint8_t, 32>> block_digests_;
  std::unique_ptr<PlaintextSource> plaintext_;
};

// Authenticates a legacy file at `path` and writes its plaintext to `out` (pass a NullSink to
// verify). On failure nothing more is written; `out` is the caller's to discard (AtomicFile).
struct LegacyDecryptSummary {
  LegacyInfo info;
  std::string opened_by;
  uint64_t plaintext_bytes = 0;
};
Result<LegacyDecryptSummary> DecryptLegacyFile(const InputFile& in, const LegacyKeys& keys, ByteSink& out,
                                               const ProgressFn& progress = {}, bool verify_only = false);

struct LegacyMigrationOptions {
  std::string output;          // default: path + ".hmod"
  bool keep_legacy = false;    // leave the legacy file in place after success
  bool whole_file = false;     // stream layout even when the plaintext is a model
  bool force = false;          // replace an existing output (atomically)
  bool public_index = false;   // per-tensor: names, dtypes, shapes readable without a key
  Suite suite = DefaultSuite();
  EncryptionContext context;   // merged with the ENVMODEL metadata (a conflicting value is kUsage)
  StreamOptions stream;
};

struct LegacyMigration {
  std::string input, output;
  LegacyFormat format = LegacyFormat::kEncModel;
  std::string opened_by;
  Layout layout = Layout::kStream;
  std::optional<ModelFormat> model_format;  // set for the per-tensor layout
  size_t tensors = 0;
  uint64_t plaintext_bytes = 0;
  std::string plaintext_sha256;  // hex, as recorded and checked
  Header header;                 // the new file's header
  bool legacy_removed = false;
  bool already_migrated = false;  // PATH was gone and OUTPUT is an .hmod file: nothing done
};

// Converts the legacy file at `path` into a new .hmod wrapped to `new_keks`:
//  1. opens and authenticates it (pass 1, recorded SHA-256 checked);
//  2. writes `options.output` (default PATH.hmod) through an AtomicFile from the pass-2
//     plaintext: per-tensor layout when the plaintext is safetensors/GGUF (unless
//     whole_file; a recognised but malformed model falls back to the stream layout), else
//     stream layout. Context: the ENVMODEL metadata plus options.context; for ENCMODEL with
//     printable UTF-8 AAD, "legacy-aad" = the AAD;
//  3. after the output is fsynced and renamed, unlinks PATH (unless keep_legacy) — only if PATH
//     is still the same file (device, inode, size, mtime) that was read.
// Idempotent: if PATH does not exist but OUTPUT does and one of `new_keks` opens its header,
// returns already_migrated = true without doing anything. If OUTPUT exists (and !force) it
// fails with kIo before reading anything. On any failure before step 3's commit OUTPUT does
// not exist (or is unchanged) and PATH is untouched. The one failure after it: PATH changed
// or moved while it was migrated, or cannot be unlinked — kIo, OUTPUT stays (it holds the
// authenticated content as read) and PATH is left alone.
Result<LegacyMigration> MigrateLegacyFile(const std::string& path, const LegacyKeys& keys, ProviderList& new_keks,
                                          const LegacyMigrationOptions& options);

}  // namespace hmod
