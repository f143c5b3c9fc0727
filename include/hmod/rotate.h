// Key rotation of one .hmod file (docs/ROTATION.md).
//
// Re-wrap (the default) keeps the data key and every payload byte: the data key is unwrapped
// with any current KEK, wrapped for the new set, and only the header region is rewritten.
// Re-encrypt draws a new data key and file id and re-encrypts every payload, keeping the
// encryption context, the layout (stream or per-tensor) and which tensors are in clear.
//
// Crash safety: a re-wrap of a one-page (4096-byte) header region is a single pwrite of that
// page, preceded by a journal beside the file (".NAME.hmod-rewrap") that the next rotation
// uses to finish or discard the change; every other case writes a whole new file under a
// temporary name and renames it. At every instant the file is in its old or its new state.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "hmod/chunked_stream.h"
#include "hmod/header.h"
#include "hmod/key_provider.h"
#include "hmod/signature.h"

namespace hmod {

enum class RotateMode { kRewrap, kReencrypt };

// The change to a file's set of wrapped keys.
struct KeySetChange {
  // --to-kek: the new set is exactly these (records already present are kept as they are).
  bool replace = false;
  ProviderList add;                    // --add-kek (or --to-kek with replace)
  std::vector<std::string> remove;     // --remove-kek: a provider URI or a key id
};

struct RotateRequest {
  RotateMode mode = RotateMode::kRewrap;
  KeySetChange change;
  ProviderList open;                   // KEKs tried to unwrap the current data key
  const SigningKey* sign_key = nullptr;  // re-signs signed per-tensor files
  bool dry_run = false;                // decide and check everything, write nothing
  StreamOptions stream;                // re-encrypt only
  // Re-encrypt only: file ids (hex) this rotation already produced (rotate --state); a file
  // carrying one is in the target state and is skipped, so an interrupted run can resume.
  const std::set<std::string>* done_file_ids = nullptr;
};

enum class RotateOutcome { kRotated, kSkipped, kWouldRotate };
const char* RotateOutcomeName(RotateOutcome outcome);

struct RotateResult {
  RotateOutcome outcome = RotateOutcome::kSkipped;
  std::string reason;                  // why skipped, or what was done
  std::string method;                  // "in-place header", "new file", "re-encrypt"
  std::string opened_by;
  std::vector<std::string> keys_before, keys_after;  // "provider:key-id"
  uint64_t bytes_written = 0;
  bool recovered = false;              // an interrupted earlier rotation was finished first
  std::string file_id;                 // hex, after the rotation (new for a re-encryption)
};

// Rotates `path`. Holds an exclusive lock on the file (flock) while it works; first finishes
// or discards an interrupted re-wrap and removes temporary files a killed run left behind.
// Idempotent for re-wrap: a file whose key set already is the target is skipped.
Result<RotateResult> RotateFile(const std::string& path, RotateRequest& request);

// "provider:key-id" for messages and reports.
std::string DescribeWrappedKey(const WrappedKey& key);

}  // namespace hmod
