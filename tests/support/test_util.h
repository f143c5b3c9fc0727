// Shared test helpers: temp dirs, files, deterministic data, running the hmodctl binary.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "hmod/crypto.h"

namespace hmod::testing {

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  // Names of the entries in the directory (to spot leftover temporary files).
  std::vector<std::string> List() const;

 private:
  std::string path_;
};

Bytes ReadFile(const std::string& path);
void WriteFile(const std::string& path, ByteSpan data, unsigned mode = 0644);
bool Exists(const std::string& path);
// "prefix<i>suffix" (built by appending: GCC 12 warns falsely on "s" + std::to_string(i)).
std::string Numbered(const char* prefix, int i, const char* suffix = "");

// Deterministic pseudo-random bytes (not for keys): reproducible test inputs.
Bytes TestData(size_t n, uint64_t seed);

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};
// Runs the hmodctl binary under test with `args`, feeding `stdin_data`, with extra
// environment variables. Never goes through a shell.
CliResult RunCli(const std::vector<std::string>& args, const std::string& stdin_data = {},
                 const std::map<std::string, std::string>& env = {});

// Creates a key file with `hmodctl keygen` and returns its path.
std::string MakeKeyFile(const TempDir& dir, const std::string& name = "k.key");

}  // namespace hmod::testing
