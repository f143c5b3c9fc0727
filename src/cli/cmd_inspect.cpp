// hmodctl inspect: what an .hmod holds and who can open it. Keyless by default (like
// age-inspect); with --kek it also authenticates the header and lists encrypted indexes.
#include <cstdio>
#include <optional>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "hmod/tensor_container.h"

namespace hmod::cli {
namespace {

struct InspectOptions {
  std::string input;
  std::vector<std::string> keks;
  bool tensors = false;
  KeyOptions keys;
  OutputOptions out;
};

// The header is unauthenticated here: never let its strings drive the terminal.
std::string Printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

const char* LayoutName(Layout l) { return l == Layout::kStream ? "stream" : "tensors"; }

// Reads a public index without a key: parsed and validated, but not authenticated.
Result<TensorIndex> ReadPublicIndex(const InputFile& in, const Header& h, const TensorLayoutInfo& info) {
  if (info.index_length < 32 || info.index_offset + info.index_length > in.size()) {
    return MakeError(ErrorCode::kFormat, "public tensor index is out of the file");
  }
  Bytes stored(info.index_length);
  HMOD_TRY(in.ReadAt(info.index_offset, stored));
  stored.resize(stored.size() - 32);
  return ParseIndex(stored, info, h.region_bytes);
}

nlohmann::json TensorsJson(const TensorIndex& index) {
  nlohmann::json arr = nlohmann::json::array();
  for (size_t i = 1; i < index.entries.size(); ++i) {
    const auto& e = index.entries[i];
    arr.push_back({{"name", e.name}, {"dtype", e.dtype}, {"shape", e.shape}, {"bytes", e.size},
                   {"encrypted", e.encrypted}, {"offset", e.offset}});
  }
  return arr;
}

double EncryptedFraction(const TensorIndex& index) {
  uint64_t total = 0, enc = 0;
  for (const auto& e : index.entries) {
    total += e.size;
    if (e.encrypted) enc += e.size;
  }
  return total ? static_cast<double>(enc) / static_cast<double>(total) : 1.0;
}

int RunInspect(const InspectOptions& o) {
  auto fail = [&](const Error& e) { return ReportError(e, o.out); };
  auto in = InputFile::Open(o.input);
  if (!in.ok()) return fail(in.error());
  auto parsed = ReadHeader(**in);
  if (!parsed.ok()) return fail(parsed.error());
  const Header h = parsed->header;

  nlohmann::json sizes = {{"header_bytes", h.region_bytes}};
  std::optional<uint64_t> plaintext;
  std::optional<TensorLayoutInfo> layout;
  std::optional<TensorIndex> index;
  bool authenticated = false;
  std::string opened_by;
  if (h.layout == Layout::kTensors) {
    auto info = TensorLayoutOf(h);
    if (!info.ok()) return fail(info.error());
    layout = *info;
    plaintext = layout->source_size;
  }
  if (!o.keks.empty()) {
    auto providers = BuildProviders(o.keks, o.keys, o.input, true);
    if (!providers.ok()) return fail(providers.error());
    if (h.layout == Layout::kTensors) {
      if (!(*in)->is_regular()) return fail(MakeError(ErrorCode::kUnsupported, "inspect --kek needs a file, not a pipe"));
      auto file = TensorFile::Open(**in, *parsed, *providers, {});
      if (!file.ok()) return fail(file.error());
      index = (*file)->index();
      opened_by = (*file)->opened_by();
    } else {
      auto opened = OpenHeader(*parsed, *providers);
      if (!opened.ok()) return fail(opened.error());
      opened_by = opened->opened_by;
    }
    authenticated = true;
  } else if (layout && layout->index_mode == IndexMode::kPublic && (*in)->is_regular()) {
    auto public_index = ReadPublicIndex(**in, h, *layout);
    if (!public_index.ok()) return fail(public_index.error());
    index = std::move(*public_index);
  }
  if ((*in)->is_regular()) {
    const uint64_t total = (*in)->size();
    sizes["file_bytes"] = total;
    sizes["payload_bytes"] = total - h.region_bytes;
    if (!layout) {
      auto p = ChunkedPlaintextSize(total - h.region_bytes);
      if (p.ok()) plaintext = *p;
    }
  }
  sizes["plaintext_bytes"] = plaintext ? nlohmann::json(*plaintext) : nlohmann::json(nullptr);
  if (o.tensors && !index) {
    return fail(MakeError(ErrorCode::kUsage,
                          layout ? "the tensor index is encrypted" : "this file is not a per-tensor model",
                          layout ? "pass --kek to decrypt the index" : "it was encrypted as a whole file"));
  }

  if (o.out.json) {
    nlohmann::json j = {{"ok", true},
                        {"input", (*in)->path()},
                        {"format", "hmod"},
                        {"version", kFormatVersion},
                        {"layout", LayoutName(h.layout)},
                        {"suite", SuiteName(h.suite)},
                        {"suite_id", static_cast<unsigned>(h.suite)},
                        {"file_id", HexEncode(h.file_id)},
                        {"context", ContextJson(h.context)},
                        {"wrapped_keys", WrappedKeysJson(h)},
                        {"sizes", sizes},
                        {"authenticated", authenticated}};
    if (authenticated) j["opened_by"] = opened_by;
    if (layout) {
      j["model"] = {{"source_format", layout->source_format == SourceFormat::kGguf ? "gguf" : "safetensors"},
                    {"index", layout->index_mode == IndexMode::kPublic ? "public" : "encrypted"},
                    {"signed", layout->is_signed}};
      if (index) {
        j["model"]["tensor_count"] = index->entries.size() - 1;
        j["model"]["encrypted_fraction"] = EncryptedFraction(*index);
        if (o.tensors) j["tensors"] = TensorsJson(*index);
      }
    }
    PrintJson(j);
    return kExitOk;
  }
  std::printf("file:      %s\n", (*in)->path().c_str());
  std::printf("format:    .hmod v%u, %s layout\n", kFormatVersion, LayoutName(h.layout));
  std::printf("suite:     %s (0x%04x)\n", SuiteName(h.suite), static_cast<unsigned>(h.suite));
  std::printf("file id:   %s\n", HexEncode(h.file_id).c_str());
  if (h.context.empty()) {
    std::printf("context:   (none)\n");
  } else {
    bool first = true;
    for (const auto& [k, v] : h.context) {
      std::printf("%s%s=%s\n", first ? "context:   " : "           ", Printable(k).c_str(), Printable(v).c_str());
      first = false;
    }
  }
  std::printf("can be opened by (%zu):\n", h.wrapped_keys.size());
  for (const auto& k : h.wrapped_keys) std::printf("  %-8s %s\n", k.provider_id.c_str(), Printable(k.key_id).c_str());
  if (layout) {
    std::printf("model:     %s, tensor index %s%s\n",
                layout->source_format == SourceFormat::kGguf ? "gguf" : "safetensors",
                layout->index_mode == IndexMode::kPublic ? "public" : "encrypted", layout->is_signed ? ", signed" : "");
    if (index) {
      std::printf("tensors:   %zu, %.1f%% of the model's bytes encrypted\n", index->entries.size() - 1,
                  100.0 * EncryptedFraction(*index));
    }
  }
  if ((*in)->is_regular()) {
    std::printf("sizes:     file %llu B, header %u B, plaintext %s\n",
                static_cast<unsigned long long>((*in)->size()), h.region_bytes,
                plaintext ? (std::to_string(*plaintext) + " B").c_str() : "invalid (truncated?)");
  }
  if (o.tensors) {
    std::printf("%-48s %-6s %-20s %12s %s\n", "tensor", "dtype", "shape", "bytes", "");
    for (size_t i = 1; i < index->entries.size(); ++i) {
      const auto& e = index->entries[i];
      std::string shape = "[";
      for (size_t k = 0; k < e.shape.size(); ++k) shape += (k ? "," : "") + std::to_string(e.shape[k]);
      shape += "]";
      std::printf("%-48s %-6s %-20s %12llu %s\n", Printable(e.name).c_str(), Printable(e.dtype).c_str(), shape.c_str(),
                  static_cast<unsigned long long>(e.size), e.encrypted ? "encrypted" : "PLAINTEXT");
    }
  }
  if (authenticated) {
    std::printf("verified:  header authenticated, opened by %s\n", opened_by.c_str());
  } else {
    std::printf("note:      nothing above is authenticated until a key opens the file (hmodctl verify)\n");
  }
  return kExitOk;
}

}  // namespace

void SetupInspect(CLI::App& sub, std::function<int()>& run) {
  auto o = std::make_shared<InspectOptions>();
  sub.description(
      "Show an .hmod file's header without any key: format version, suite, encryption context,\n"
      "who can open it (provider and key id of every wrapped data key) and sizes. For a\n"
      "per-tensor model, the source format, whether the tensor index is public, and (when it is\n"
      "public, or with --kek) the tensors and the share of bytes encrypted.\n\n"
      "Examples:\n  hmodctl inspect --json llama.hmod | jq '.wrapped_keys'\n"
      "  hmodctl inspect --tensors --kek file:team.key llama.hmod");
  sub.add_option("input", o->input, "The .hmod file, or - for stdin")->required();
  sub.add_option("--kek", o->keks, "Open the file with this key to authenticate it and read an encrypted index")
      ->type_name("URI")
      ->allow_extra_args(false);
  sub.add_flag("--tensors", o->tensors, "List every tensor (name, dtype, shape, bytes, encrypted or not)");
  AddOutputOptions(sub, o->out);
  AddKeyOptions(sub, o->keys, true);
  run = [o] { return RunInspect(*o); };
}

}  // namespace hmod::cli
