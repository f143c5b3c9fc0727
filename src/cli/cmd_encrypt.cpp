// hmodctl encrypt: wrap a fresh data key to every --kek and stream the input into an .hmod.
#include <cstdio>

#include <optional>

#include "cli/cli_common.h"
#include "hmod/tensor_container.h"
#include "cli/commands.h"

namespace hmod::cli {
namespace {

struct EncryptCliOptions {
  std::vector<std::string> keks;
  std::vector<std::string> context;
  std::string suite;
  std::string input, output;
  bool force = false;
  bool whole_file = false;
  bool public_index = false;
  std::vector<std::string> plaintext_tensors;
  std::string sign_key;
  unsigned threads = 0;
  KeyOptions keys;
  OutputOptions out;
};

Result<EncryptionContext> ParseContextPairs(const std::vector<std::string>& pairs) {
  EncryptionContext ctx;
  for (const auto& p : pairs) {
    auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0) {
      return MakeError(ErrorCode::kUsage, "bad --context '" + p + "'", "use --context key=value");
    }
    if (p.rfind("hmod:", 0) == 0) {
      return MakeError(ErrorCode::kUsage, "--context keys starting with 'hmod:' are reserved (FORMAT.md §2.3)");
    }
    if (!ctx.emplace(p.substr(0, eq), p.substr(eq + 1)).second) {
      return MakeError(ErrorCode::kUsage, "--context key '" + p.substr(0, eq) + "' given twice");
    }
  }
  HMOD_TRY(ValidateContext(ctx));
  return ctx;
}

int RunEncrypt(const EncryptCliOptions& o) {
  const bool data_on_stdout = o.output == "-";
  auto fail = [&](const Error& e) { return ReportError(e, o.out, data_on_stdout); };

  EncryptOptions options;
  if (!o.suite.empty()) {
    auto s = ParseSuiteName(o.suite);
    if (!s.ok()) return fail(s.error());
    options.suite = *s;
  }
  auto ctx = ParseContextPairs(o.context);
  if (!ctx.ok()) return fail(ctx.error());
  options.context = std::move(*ctx);
  options.stream.threads = o.threads;

  auto providers = BuildProviders(o.keks, o.keys, o.output, false);
  if (!providers.ok()) return fail(providers.error());
  auto in = InputFile::Open(o.input);
  if (!in.ok()) return fail(in.error());
  // Ciphertext is not secret: usual permissions (subject to umask).
  auto output = OpenOutput(o.output, **in, 0666, o.force);
  if (!output.ok()) return fail(output.error());
  options.stream.progress = MakeProgress("encrypting", (*in)->size(), o.out.quiet);

  // Models are recognised by content and stored tensor by tensor (FORMAT.md §6).
  std::optional<ModelLayout> model;
  if (!o.whole_file && (*in)->is_regular()) {
    auto format = DetectModelFormat(**in);
    if (!format.ok()) return fail(format.error());
    if (*format) {
      auto layout = ParseModel(**in, **format);
      if (!layout.ok()) {
        Error e = layout.error();
        e.hint = "the input looks like a " + std::string(ModelFormatName(**format)) +
                 " model but is not valid; use --whole-file to encrypt it as opaque bytes";
        return fail(e);
      }
      model = std::move(*layout);
    }
  }
  if (!model && (o.public_index || !o.plaintext_tensors.empty() || !o.sign_key.empty())) {
    return fail(MakeError(ErrorCode::kUsage,
                          "--public-index, --plaintext-tensors and --sign-key need a safetensors or GGUF input",
                          "they apply to per-tensor encryption; drop --whole-file or the flags"));
  }
  Result<EncryptSummary> summary = Error{};
  if (model) {
    TensorEncryptOptions t;
    t.suite = options.suite;
    t.context = options.context;
    t.public_index = o.public_index;
    t.plaintext_globs = o.plaintext_tensors;
    t.stream = options.stream;
    std::optional<SigningKey> signer;
    if (!o.sign_key.empty()) {
      auto k = LoadSigningKey(o.sign_key);
      if (!k.ok()) return fail(k.error());
      signer = std::move(*k);
      t.sign_key = &*signer;
    }
    summary = EncryptModelToContainer(**in, *model, output->sink(), *providers, t);
  } else {
    summary = EncryptToContainer(**in, output->sink(), *providers, options);
  }
  if (!summary.ok()) return fail(summary.error());
  if (Status st = output->Commit(); !st.ok()) return fail(st.error());
  FinishProgress();

  const Header& h = summary->header;
  if (o.out.json) {
    PrintJson({{"ok", true},
               {"input", (*in)->path()},
               {"output", o.output},
               {"suite", SuiteName(h.suite)},
               {"file_id", HexEncode(h.file_id)},
               {"context", ContextJson(h.context)},
               {"wrapped_keys", WrappedKeysJson(h)},
               {"layout", model ? "tensors" : "stream"},
               {"model_format", model ? nlohmann::json(ModelFormatName(model->format)) : nlohmann::json(nullptr)},
               {"tensors", model ? model->tensors.size() : 0},
               {"plaintext_bytes", summary->plaintext_bytes}},
              data_on_stdout);
  } else if (!o.out.quiet && !data_on_stdout) {
    std::fprintf(stderr, "encrypted %s -> %s (%s%s, %s, %llu bytes, %zu wrapped key%s)\n",
                 (*in)->path().c_str(), o.output.c_str(), model ? ModelFormatName(model->format) : "whole file",
                 model ? (", " + std::to_string(model->tensors.size()) + " tensors").c_str() : "", SuiteName(h.suite),
                 static_cast<unsigned long long>(summary->plaintext_bytes), h.wrapped_keys.size(),
                 h.wrapped_keys.size() == 1 ? "" : "s");
  }
  return kExitOk;
}

}  // namespace

void SetupEncrypt(CLI::App& sub, std::function<int()>& run) {
  auto o = std::make_shared<EncryptCliOptions>();
  sub.description(
      "Encrypt IN into an .hmod container at OUT. A fresh 256-bit data key is drawn for the\n"
      "file and wrapped once per --kek, so any one of those keys can open it later. The input\n"
      "is streamed in constant memory; OUT appears only when complete (written to a temporary\n"
      "name, fsynced, then renamed). IN and OUT may be '-' for stdin/stdout.\n\n"
      "safetensors and GGUF models (recognised by content) are stored tensor by tensor: each\n"
      "tensor is its own encrypted message at an aligned offset, so loaders can decrypt just the\n"
      "tensors they need, and decrypt restores the original file byte for byte. The tensor\n"
      "index (names, dtypes, shapes) is encrypted unless --public-index.\n\n"
      "Key providers (--kek, repeatable):\n"
      "  file:PATH        a key file made by 'hmodctl keygen' (must be mode 0600)\n"
      "  pass:            a passphrase from $HMOD_PASSPHRASE (Argon2id)\n"
      "  pass:env=NAME    ... from $NAME;   pass:fd=N   ... read from file descriptor N\n\n"
      "Examples:\n"
      "  hmodctl encrypt --kek file:team.key --context model=llama --context version=3 \\\n"
      "      -o llama.hmod llama.safetensors\n"
      "  tar c model/ | hmodctl encrypt --kek file:team.key -o model.tar.hmod -");
  sub.add_option("--kek", o->keks, "Key provider URI to wrap the data key to (repeatable)")
      ->required()
      ->type_name("URI")
      ->allow_extra_args(false);
  sub.add_option("--context", o->context,
                 "Authenticated key=value pair bound to the file (repeatable); decrypt can require it")
      ->type_name("K=V")
      ->allow_extra_args(false);
  sub.add_option("--suite", o->suite,
                 "aes-256-gcm or chacha20-poly1305 (default: aes-256-gcm if the CPU has AES instructions)");
  sub.add_option("-o,--output", o->output, "Output .hmod file, or - for stdout")->required();
  sub.add_option("input", o->input, "Input file, or - for stdin")->required();
  sub.add_flag("-f,--force", o->force, "Replace OUT if it exists");
  sub.add_flag("--whole-file", o->whole_file,
               "Encrypt as one opaque stream even if IN is a safetensors or GGUF model");
  sub.add_flag("--public-index", o->public_index,
               "Leave tensor names, dtypes and shapes readable without a key (default: encrypted)");
  sub.add_option("--plaintext-tensors", o->plaintext_tensors,
                 "Keep tensors matching GLOB in clear, integrity-protected by the index (repeatable)")
      ->type_name("GLOB")
      ->allow_extra_args(false);
  sub.add_option("--sign-key", o->sign_key,
                 "Add an Ed25519 publisher signature (key from 'hmodctl keygen --ed25519'); checkable\n"
                 "with the public key alone: hmodctl verify --pubkey KEY.pub FILE")
      ->type_name("FILE");
  sub.add_option("--threads", o->threads, "Crypto threads (default: one per core)");
  AddOutputOptions(sub, o->out);
  AddKeyOptions(sub, o->keys, false);
  run = [o] { return RunEncrypt(*o); };
}

}  // namespace hmod::cli
