// hmodctl keygen: create a key-encryption key file (mode 0600).
#include <cstdio>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "hmod/key_file.h"
#include "hmod/signature.h"
#include "keys/x25519_provider.h"

namespace hmod::cli {
namespace {

struct KeygenOptions {
  std::string output;
  bool ed25519 = false;
  bool x25519 = false;
  OutputOptions out;
};

int RunSigningKeygen(const KeygenOptions& o) {
  auto pk = GenerateSigningKeyFiles(o.output);
  if (!pk.ok()) return ReportError(pk.error(), o.out);
  const std::string pub = o.output + ".pub";
  if (o.out.json) {
    PrintJson({{"ok", true}, {"signing_key", o.output}, {"public_key_file", pub}, {"public_key", HexEncode(*pk)}});
  } else if (!o.out.quiet) {
    std::printf("created %s (secret, mode 0600) and %s (public)\npublic key: %s\n"
                "sign with: hmodctl encrypt --sign-key %s ...\ncheck with: hmodctl verify --pubkey %s FILE\n",
                o.output.c_str(), pub.c_str(), HexEncode(*pk).c_str(), o.output.c_str(), pub.c_str());
  }
  return kExitOk;
}

int RunX25519Keygen(const KeygenOptions& o) {
  auto recipient = GenerateX25519Identity(o.output);
  if (!recipient.ok()) return ReportError(recipient.error(), o.out);
  if (o.out.json) {
    PrintJson({{"ok", true}, {"identity_file", o.output}, {"recipient", *recipient}});
  } else if (!o.out.quiet) {
    std::printf("created %s (identity, mode 0600)\nrecipient: %s\n"
                "anyone can encrypt to you with: --kek %s\ndecrypt with: --kek x25519:%s\n",
                o.output.c_str(), recipient->c_str(), recipient->c_str(), o.output.c_str());
  }
  return kExitOk;
}

int RunKeygen(const KeygenOptions& o) {
  if (o.ed25519 && o.x25519) {
    return ReportError(MakeError(ErrorCode::kUsage, "--ed25519 and --x25519 are exclusive"), o.out);
  }
  if (o.ed25519) return RunSigningKeygen(o);
  if (o.x25519) return RunX25519Keygen(o);
  auto fp = GenerateKeyFile(o.output);
  if (!fp.ok()) return ReportError(fp.error(), o.out);
  if (o.out.json) {
    PrintJson({{"ok", true}, {"key_file", o.output}, {"fingerprint", *fp}, {"kek", "file:" + o.output}});
  } else if (!o.out.quiet) {
    std::printf("created %s (mode 0600)\nfingerprint: %s\nuse it with: --kek file:%s\n",
                o.output.c_str(), fp->c_str(), o.output.c_str());
  }
  return kExitOk;
}

}  // namespace

void SetupKeygen(CLI::App& sub, std::function<int()>& run) {
  auto o = std::make_shared<KeygenOptions>();
  sub.description(
      "Create a new random 256-bit key-encryption key in a file only you can read (0600).\n"
      "The file is never overwritten. Keep it away from the models it protects:\n"
      "anyone holding it can decrypt them.\n\n"
      "Example:\n  hmodctl keygen -o ~/.config/hmod/team.key\n"
      "  hmodctl encrypt --kek file:~/.config/hmod/team.key -o model.hmod model.safetensors\n"
      "  hmodctl keygen --ed25519 -o publisher      # publisher + publisher.pub for --sign-key");
  sub.add_option("-o,--output", o->output, "Where to write the key file")->required();
  sub.add_flag("--ed25519", o->ed25519,
               "Make a publisher signing key instead: NAME (secret, 0600) and NAME.pub (public)");
  sub.add_flag("--x25519", o->x25519,
               "Make an x25519 identity instead (0600) and print its public recipient string");
  AddOutputOptions(sub, o->out);
  run = [o] { return RunKeygen(*o); };
}

}  // namespace hmod::cli
