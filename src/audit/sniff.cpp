#include "audit/sniff.h"

#include <algorithm>
#include <cstring>
#include <string_view>

#include "hmod/header.h"

namespace hmod::audit {
namespace {

bool StartsWith(ByteSpan b, std::string_view s, size_t at = 0) {
  return b.size() >= at + s.size() && std::memcmp(b.data() + at, s.data(), s.size()) == 0;
}

uint64_t Le(ByteSpan b, size_t at, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(b[at + i]) << (8 * i);
  return v;
}

bool Contains(ByteSpan b, std::string_view s) {
  const std::string_view hay(reinterpret_cast<const char*>(b.data()), b.size());
  return hay.find(s) != std::string_view::npos;
}

// safetensors: u64 LE header length, then a JSON object.
bool IsSafetensors(ByteSpan b, uint64_t size) {
  if (b.size() < 10) return false;
  const uint64_t n = Le(b, 0, 8);
  if (n < 2 || n > (100u << 20) || n > size - 8) return false;
  return b[8] == '{' && (b[9] == '"' || b[9] == '}' || b[9] == ' ' || b[9] == '\n');
}

// A zip's first entry names what it is: torch.save, numpy.savez, Keras 3.
Content SniffZip(ByteSpan b) {
  if (b.size() < 30) return Content::kUnknown;
  const size_t name_len = Le(b, 26, 2);
  const std::string_view name(reinterpret_cast<const char*>(b.data()) + 30, std::min(name_len, b.size() - 30));
  auto ends = [&](std::string_view s) { return name.size() >= s.size() && name.substr(name.size() - s.size()) == s; };
  if (ends("data.pkl") || ends("/version") || ends(".format_version") || ends("/byteorder") ||
      Contains(b, "/data.pkl")) {
    return Content::kPytorchZip;
  }
  if (ends(".npy")) return Content::kNpz;
  if (name == "metadata.json" || name == "config.json" || name == "model.weights.h5" ||
      Contains(b, "model.weights.h5")) {
    return Content::kKerasZip;
  }
  return Content::kUnknown;
}

Content SniffPickle(ByteSpan b, uint64_t size) {
  if (b.size() < 3 || b[0] != 0x80 || b[1] < 2 || b[1] > 5) return Content::kUnknown;
  // torch.save (legacy): protocol 2, then LONG1 of the magic 0x1950a86a20f9469cfc6c.
  static const uint8_t kTorchMagic[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  if (b.size() >= 2 + sizeof kTorchMagic && std::memcmp(b.data() + 2, kTorchMagic, sizeof kTorchMagic) == 0) {
    return Content::kPytorchLegacy;
  }
  // Protocols 4 and 5 start with a FRAME; 2 and 3 with one of the opcodes pickle emits first.
  const bool framed = b[1] >= 4 && b[2] == 0x95;
  const bool early = b[1] <= 3 && std::string_view("}](cKXNq\x8a\x8c", 10).find(static_cast<char>(b[2])) != std::string_view::npos;
  if (!framed && !early) return Content::kUnknown;
  // A whole small pickle must end with STOP.
  if (size <= b.size() && b[b.size() - 1] != '.') return Content::kUnknown;
  return Content::kPickle;
}

// ONNX ModelProto: field 1 (ir_version, varint) first, then a known field of the model.
bool IsOnnx(ByteSpan b) {
  if (b.size() < 16 || b[0] != 0x08 || b[1] == 0 || b[1] > 15) return false;
  static const uint8_t kNextTags[] = {0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42, 0x72};
  return std::find(std::begin(kNextTags), std::end(kNextTags), b[2]) != std::end(kNextTags);
}

bool IsHdf5(ByteSpan b) {
  static constexpr std::string_view kSig("\x89HDF\r\n\x1a\n", 8);
  // The superblock may follow a user block of 512, 1024, 2048 ... bytes.
  for (size_t at : {0, 512, 1024, 2048}) {
    if (StartsWith(b, kSig, at)) return true;
  }
  return false;
}

// hmodctl's text secrets: the first line that is not empty or a comment names the kind.
Content SniffKeyText(ByteSpan b, uint64_t size) {
  if (size > kSniffBytes || b.size() != size) return Content::kUnknown;
  const std::string_view text(reinterpret_cast<const char*>(b.data()), b.size());
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind("hmod-key-v1 ", 0) == 0) return Content::kKeyFile;
    if (line.rfind("hmod-x25519-identity-v1 ", 0) == 0) return Content::kX25519Identity;
    if (line.rfind("hmod-ed25519-secret-v1 ", 0) == 0) return Content::kSigningKey;
    return Content::kUnknown;
  }
  return Content::kUnknown;
}

}  // namespace

Content Sniff(ByteSpan b, uint64_t size) {
  if (b.size() >= kMagic.size() && std::equal(kMagic.begin(), kMagic.end(), b.begin())) return Content::kHmod;
  if (StartsWith(b, "ENCMODEL")) return Content::kLegacyEncmodel;
  if (StartsWith(b, "ENVMODEL")) return Content::kLegacyEnvmodel;
  if (StartsWith(b, "GGUF") && b.size() >= 8 && Le(b, 4, 4) >= 1 && Le(b, 4, 4) <= 3) return Content::kGguf;
  if (StartsWith(b, "\x93NUMPY") && b.size() >= 8 && b[6] >= 1 && b[6] <= 3) return Content::kNpy;
  if (IsHdf5(b)) return Content::kHdf5;
  if (StartsWith(b, "TFL3", 4)) return Content::kTflite;
  if (StartsWith(b, "PK\x03\x04")) return SniffZip(b);
  if (Content p = SniffPickle(b, size); p != Content::kUnknown) return p;
  if (IsSafetensors(b, size)) return Content::kSafetensors;
  if (IsOnnx(b)) return Content::kOnnx;
  return SniffKeyText(b, size);
}

bool IsPlaintextModel(Content c) {
  switch (c) {
    case Content::kSafetensors:
    case Content::kPytorchZip:
    case Content::kPytorchLegacy:
    case Content::kPickle:
    case Content::kGguf:
    case Content::kOnnx:
    case Content::kHdf5:
    case Content::kKerasZip:
    case Content::kTflite:
    case Content::kNpy:
    case Content::kNpz:
      return true;
    default:
      return false;
  }
}

bool IsSecretKey(Content c) {
  return c == Content::kKeyFile || c == Content::kX25519Identity || c == Content::kSigningKey;
}

const char* ContentName(Content c) {
  switch (c) {
    case Content::kUnknown: return "unknown";
    case Content::kSafetensors: return "safetensors";
    case Content::kPytorchZip: return "pytorch-zip";
    case Content::kPytorchLegacy: return "pytorch-legacy";
    case Content::kPickle: return "pickle";
    case Content::kGguf: return "gguf";
    case Content::kOnnx: return "onnx";
    case Content::kHdf5: return "hdf5";
    case Content::kKerasZip: return "keras";
    case Content::kTflite: return "tflite";
    case Content::kNpy: return "npy";
    case Content::kNpz: return "npz";
    case Content::kHmod: return "hmod";
    case Content::kLegacyEncmodel: return "legacy-encmodel";
    case Content::kLegacyEnvmodel: return "legacy-envmodel";
    case Content::kKeyFile: return "key-file";
    case Content::kX25519Identity: return "x25519-identity";
    case Content::kSigningKey: return "ed25519-signing-key";
  }
  return "unknown";
}

}  // namespace hmod::audit
