// `decrypt` and `verify` of legacy ENCMODEL / ENVMODEL files (docs/LEGACY.md): the options,
// the magic sniff on the input, and the runner both commands branch to.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cli/cli_common.h"
#include "hmod/legacy.h"

namespace hmod::cli {

struct LegacyCliOptions {
  std::string key_file;  // --legacy-key FILE (ENCMODEL)
  std::optional<std::string> aad;  // --legacy-aad STRING (ENCMODEL)
  std::string aad_file;  // --legacy-aad-file FILE (ENCMODEL)
};
void AddLegacyOptions(CLI::App& sub, LegacyCliOptions& o);
// The LegacyKeys the options name (reads --legacy-aad-file).
Result<LegacyKeys> LegacyKeysFromOptions(const LegacyCliOptions& o);

// The input, with its first 8 bytes looked at: positional for a file (nothing consumed), read
// ahead and replayed for a pipe. Read() yields the whole input either way.
class SniffedInput final : public ByteSource {
 public:
  explicit SniffedInput(InputFile& in) : in_(in) {}
  // The legacy format of the input, or nullopt for anything else (an .hmod file).
  Result<std::optional<LegacyFormat>> Sniff();
  Result<size_t> Read(MutableByteSpan buf) override;

 private:
  InputFile& in_;
  Bytes ahead_;
  size_t ahead_pos_ = 0;
  bool sniffed_ = false;
};

// What to read an .hmod from after sniffing: the file itself when it is regular (the sniff
// did not consume it, and per-tensor files need its positional reads), else the replay.
inline ByteSource& SequentialInput(InputFile& in, SniffedInput& sniffed) {
  return in.is_regular() ? static_cast<ByteSource&>(in) : static_cast<ByteSource&>(sniffed);
}

struct LegacyRunOptions {
  std::string output;  // decrypt: OUT or "-"; verify: empty
  bool force = false;
  bool verify = false;
  std::vector<std::string> context;  // --context requirements, checked against ENVMODEL metadata
  OutputOptions out;
  std::string audit_log;  // --audit-log (else $HMOD_AUDIT_LOG): one "unwrap" line per run
};
// Decrypts (or verifies) the legacy file `in`; prints the result; returns the exit code.
int RunLegacy(InputFile& in, LegacyFormat format, const LegacyCliOptions& legacy, const LegacyRunOptions& o);

}  // namespace hmod::cli
