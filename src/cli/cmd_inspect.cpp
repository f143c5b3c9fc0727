// hmodctl inspect: keyless view of an .hmod header (like age-inspect).
#include <cstdio>

#include "cli/cli_common.h"
#include "cli/commands.h"

namespace hmod::cli {
namespace {

struct InspectOptions {
  std::string input;
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

int RunInspect(const InspectOptions& o) {
  auto fail = [&](const Error& e) { return ReportError(e, o.out); };
  auto in = InputFile::Open(o.input);
  if (!in.ok()) return fail(in.error());
  auto parsed = ReadHeader(**in);
  if (!parsed.ok()) return fail(parsed.error());
  const Header& h = parsed->header;

  nlohmann::json sizes = {{"header_bytes", h.region_bytes}};
  std::optional<uint64_t> plaintext;
  if ((*in)->is_regular()) {
    const uint64_t total = (*in)->size();
    const uint64_t payload = total - h.region_bytes;
    sizes["file_bytes"] = total;
    sizes["payload_bytes"] = payload;
    auto p = ChunkedPlaintextSize(payload);
    if (p.ok()) plaintext = *p;
    sizes["plaintext_bytes"] = plaintext ? nlohmann::json(*plaintext) : nlohmann::json(nullptr);
  }

  if (o.out.json) {
    PrintJson({{"ok", true},
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
               {"authenticated", false}});
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
      std::printf("%s%s=%s\n", first ? "context:   " : "           ", Printable(k).c_str(),
                  Printable(v).c_str());
      first = false;
    }
  }
  std::printf("can be opened by (%zu):\n", h.wrapped_keys.size());
  for (const auto& k : h.wrapped_keys) {
    std::printf("  %-8s %s\n", k.provider_id.c_str(), Printable(k.key_id).c_str());
  }
  if ((*in)->is_regular()) {
    std::printf("sizes:     file %llu B, header %u B, payload %llu B, plaintext %s\n",
                static_cast<unsigned long long>((*in)->size()), h.region_bytes,
                static_cast<unsigned long long>((*in)->size() - h.region_bytes),
                plaintext ? (std::to_string(*plaintext) + " B").c_str() : "invalid (truncated?)");
  }
  std::printf("note:      nothing above is authenticated until a key opens the file (hmodctl verify)\n");
  return kExitOk;
}

}  // namespace

void SetupInspect(CLI::App& sub, std::function<int()>& run) {
  auto o = std::make_shared<InspectOptions>();
  sub.description(
      "Show an .hmod file's header without any key: format version, suite, encryption context,\n"
      "who can open it (provider and key id of every wrapped data key) and sizes. For audits.\n\n"
      "Example:\n  hmodctl inspect --json llama.hmod | jq '.wrapped_keys'");
  sub.add_option("input", o->input, "The .hmod file, or - for stdin")->required();
  AddOutputOptions(sub, o->out);
  run = [o] { return RunInspect(*o); };
}

}  // namespace hmod::cli
