// x25519: public-key recipients (FORMAT.md §5.6). Anyone can wrap to a public key; only the
// holder of the identity file unwraps.
#pragma once

#include <array>

#include "hmod/key_provider.h"

namespace hmod {

// `spec` is what follows "x25519:": 64 hex digits of a recipient public key (wrap only), or
// the path of an identity file (wrap and unwrap).
Result<std::unique_ptr<KeyProvider>> MakeX25519Provider(const std::string& spec);

// Creates an identity file (mode 0600, refuses to overwrite); returns the recipient string
// "x25519:<64 hex>".
Result<std::string> GenerateX25519Identity(const std::string& path);

}  // namespace hmod
