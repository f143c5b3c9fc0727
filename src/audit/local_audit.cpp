// Local trees: every regular file is recognised by its first bytes (docs/AUDIT.md §1).
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include "audit/audit.h"
#include "audit/container_info.h"
#include "audit/sniff.h"
#include "hmod/io.h"
#include "hmod/key_file.h"
#include "keys/key_line.h"

namespace hmod::audit {
namespace {

namespace fs = std::filesystem;

constexpr long kTmpfsMagic = 0x01021994;  // linux/magic.h TMPFS_MAGIC

// A secret found in the tree, and the wrapped-key record it would open.
struct Secret {
  std::string path;
  Content kind = Content::kUnknown;
  std::string provider;  // "file", "x25519"; empty if it opens nothing (signing keys)
  std::string key_id;
};

struct Model {
  std::string path;
  std::vector<WrappedKey> records;  // wrapped bytes dropped: only provider and key id matter
};

struct Walk {
  const Target& target;
  Report& report;
  bool tmpfs = false;
  size_t files = 0;
  size_t plaintext = 0;
  size_t legacy = 0;
  std::vector<Secret> secrets;
  std::vector<Model> models;

  void Add(const char* rule, Level level, const std::string& location, std::string message,
           std::string remediation = {}, nlohmann::json details = nlohmann::json::object()) {
    report.findings.push_back(
        {rule, level, target.text, location, std::move(message), std::move(remediation), std::move(details)});
  }
};

bool IsTmpfs(const std::string& path) {
  struct statfs sfs {};
  return ::statfs(path.c_str(), &sfs) == 0 && static_cast<long>(sfs.f_type) == kTmpfsMagic;
}

std::string ModeText(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// The fingerprint or public key that a secret file's wrapped-key records carry as key id.
std::optional<std::string> KeyIdOf(Content kind, std::string_view text) {
  if (kind == Content::kKeyFile) {
    auto key = DecodeKeyFile(text);
    if (!key.ok()) return std::nullopt;
    return KeyFingerprint(*key);
  }
  if (kind == Content::kX25519Identity) {
    static constexpr KeyLineFormat kIdentity{"hmod-x25519-identity-v1 ", 32, "an x25519 identity", ""};
    auto secret = DecodeKeyLine(text, kIdentity, "");
    if (!secret.ok()) return std::nullopt;
    std::array<uint8_t, 32> pub{};
    crypto_scalarmult_base(pub.data(), secret->secret().data());
    return HexEncode(pub);
  }
  return std::nullopt;
}

void CheckModel(Walk& w, const std::string& path, Content kind, const struct stat& st) {
  ++w.plaintext;
  nlohmann::json details = {{"format", ContentName(kind)}, {"bytes", st.st_size}, {"mode", ModeText(st.st_mode)}};
  const std::string what = std::string(ContentName(kind)) + " model in plaintext";
  if (w.tmpfs) {
    const bool shared = (st.st_mode & 077) != 0;
    w.Add("local.tmpfs-plaintext", shared ? Level::kFail : Level::kWarn, path,
          what + " in tmpfs" + (shared ? " readable by group/others (mode " + ModeText(st.st_mode) + ")" : " (mode 0600)"),
          shared ? "delete it, or have the loader create it 0600 and remove it when done"
                 : "fine while a loader runs; delete it when the process that decrypted it exits",
          details);
    return;
  }
  w.Add("local.plaintext-model", Level::kFail, path, what,
        "encrypt it (hmodctl encrypt --kek ... -o " + fs::path(path).filename().string() +
            ".hmod) and delete the plaintext",
        details);
}

void CheckContainer(Walk& w, const std::string& path) {
  Finding f{"local.hmod-file", Level::kPass, w.target.text, path, "", "", nlohmann::json::object()};
  auto in = InputFile::Open(path);
  auto parsed = in.ok() ? ReadHeader(**in) : Result<ParsedHeader>(in.error());
  if (!parsed.ok()) {
    f.level = Level::kWarn;
    f.message = "has the .hmod magic but no readable header: " + parsed.error().message;
    f.remediation = "check the file with hmodctl inspect; it may be truncated or from a newer version";
    w.report.findings.push_back(std::move(f));
    return;
  }
  DescribeContainer(parsed->header, f);
  Model m{path, {}};
  for (const auto& k : parsed->header.wrapped_keys) m.records.push_back({k.provider_id, k.key_id, {}});
  w.models.push_back(std::move(m));
  w.report.findings.push_back(std::move(f));
}

void CheckSecret(Walk& w, const std::string& path, Content kind, const struct stat& st, ByteSpan head) {
  const std::string_view text(reinterpret_cast<const char*>(head.data()), head.size());
  const bool shared = (st.st_mode & 077) != 0;
  nlohmann::json details = {{"kind", ContentName(kind)}, {"mode", ModeText(st.st_mode)}};
  if (shared) {
    w.Add("local.key-file-permissions", Level::kFail, path,
          std::string(ContentName(kind)) + " with mode " + ModeText(st.st_mode) + ": readable by group or others",
          "chmod 600 " + path + ", and rotate the key if others may have read it", details);
  } else {
    w.Add("local.key-file-permissions", Level::kPass, path,
          std::string(ContentName(kind)) + " with mode " + ModeText(st.st_mode), "", details);
  }
  Secret s{path, kind, "", ""};
  if (auto id = KeyIdOf(kind, text)) {
    s.provider = kind == Content::kKeyFile ? "file" : "x25519";
    s.key_id = *id;
  }
  w.secrets.push_back(std::move(s));
}

void CheckFile(Walk& w, const std::string& path) {
  ++w.files;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    w.Add("local.unreadable", Level::kWarn, path, std::string("cannot read: ") + std::strerror(err),
          "run the audit as a user who can read the tree");
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return;
  }
  Bytes head(std::min<uint64_t>(kSniffBytes, static_cast<uint64_t>(st.st_size)));
  size_t got = 0;
  while (got < head.size()) {
    const ssize_t n = ::pread(fd, head.data() + got, head.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  head.resize(got);
  const Content kind = Sniff(head, static_cast<uint64_t>(st.st_size));
  if (IsPlaintextModel(kind)) {
    CheckModel(w, path, kind, st);
  } else if (kind == Content::kHmod) {
    CheckContainer(w, path);
  } else if (kind == Content::kLegacyEncmodel || kind == Content::kLegacyEnvmodel) {
    ++w.legacy;
    w.Add("local.legacy-container", Level::kWarn, path,
          std::string("legacy ") + (kind == Content::kLegacyEncmodel ? "ENCMODEL" : "ENVMODEL") +
              " container: no key commitment, no chunking, no list of who can open it",
          "migrate it to .hmod with hmodctl rotate --from-legacy (docs/LEGACY.md), then delete the legacy file",
          {{"format", ContentName(kind)}});
  } else if (IsSecretKey(kind)) {
    CheckSecret(w, path, kind, st, head);
  }
  sodium_memzero(head.data(), head.size());  // may have held a key
}

// After the walk: a secret that opens a model in the same tree (FORMAT.md §5.1, §5.6 key ids).
void CheckKeysBesideModels(Walk& w) {
  for (const auto& s : w.secrets) {
    if (s.provider.empty()) continue;
    nlohmann::json opens = nlohmann::json::array();
    std::string names;
    for (const auto& m : w.models) {
      for (const auto& r : m.records) {
        if (r.provider_id == s.provider && r.key_id == s.key_id) {
          opens.push_back(m.path);
          if (opens.size() <= 3) names += (names.empty() ? "" : ", ") + m.path;
          break;
        }
      }
    }
    nlohmann::json details = {{"key_id", s.key_id}, {"provider", s.provider}, {"opens", opens}};
    if (opens.empty()) {
      w.Add("local.key-beside-model", Level::kPass, s.path,
            "opens none of the " + std::to_string(w.models.size()) + " encrypted model(s) in this tree", "", details);
    } else {
      w.Add("local.key-beside-model", Level::kFail, s.path,
            "key stored beside the data: opens " + std::to_string(opens.size()) + " encrypted model(s) here (" + names +
                (opens.size() > 3 ? ", ..." : "") + ")",
            "keep keys out of the model tree (a KMS, an HSM, a secrets store), then hmodctl rotate the models "
            "to a new key",
            details);
    }
  }
}

}  // namespace

Status AuditLocal(const Target& target, const Options&, Report& report) {
  std::error_code ec;
  const fs::file_status st = fs::status(target.path, ec);
  if (ec || !fs::exists(st)) {
    // The target is printed before the message: no need to repeat the path.
    return MakeError(ErrorCode::kIo, "cannot read: " + (ec ? ec.message() : std::string("no such file")));
  }
  Walk w{target, report};
  w.tmpfs = IsTmpfs(target.path);
  if (fs::is_directory(st)) {
    fs::recursive_directory_iterator it(target.path, fs::directory_options::skip_permission_denied, ec);
    if (ec) return MakeError(ErrorCode::kIo, "cannot list the directory: " + ec.message());
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) {
        w.Add("local.unreadable", Level::kWarn, target.path, "stopped listing: " + ec.message(),
              "run the audit as a user who can read the tree");
        break;
      }
      // Symlinks are not followed: a link out of the tree is not part of it, and loops end.
      if (it->is_symlink(ec) || !it->is_regular_file(ec)) continue;
      CheckFile(w, it->path().string());
    }
  } else {
    CheckFile(w, target.path);
  }
  CheckKeysBesideModels(w);
  if (w.legacy == 0) {
    w.Add("local.legacy-container", Level::kPass, target.path,
          "no legacy ENCMODEL/ENVMODEL container among " + std::to_string(w.files) + " file(s)");
  }
  if (w.plaintext == 0) {
    w.Add(w.tmpfs ? "local.tmpfs-plaintext" : "local.plaintext-model", Level::kPass, target.path,
          "no plaintext model among " + std::to_string(w.files) + " file(s)" + (w.tmpfs ? " in tmpfs" : ""));
  }
  return OkStatus();
}

}  // namespace hmod::audit
