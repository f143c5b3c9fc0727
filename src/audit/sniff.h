// What a file is, from its first bytes: model formats, hmodctl containers and key files.
// Local trees and S3 objects use the same rules (an S3 object is read with one range request).
#pragma once

#include <cstddef>
#include <cstdint>

#include "hmod/crypto.h"

namespace hmod::audit {

// Enough for every rule: HDF5's signature may follow a 512-byte user block, a zip's first
// entry name follows a 30-byte header, and key files are at most 4096 bytes of text.
inline constexpr size_t kSniffBytes = 4096;

enum class Content {
  kUnknown,
  // Plaintext model formats.
  kSafetensors,
  kPytorchZip,     // torch.save since 1.6: a zip whose entries are ".../data.pkl", ".../data/N"
  kPytorchLegacy,  // torch.save before 1.6: pickled magic number 0x1950a86a20f9469cfc6c
  kPickle,         // any other pickle (protocol 2-5): joblib, sklearn, raw torch pickles
  kGguf,
  kOnnx,
  kHdf5,           // Keras .h5 and TF/Keras HDF5 weights
  kKerasZip,       // Keras 3 .keras: a zip with config.json / metadata.json / model.weights.h5
  kTflite,
  kNpy,
  kNpz,
  // hmodctl and legacy containers.
  kHmod,
  kLegacyEncmodel,
  kLegacyEnvmodel,
  // Secrets.
  kKeyFile,         // "hmod-key-v1 ..." (a KEK or a license key)
  kX25519Identity,  // "hmod-x25519-identity-v1 ..."
  kSigningKey,      // "hmod-ed25519-secret-v1 ..."
};

// `head` is the first min(size, kSniffBytes) bytes of an object of `size` bytes.
Content Sniff(ByteSpan head, uint64_t size);

bool IsPlaintextModel(Content c);
bool IsSecretKey(Content c);
// "safetensors", "pytorch-zip", ... (JSON values; stable).
const char* ContentName(Content c);

}  // namespace hmod::audit
