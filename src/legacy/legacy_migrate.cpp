// Legacy file -> .hmod (docs/LEGACY.md §5): authenticate, re-encrypt from the verified pass-2
// plaintext (per tensor for models), commit atomically, then remove the legacy file.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "hmod/envelope.h"
#include "hmod/legacy.h"
#include "hmod/tensor_container.h"

namespace hmod {
namespace {

// Sequential reads over a positional source, hashed on the way.
class SequentialReader final : public ByteSource {
 public:
  explicit SequentialReader(const PositionalSource& src) : src_(src) {}
  Result<size_t> Read(MutableByteSpan buf) override {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), src_.size() - pos_));
    if (n == 0) return size_t{0};
    HMOD_TRY(src_.ReadAt(pos_, buf.first(n)));
    hash_.Update(buf.first(n));
    pos_ += n;
    return n;
  }
  uint64_t pos() const { return pos_; }
  std::array<uint8_t, 32> Finish() { return hash_.Finish(); }

 private:
  const PositionalSource& src_;
  uint64_t pos_ = 0;
  Sha256Stream hash_;
};

bool IsPrintableUtf8(const Bytes& b) {
  const std::string_view s(reinterpret_cast<const char*>(b.data()), b.size());
  if (s.empty() || s.size() > kMaxContextValueBytes || !IsValidUtf8(s)) return false;
  return std::none_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

Error IoErrno(const std::string& what, const std::string& path, int err) {
  return MakeError(ErrorCode::kIo, what + " " + path + ": " + std::strerror(err));
}

std::string DirName(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// PATH is gone: is OUTPUT a migrated file that one of the new keys opens?
Result<LegacyMigration> AlreadyMigrated(LegacyMigration m, ProviderList& new_keks) {
  auto in = InputFile::Open(m.output);
  if (!in.ok()) {
    return MakeError(ErrorCode::kIo, "cannot open " + m.input + ": no such file (nor " + m.output + ")");
  }
  auto parsed = ReadHeader(**in);
  if (!parsed.ok()) {
    return MakeError(ErrorCode::kFormat, m.input + " does not exist and " + m.output + " is not an .hmod file: " +
                                             parsed.error().message);
  }
  HMOD_ASSIGN_OR_RETURN(OpenedHeader opened, OpenHeader(std::move(*parsed), new_keks));
  m.already_migrated = true;
  m.opened_by = opened.opened_by;
  m.header = opened.parsed.header;
  m.layout = m.header.layout;
  return m;
}

}  // namespace

Result<LegacyMigration> MigrateLegacyFile(const std::string& path, const LegacyKeys& keys, ProviderList& new_keks,
                                          const LegacyMigrationOptions& options) {
  LegacyMigration m;
  m.input = path;
  m.output = options.output.empty() ? path + ".hmod" : options.output;
  if (path.empty() || path == "-") {
    return MakeError(ErrorCode::kUsage, "legacy migration needs a file path, not stdin",
                     "the legacy file is read twice and then replaced; save it to a file first");
  }
  if (new_keks.empty()) return MakeError(ErrorCode::kUsage, "no key for the new file", "pass at least one --kek URI");

  struct stat before{};
  if (::stat(path.c_str(), &before) != 0) {
    if (errno == ENOENT) return AlreadyMigrated(std::move(m), new_keks);
    return IoErrno("cannot stat", path, errno);
  }
  HMOD_ASSIGN_OR_RETURN(auto in, InputFile::Open(path));
  if (!in->is_regular()) return MakeError(ErrorCode::kUsage, path + " is not a regular file");
  if (::fstat(in->fd(), &before) != 0) return IoErrno("cannot stat", path, errno);
  if (IsSameFile(*in, m.output) || m.output == path) {
    return MakeError(ErrorCode::kUsage, "the output would overwrite the legacy input " + path, "choose another output");
  }
  if (!options.force && ::access(m.output.c_str(), F_OK) == 0) {
    return MakeError(ErrorCode::kIo, "refusing to replace " + m.output + ": it exists",
                     "if it is a finished migration, check it with `hmodctl verify` and remove " + path +
                         "; or pass --force to migrate again");
  }

  HMOD_ASSIGN_OR_RETURN(auto legacy, LegacyFile::Open(*in, keys));
  const LegacyInfo& info = legacy->info();
  m.format = info.format;
  m.opened_by = legacy->opened_by();
  m.plaintext_bytes = info.plaintext_bytes;
  m.plaintext_sha256 = HexEncode(info.plaintext_sha256);

  // The new file's context: the authenticated ENVMODEL metadata, or an ENCMODEL AAD that is
  // text, plus the caller's pairs.
  EncryptionContext context = options.context;
  std::vector<std::pair<std::string, std::string>> inherited = info.metadata;
  if (info.format == LegacyFormat::kEncModel && keys.aad && IsPrintableUtf8(*keys.aad)) {
    inherited.emplace_back("legacy-aad", std::string(keys.aad->begin(), keys.aad->end()));
  }
  for (const auto& [k, v] : inherited) {
    auto [it, inserted] = context.emplace(k, v);
    if (!inserted && it->second != v) {
      return MakeError(ErrorCode::kUsage, "--context " + k + "=" + it->second + " conflicts with the legacy metadata (" +
                                              k + "=" + v + ")");
    }
  }
  HMOD_TRY(ValidateContext(context));

  const ProgressFn& progress = options.stream.progress;
  const uint64_t total = info.plaintext_bytes;
  HMOD_TRY(legacy->Authenticate(progress ? ProgressFn([&](uint64_t d) { progress(d / 2); }) : ProgressFn()));
  const PositionalSource& plain = legacy->plaintext();

  StreamOptions stream = options.stream;
  if (progress) stream.progress = [&](uint64_t d) { progress(total / 2 + d / 2); };

  HMOD_ASSIGN_OR_RETURN(auto out, AtomicFile::Create(m.output, 0666, options.force));
  out->Reserve(total + total / 2048 + (1u << 20));  // plaintext plus tags and headers
  std::optional<ModelLayout> layout;
  if (!options.whole_file) {
    HMOD_ASSIGN_OR_RETURN(std::optional<ModelFormat> format, DetectModelFormat(plain));
    if (format) {
      auto parsed = ParseModel(plain, *format);
      if (parsed.ok()) {
        layout = std::move(*parsed);
      } else if (parsed.error().code != ErrorCode::kFormat) {
        return parsed.error();  // I/O or a changed file: not a reason to fall back
      }
      // A recognised but malformed model is kept whole (stream layout), byte for byte.
    }
  }
  if (layout) {
    TensorEncryptOptions t;
    t.suite = options.suite;
    t.context = context;
    t.public_index = options.public_index;
    t.stream = stream;
    HMOD_ASSIGN_OR_RETURN(EncryptSummary s, EncryptModelToContainer(plain, *layout, *out, new_keks, t));
    m.header = std::move(s.header);
    m.layout = Layout::kTensors;
    m.model_format = layout->format;
    m.tensors = layout->tensors.size();
  } else {
    EncryptOptions e;
    e.suite = options.suite;
    e.context = context;
    e.stream = stream;
    SequentialReader reader(plain);
    HMOD_ASSIGN_OR_RETURN(EncryptSummary s, EncryptToContainer(reader, *out, new_keks, e));
    if (reader.pos() != total || !ConstantTimeEquals(reader.Finish(), info.plaintext_sha256)) {
      return MakeError(ErrorCode::kAuthFailed, "the legacy plaintext changed while it was migrated");
    }
    m.header = std::move(s.header);
    m.layout = Layout::kStream;
  }
  HMOD_TRY(out->Commit());

  if (options.keep_legacy) return m;
  // Remove PATH only if it is still the file that was read.
  struct stat now{};
  if (::stat(path.c_str(), &now) != 0 || now.st_dev != before.st_dev || now.st_ino != before.st_ino ||
      now.st_size != before.st_size || now.st_mtim.tv_sec != before.st_mtim.tv_sec ||
      now.st_mtim.tv_nsec != before.st_mtim.tv_nsec) {
    return MakeError(ErrorCode::kIo, path + " changed or moved during the migration; it was not removed",
                     m.output + " holds the authenticated content of the file as it was read");
  }
  if (::unlink(path.c_str()) != 0) return IoErrno("migrated, but cannot remove", path, errno);
  const int dfd = ::open(DirName(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  m.legacy_removed = true;
  return m;
}

}  // namespace hmod
