// TEST-ONLY: replaces the CSPRNG behind RandomFill / RandomBytes / SecretBytes::Random
// with a caller-supplied function, so that tools/gen-vectors can write reproducible
// .hmod files from fixed seeds. Nothing in src/cli may include this header: a file
// encrypted under a replaced source has predictable keys.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hmod {

// `fill` must write exactly `n` bytes to `out`. Pass nullptr to restore the OS CSPRNG
// (libsodium randombytes_buf). Not synchronised with concurrent RandomFill calls: set
// it while no other thread draws randomness.
void SetRandomSourceForTesting(void (*fill)(uint8_t* out, size_t n));

}  // namespace hmod
