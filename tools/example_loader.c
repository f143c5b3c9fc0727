/* example_loader: load one tensor from a per-tensor .hmod through the C ABI (hmod/hmod.h).
 *
 * Usage: example_loader --kek URI [--kek URI ...] FILE.hmod [TENSOR]
 *
 *   Lists every tensor (name, dtype, shape, bytes, encrypted or plain), then decrypts
 *   TENSOR (default: the first one) into memory and prints its first 16 bytes in hex and
 *   the CRC-32 of all of it (the same value as Python's zlib.crc32, to compare with
 *   `hmodctl decrypt --tensor TENSOR -o - FILE.hmod`). The plaintext stays in memory: it
 *   is never written to disk, and it is wiped before the buffer is freed.
 *
 *   example_loader --kek file:team.key model.hmod model.layers.0.weight
 *
 * Exit status: 0 on success, 2 on bad arguments, 1 if any hmod call failed (the message
 * and the code's name are printed to stderr). Built as C11 by the CMake target
 * `example_loader`; see docs/LOADER.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmod/hmod.h"

#define MAX_KEKS 16

static int fail(const char* what, int code) {
  fprintf(stderr, "example_loader: %s: %s [%s]\n", what, hmod_last_error(), hmod_error_name(code));
  return 1;
}

/* CRC-32 (IEEE 802.3, reflected), as zlib computes it. */
static uint32_t crc32_of(const unsigned char* p, uint64_t n) {
  uint32_t table[256];
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  uint32_t crc = 0xFFFFFFFFu;
  for (uint64_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

/* Zeroes plaintext through a volatile pointer, so the compiler cannot drop it. */
static void wipe(void* p, size_t n) {
  volatile unsigned char* v = (volatile unsigned char*)p;
  while (n--) *v++ = 0;
}

static int usage(void) {
  fprintf(stderr, "usage: example_loader --kek URI [--kek URI ...] FILE.hmod [TENSOR]\n");
  return 2;
}

int main(int argc, char** argv) {
  const char* keks[MAX_KEKS];
  size_t n_keks = 0;
  const char* path = NULL;
  const char* wanted = NULL;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--kek") == 0) {
      if (i + 1 >= argc || n_keks == MAX_KEKS) return usage();
      keks[n_keks++] = argv[++i];
    } else if (path == NULL) {
      path = argv[i];
    } else if (wanted == NULL) {
      wanted = argv[i];
    } else {
      return usage();
    }
  }
  if (path == NULL || n_keks == 0) return usage();

  hmod_reader* reader = NULL;
  int rc = hmod_open(path, keks, n_keks, &reader);
  if (rc != HMOD_OK) return fail(path, rc);

  const size_t count = hmod_tensor_count(reader);
  printf("%zu tensors in %s\n", count, path);
  for (size_t i = 0; i < count; ++i) {
    hmod_tensor_info_t t;
    if ((rc = hmod_tensor_info(reader, i, &t)) != HMOD_OK) {
      hmod_close(reader);
      return fail("hmod_tensor_info", rc);
    }
    printf("  %-40s %-6s [", t.name, t.dtype);
    for (size_t d = 0; d < t.rank; ++d) printf("%s%llu", d ? ", " : "", (unsigned long long)t.shape[d]);
    printf("] %llu bytes%s\n", (unsigned long long)t.bytes, t.encrypted ? "" : " (plain)");
  }
  if (count == 0) {
    hmod_close(reader);
    return 0;
  }

  size_t index = 0;
  if (wanted != NULL && (rc = hmod_find_tensor(reader, wanted, &index)) != HMOD_OK) {
    hmod_close(reader);
    return fail(wanted, rc);
  }
  hmod_tensor_info_t t;
  if ((rc = hmod_tensor_info(reader, index, &t)) != HMOD_OK) {
    hmod_close(reader);
    return fail("hmod_tensor_info", rc);
  }
  if (t.bytes > SIZE_MAX) {
    fprintf(stderr, "example_loader: tensor %s does not fit in memory\n", t.name);
    hmod_close(reader);
    return 1;
  }
  const size_t len = (size_t)t.bytes;
  unsigned char* buf = malloc(len ? len : 1);
  if (buf == NULL) {
    fprintf(stderr, "example_loader: out of memory for %zu bytes\n", len);
    hmod_close(reader);
    return 1;
  }
  /* On failure the library has already zeroed buf: nothing unauthenticated is in it. */
  rc = hmod_read_tensor(reader, t.name, buf, len);
  if (rc == HMOD_OK) {
    printf("read %s: %zu bytes, first bytes:", t.name, len);
    for (size_t i = 0; i < len && i < 16; ++i) printf(" %02x", buf[i]);
    printf("\ncrc32 %08lx\n", (unsigned long)crc32_of(buf, len));
  } else {
    fail(t.name, rc);
  }
  wipe(buf, len);
  free(buf);
  hmod_close(reader);
  return rc == HMOD_OK ? 0 : 1;
}
