#include "audit/container_info.h"

#include "hmod/tensor_index.h"

namespace hmod::audit {
namespace {

// Header strings are unauthenticated: keep control bytes out of the terminal.
std::string Printable(const std::string& s, size_t max) {
  std::string out;
  for (unsigned char c : s) {
    out.push_back(c < 0x20 || c == 0x7F ? '?' : static_cast<char>(c));
    if (out.size() >= max) {
      out += "...";
      break;
    }
  }
  return out;
}

}  // namespace

std::string OpenersText(const Header& header) {
  std::string text;
  for (const auto& k : header.wrapped_keys) {
    if (!text.empty()) text += ", ";
    text += Printable(k.provider_id, 32) + ":" + Printable(k.key_id, 48);
  }
  return text;
}

void DescribeContainer(const Header& header, Finding& f) {
  nlohmann::json openers = nlohmann::json::array();
  for (const auto& k : header.wrapped_keys) openers.push_back({{"provider", k.provider_id}, {"key_id", k.key_id}});
  f.details["suite"] = SuiteName(header.suite);
  f.details["layout"] = header.layout == Layout::kStream ? "stream" : "tensors";
  f.details["wrapped_keys"] = openers;
  std::string text = std::string(SuiteName(header.suite)) + ", opened by " + OpenersText(header);
  f.level = Level::kPass;
  if (header.layout == Layout::kTensors) {
    auto info = TensorLayoutOf(header);
    if (info.ok()) {
      const bool is_public = info->index_mode == IndexMode::kPublic;
      f.details["index"] = is_public ? "public" : "encrypted";
      f.details["signed"] = info->is_signed;
      f.details["source_format"] = info->source_format == SourceFormat::kGguf ? "gguf" : "safetensors";
      text += std::string(", per-tensor, index ") + (is_public ? "PUBLIC" : "encrypted") +
              (info->is_signed ? ", signed" : ", unsigned");
      if (is_public) {
        f.level = Level::kWarn;
        f.remediation =
            "tensor names, dtypes and shapes are readable without a key; re-encrypt without --public-index "
            "unless tooling needs them";
      }
    }
  } else {
    f.details["signed"] = false;
    text += ", whole file";
  }
  f.message = "encrypted model: " + text;
}

}  // namespace hmod::audit
