// hmodctl license: per-device licenses for desktop distribution (FORMAT.md §5.7).
#include <sodium.h>

#include <unistd.h>

#include <cstdio>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "hmod/key_file.h"
#include "keys/license_provider.h"

namespace hmod::cli {
namespace {

struct LicenseOptions {
  std::vector<std::string> keks;
  std::string fingerprint, license_key_file, output, input;
  KeyOptions keys;
  OutputOptions out;
};

int RunIssue(const LicenseOptions& o) {
  auto fail = [&](const Error& e) { return ReportError(e, o.out); };
  auto providers = BuildProviders(o.keks, o.keys, o.input, true);
  if (!providers.ok()) return fail(providers.error());
  auto in = InputFile::Open(o.input);
  if (!in.ok()) return fail(in.error());
  auto parsed = ReadHeader(**in);
  if (!parsed.ok()) return fail(parsed.error());
  auto opened = OpenHeader(std::move(*parsed), *providers);
  if (!opened.ok()) return fail(opened.error());

  // The license file first: if it cannot be created, nothing else is.
  auto file = AtomicFile::Create(o.output, 0644, false);
  if (!file.ok()) return fail(file.error());
  // One license key per customer: reuse theirs, or make one (a 0600 key file).
  std::string key_path = o.license_key_file;
  bool made_key = false;
  if (key_path.empty()) {
    key_path = o.output + ".key";
    auto fp = GenerateKeyFile(key_path);
    if (!fp.ok()) return fail(fp.error());
    made_key = true;
  }
  auto issued = [&]() -> Status {
    HMOD_ASSIGN_OR_RETURN(SecretBytes license_key, LoadKeyFile(key_path));
    HMOD_ASSIGN_OR_RETURN(std::string text, IssueLicense(*opened, license_key, o.fingerprint));
    HMOD_TRY((*file)->Write(AsBytes(text)));
    return (*file)->Commit();
  }();
  if (!issued.ok()) {
    if (made_key) ::unlink(key_path.c_str());  // no orphaned key without its license
    return fail(issued.error());
  }
  if (o.out.json) {
    PrintJson({{"ok", true}, {"license", o.output}, {"license_key_file", key_path}, {"device", o.fingerprint}});
  } else if (!o.out.quiet) {
    std::printf("issued %s for device %s\nlicense key: %s (give its key line's hex to the user as HMOD_LICENSE_KEY)\n",
                o.output.c_str(), o.fingerprint.c_str(), key_path.c_str());
  }
  return kExitOk;
}

int RunFingerprint(const LicenseOptions& o) {
  auto fp = DeviceFingerprint();
  if (!fp.ok()) return ReportError(fp.error(), o.out);
  if (o.out.json) {
    PrintJson({{"ok", true}, {"fingerprint", *fp}});
  } else {
    std::printf("%s\n", fp->c_str());
  }
  return kExitOk;
}

}  // namespace

void SetupLicense(CLI::App& sub, std::function<int()>& run) {
  auto o = std::make_shared<LicenseOptions>();
  sub.description(
      "Per-device licenses: ship ONE encrypted model to every user, plus a small license per\n"
      "device that opens it only there. A license wraps the model's data key under a key\n"
      "derived (HKDF) from the user's license key and the device fingerprint. Revoking = no\n"
      "longer issuing; a license copied to another device does not open the model.\n\n"
      "Example:\n"
      "  (user)   hmodctl license fingerprint\n"
      "  (vendor) hmodctl license issue --kek file:vendor.key --fingerprint FP -o alice.lic model.hmod\n"
      "  (user)   HMOD_LICENSE_KEY=... hmodctl decrypt --kek license:alice.lic -o model.gguf model.hmod");
  sub.require_subcommand(1);
  CLI::App* issue = sub.add_subcommand("issue", "Issue a license for one device");
  issue->add_option("--kek", o->keks, "A key provider that opens the model")->required()->allow_extra_args(false);
  issue->add_option("--fingerprint", o->fingerprint, "The device's fingerprint (from 'hmodctl license fingerprint')")
      ->required();
  issue->add_option("--license-key-file", o->license_key_file,
                    "The customer's license key file (default: create OUT.key, mode 0600)");
  issue->add_option("-o,--output", o->output, "License file to write")->required();
  issue->add_option("input", o->input, "The encrypted model (.hmod)")->required();
  AddOutputOptions(*issue, o->out);
  AddKeyOptions(*issue, o->keys, true);
  CLI::App* fingerprint = sub.add_subcommand("fingerprint", "Print this device's fingerprint");
  AddOutputOptions(*fingerprint, o->out);
  run = [o, issue] { return issue->parsed() ? RunIssue(*o) : RunFingerprint(*o); };
}

}  // namespace hmod::cli
