// Fuzzes model detection and both model parsers. Beyond "no crash": every error must be
// kFormat, and every accepted layout must be safe to slice (tensors sorted, inside the file,
// not overlapping, after the data start).
#include <cstdlib>

#include "hmod/io.h"
#include "hmod/model_file.h"

namespace {

void CheckLayout(const hmod::Result<hmod::ModelLayout>& r, uint64_t size) {
  if (!r.ok()) {
    if (r.error().code != hmod::ErrorCode::kFormat) std::abort();
    return;
  }
  if (r->file_size != size || r->data_start > size) std::abort();
  uint64_t covered = r->data_start;
  uint64_t prev_offset = 0;
  for (const auto& t : r->tensors) {
    if (t.offset < prev_offset || t.offset < r->data_start) std::abort();  // sorted, after the header
    if (t.offset > size || t.size > size - t.offset) std::abort();          // inside the file
    if (t.size > 0) {
      if (t.offset < covered) std::abort();  // no shared bytes
      covered = t.offset + t.size;
    }
    prev_offset = t.offset;
  }
  // safetensors tiles the data section exactly.
  if (r->format == hmod::ModelFormat::kSafetensors && covered != size) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hmod::MemorySource source(hmod::ByteSpan(data, size));
  auto detected = hmod::DetectModelFormat(source);
  if (!detected.ok()) std::abort();  // a memory source cannot fail to read in bounds

  auto st = hmod::ParseSafetensors(source);
  CheckLayout(st, size);
  auto gg = hmod::ParseGguf(source);
  CheckLayout(gg, size);
  // Whatever parses was recognised as that format.
  if (st.ok() && *detected != hmod::ModelFormat::kSafetensors) std::abort();
  if (gg.ok() && *detected != hmod::ModelFormat::kGguf) std::abort();
  return 0;
}
