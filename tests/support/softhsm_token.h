// A fresh SoftHSM2 token for one test: its own token directory and config file in a temp
// dir, selected through SOFTHSM2_CONF (set in this process and passed to children).
#pragma once

#include <map>
#include <string>

#include "support/test_util.h"

namespace hmod::testing {

inline constexpr const char* kSoftHsmModule = "/usr/lib/softhsm/libsofthsm2.so";
inline constexpr const char* kSoftHsmUserPin = "1234";
inline constexpr const char* kSoftHsmSoPin = "5678";

class SoftHsmToken {
 public:
  // Writes the config, runs `softhsm2-util --init-token --free --label LABEL --pin 1234
  // --so-pin 5678`, finds the token by label in `softhsm2-util --show-slots` and points
  // SOFTHSM2_CONF at it. On any failure ok() is false and error() says why (a missing
  // softhsm2-util is a failure, not a skip: CI installs it).
  explicit SoftHsmToken(std::string label = "L");
  ~SoftHsmToken();  // restores SOFTHSM2_CONF; the temp dir goes with everything in it
  SoftHsmToken(const SoftHsmToken&) = delete;
  SoftHsmToken& operator=(const SoftHsmToken&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& label() const { return label_; }
  const std::string& serial() const { return serial_; }
  const std::string& conf_path() const { return conf_; }
  const TempDir& dir() const { return dir_; }
  std::map<std::string, std::string> env() const { return {{"SOFTHSM2_CONF", conf_}}; }

  // "pkcs11:token=LABEL;object=OBJECT?module-path=...&pin-value=1234" (`query` replaces
  // the PIN part when given, e.g. "pin-source=file:/x").
  std::string Uri(const std::string& object, const std::string& query = "pin-value=1234") const;

 private:
  TempDir dir_;
  std::string label_, serial_, conf_, old_conf_;
  bool had_old_conf_ = false;
  std::string error_;
};

struct ProcessResult {
  int exit_code = -1;
  std::string out, err;
};
// Runs `argv` (argv[0] looked up in PATH) with extra environment, without a shell.
ProcessResult RunProcess(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {});

}  // namespace hmod::testing
