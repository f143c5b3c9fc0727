#include "cli/rotate_targets.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "hmod/header.h"

namespace hmod::cli {
namespace fs = std::filesystem;
namespace {

bool StartsWith(const std::string& path, const void* magic, size_t n) {
  std::ifstream f(path, std::ios::binary);
  char buf[8] = {};
  return f.read(buf, static_cast<std::streamsize>(n)) && std::memcmp(buf, magic, n) == 0;
}

bool IsRotationLeftover(const std::string& name) {
  return name.find(".hmod-tmp-") != std::string::npos ||
         (name.size() > 12 && name.compare(name.size() - 12, 12, ".hmod-rewrap") == 0);
}

bool WantedInDirectory(const fs::path& p, bool include_legacy) {
  if (IsRotationLeftover(p.filename().string())) return false;
  if (StartsWith(p.string(), kMagic.data(), kMagic.size())) return true;
  return include_legacy && (StartsWith(p.string(), "ENCMODEL", 8) || StartsWith(p.string(), "ENVMODEL", 8));
}

Status AddPath(const std::string& path, const TargetOptions& o, std::vector<std::string>& out) {
  std::error_code ec;
  const auto st = fs::symlink_status(path, ec);
  if (ec && o.include_legacy && !fs::exists(st)) {
    out.push_back(path);  // a legacy file already migrated: the migration reports it
    return OkStatus();
  }
  if (ec) return MakeError(ErrorCode::kIo, "cannot read " + path + ": " + ec.message());
  if (fs::is_directory(st)) {
    if (!o.recursive) {
      return MakeError(ErrorCode::kUsage, path + " is a directory", "add -r to rotate every .hmod file under it");
    }
    // Symlinks are not followed: a rotation rewrites files, and should do so where they live.
    for (fs::recursive_directory_iterator it(path, fs::directory_options::none, ec), end; !ec && it != end;
         it.increment(ec)) {
      if (it->is_regular_file(ec) && !it->is_symlink(ec) && WantedInDirectory(it->path(), o.include_legacy)) {
        out.push_back(it->path().string());
      }
    }
    if (ec) return MakeError(ErrorCode::kIo, "cannot list " + path + ": " + ec.message());
    return OkStatus();
  }
  out.push_back(path);
  return OkStatus();
}

}  // namespace

Result<std::pair<size_t, size_t>> ParseShard(const std::string& text) {
  const auto slash = text.find('/');
  size_t i = 0, n = 0;
  try {
    if (slash == std::string::npos) throw std::invalid_argument("no slash");
    size_t used = 0;
    i = std::stoul(text.substr(0, slash), &used);
    if (used != slash) throw std::invalid_argument("junk");
    n = std::stoul(text.substr(slash + 1), &used);
    if (used != text.size() - slash - 1) throw std::invalid_argument("junk");
  } catch (const std::exception&) {
    return MakeError(ErrorCode::kUsage, "bad --shard '" + text + "'", "use --shard I/N with 0 <= I < N, e.g. --shard 0/8");
  }
  if (n == 0 || i >= n) {
    return MakeError(ErrorCode::kUsage, "bad --shard '" + text + "'", "I counts from 0 and must be below N");
  }
  return std::make_pair(i, n);
}

Result<std::vector<std::string>> CollectTargets(const std::vector<std::string>& paths, const TargetOptions& o) {
  std::vector<std::string> roots = paths;
  if (!o.manifest.empty()) {
    std::ifstream m(o.manifest);
    if (!m) return MakeError(ErrorCode::kIo, "cannot read the manifest " + o.manifest);
    size_t shard = 0, shards = 1;
    if (!o.shard.empty()) {
      HMOD_ASSIGN_OR_RETURN(auto s, ParseShard(o.shard));
      std::tie(shard, shards) = s;
    }
    std::string line;
    size_t number = 0;
    while (std::getline(m, line)) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
      const auto start = line.find_first_not_of(" \t");
      if (start == std::string::npos || line[start] == '#') continue;
      if (number++ % shards == shard) roots.push_back(line.substr(start));
    }
  } else if (!o.shard.empty()) {
    return MakeError(ErrorCode::kUsage, "--shard needs --manifest");
  }
  std::vector<std::string> out;
  for (const auto& p : roots) HMOD_TRY(AddPath(p, o, out));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace hmod::cli
