// hmodctl keygen: create a key-encryption key file (mode 0600).
#include <cstdio>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "hmod/key_file.h"
#include "hmod/signature.h"
#include "keys/pkcs11_provider.h"
#include "keys/x25519_provider.h"

namespace hmod::cli {
namespace {

struct KeygenOptions {
  std::string output;
  bool ed25519 = false;
  bool x25519 = false;
  std::string pkcs11;  // a PKCS#11 URI: make the key inside that token instead of a file
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

int RunPkcs11Keygen(const KeygenOptions& o) {
  auto key = GeneratePkcs11Key(o.pkcs11);
  if (!key.ok()) return ReportError(key.error(), o.out);
  if (o.out.json) {
    PrintJson({{"ok", true}, {"pkcs11_key", key->key_id}, {"kek", key->kek_uri}, {"sensitive", key->sensitive},
               {"extractable", key->extractable}});
  } else if (!o.out.quiet) {
    std::printf("created AES-256 key %s\n(sensitive, not extractable: it never leaves the token)\n"
                "use it with: --kek '%s&pin-source=file:/path/to/pin'\n",
                key->key_id.c_str(), key->kek_uri.c_str());
  }
  return kExitOk;
}

int RunKeygen(const KeygenOptions& o) {
  if (o.ed25519 + o.x25519 + !o.pkcs11.empty() > 1) {
    return ReportError(MakeError(ErrorCode::kUsage, "--ed25519, --x25519 and --pkcs11 are exclusive"), o.out);
  }
  if (!o.pkcs11.empty()) {
    if (!o.output.empty()) {
      return ReportError(MakeError(ErrorCode::kUsage, "--pkcs11 makes the key inside the token; drop -o"), o.out);
    }
    return RunPkcs11Keygen(o);
  }
  if (o.output.empty()) {
    return ReportError(MakeError(ErrorCode::kUsage, "--output is required", "hmodctl keygen -o FILE"), o.out);
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
      "  hmodctl keygen --ed25519 -o publisher      # publisher + publisher.pub for --sign-key\n"
      "  hmodctl keygen --pkcs11 'pkcs11:token=T;object=model-kek?module-path=/usr/lib/softhsm/libsofthsm2.so"
      "&pin-source=file:pin.txt'");
  sub.add_option("-o,--output", o->output, "Where to write the key file (required unless --pkcs11)");
  sub.add_flag("--ed25519", o->ed25519,
               "Make a publisher signing key instead: NAME (secret, 0600) and NAME.pub (public)");
  sub.add_flag("--x25519", o->x25519,
               "Make an x25519 identity instead (0600) and print its public recipient string");
  sub.add_option("--pkcs11", o->pkcs11,
                 "Make a non-extractable AES-256 key inside a PKCS#11 token instead: a pkcs11: URI\n"
                 "with object=LABEL (and optionally id=) for the new key, the module and the PIN");
  AddOutputOptions(sub, o->out);
  run = [o] { return RunKeygen(*o); };
}

}  // namespace hmod::cli
