// pass: — a key derived from a passphrase with Argon2id (FORMAT.md §5.3).
// The passphrase comes from $HMOD_PASSPHRASE, another named variable, or a file
// descriptor; never from the command line.
#pragma once

#include "hmod/key_provider.h"

namespace hmod {

// `spec` is what follows "pass:": "" (HMOD_PASSPHRASE), "env=NAME" or "fd=N".
Result<std::unique_ptr<KeyProvider>> MakePassProvider(const std::string& spec);

}  // namespace hmod
