// Fuzzes the header parser (FORMAT.md §2). Beyond "no crash": whatever parses must be
// canonical, i.e. re-encoding the parsed header reproduces the input bytes exactly.
#include <cstdlib>
#include <cstring>

#include "hmod/envelope.h"
#include "hmod/header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool init = hmod::InitCrypto().ok();
  if (!init) std::abort();
  auto parsed = hmod::ParseHeader(hmod::ByteSpan(data, size));
  if (!parsed.ok()) return 0;

  auto core = hmod::EncodeCore(parsed->header);
  if (!core.ok() || core->size() != parsed->core_bytes ||
      std::memcmp(core->data(), data, core->size()) != 0) {
    std::abort();  // accepted a non-canonical core
  }
  // Everything before the MAC is determined by the fields; the MAC key only sets the MAC.
  hmod::SecretBytes mac_key(32);
  auto region = hmod::EncodeHeaderRegion(parsed->header, mac_key);
  if (!region.ok() || region->size() != parsed->header.region_bytes ||
      std::memcmp(region->data(), data, parsed->mac_offset) != 0) {
    std::abort();  // accepted a non-canonical key block or region
  }
  return 0;
}
