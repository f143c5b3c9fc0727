// Test helpers for legacy files: running tests/support/legacy_maker.py (the seed's own Python
// code) to make ENCMODEL / ENVMODEL files.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "support/test_util.h"

namespace hmod::testing {

// Path of tests/support/legacy_maker.py in the source tree.
std::string LegacyMakerPath();

// Runs `argv` (argv[0] looked up on PATH) with extra environment variables; output is
// collected through files in `scratch`. Never goes through a shell.
CliResult RunProgram(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                     const std::string& scratch);

}  // namespace hmod::testing
