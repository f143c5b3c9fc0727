/* The hmod C ABI: read tensors out of a per-tensor .hmod (FORMAT.md §6) from C or any
 * language with a C FFI. A thin layer over hmod::ModelReader (hmod/model_reader.h);
 * docs/LOADER.md shows both in use, tools/example_loader.c is a complete program.
 *
 * Conventions:
 *  - Functions that can fail return an int: HMOD_OK (0) or one of the negative HMOD_E_*
 *    codes below. -1 .. -10 are exactly the negated values of the C++ hmod::ErrorCode
 *    enum; -11 and -12 exist only here. No other value is ever returned.
 *  - hmod_last_error() gives the message of the calling thread's last failing call.
 *  - Strings and arrays a reader hands out are owned by it and stay valid until
 *    hmod_close(). Callers own every buffer they pass in.
 *  - A reader may be used from several threads at once; only hmod_close() must not race
 *    with other calls on the same reader.
 *  - No C++ exception ever leaves these functions.
 *  - Link with the hmod static library and the C++ runtime (-lstdc++), plus its OpenSSL,
 *    libsodium and pthread dependencies (the CMake target `hmod` carries them).
 */
#ifndef HMOD_HMOD_H_
#define HMOD_HMOD_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes. */
#define HMOD_OK 0
#define HMOD_E_USAGE (-1)            /* bad argument: NULL pointer, unknown tensor name, index out of
                                        range, buffer size wrong, range outside the tensor, a
                                        whole-file .hmod (it has no tensors to read), bad key URI */
#define HMOD_E_IO (-2)               /* the file could not be opened or read */
#define HMOD_E_FORMAT (-3)           /* not a well-formed .hmod file */
#define HMOD_E_UNSUPPORTED (-4)      /* a version, suite or feature this build does not implement;
                                        or the path is not a regular file */
#define HMOD_E_NO_MATCHING_KEY (-5)  /* none of the given keys can open the file */
#define HMOD_E_AUTH_FAILED (-6)      /* a MAC, tag, digest or commitment check failed: the file was
                                        tampered with or corrupted (also: a wrong passphrase) */
#define HMOD_E_CONTEXT_MISMATCH (-7) /* reserved: the encryption context does not satisfy a
                                        requirement (this ABI sets none yet) */
#define HMOD_E_KEY_FILE (-8)         /* a key file is unreadable, malformed, or mode is not 0600 */
#define HMOD_E_CRYPTO (-9)           /* the crypto library failed unexpectedly */
#define HMOD_E_LIMIT (-10)           /* a format limit was exceeded */
#define HMOD_E_NO_MEMORY (-11)       /* memory allocation failed */
#define HMOD_E_INTERNAL (-12)        /* an unexpected internal error (a bug: please report it) */

/* An open per-tensor .hmod file. Opaque. */
typedef struct hmod_reader hmod_reader;

/* One tensor as the file's authenticated index describes it. */
typedef struct hmod_tensor_info {
  const char* name;      /* NUL-terminated UTF-8, unique in the file; owned by the reader */
  const char* dtype;     /* "F32", "BF16", "Q4_0", ...; owned by the reader */
  size_t rank;           /* number of dimensions, at most 8 */
  const uint64_t* shape; /* rank dimensions as the source file states them (GGUF: ne[] in file
                            order); owned by the reader; NULL when rank is 0 */
  uint64_t bytes;        /* size of the tensor's raw data */
  int encrypted;         /* 1 if stored encrypted, 0 if kept in clear (integrity-protected) */
} hmod_tensor_info_t;

/* Opens the per-tensor .hmod at `path`, trying the key provider URIs `kek_uris[0 ..
 * n_keks)` in order ("file:PATH" to a 0600 key file from `hmodctl keygen`; "pass:",
 * "pass:env=VAR", "pass:fd=N"). Checks the header MAC and authenticates the tensor index
 * before returning. Initialises the crypto library itself.
 * On success stores a new reader in *out (free it with hmod_close) and returns HMOD_OK. On
 * failure stores NULL in *out (if `out` is not NULL) and returns a negative code: typically
 * HMOD_E_IO, HMOD_E_FORMAT, HMOD_E_USAGE (whole-file .hmod, bad URI, n_keks == 0),
 * HMOD_E_NO_MATCHING_KEY, HMOD_E_AUTH_FAILED, HMOD_E_KEY_FILE. Keys are used only during
 * this call; the reader keeps the file open and the derived payload key. */
int hmod_open(const char* path, const char* const* kek_uris, size_t n_keks, hmod_reader** out);

/* Closes the file and wipes the reader's keys. NULL is a no-op. Every pointer the reader
 * handed out becomes invalid. */
void hmod_close(hmod_reader* reader);

/* Number of tensors in the file (0 if `reader` is NULL). */
size_t hmod_tensor_count(const hmod_reader* reader);

/* Describes tensor `index` (0 .. hmod_tensor_count() - 1, in source-file order) in *out.
 * HMOD_E_USAGE if an argument is NULL or `index` is out of range. */
int hmod_tensor_info(const hmod_reader* reader, size_t index, hmod_tensor_info_t* out);

/* Stores the index of the tensor named `name` in *index. HMOD_E_USAGE if there is none. */
int hmod_find_tensor(const hmod_reader* reader, const char* name, size_t* index);

/* Decrypts the whole tensor `name` into buf[0 .. len), where `len` must equal its size in
 * bytes (HMOD_E_USAGE otherwise, including a buffer that is too small). Each 16 KiB chunk
 * is authenticated before any of it is copied; a plain tensor's digest is checked.
 * On any failure buf[0 .. len) is set to zero: no unauthenticated byte is released. */
int hmod_read_tensor(const hmod_reader* reader, const char* name, void* buf, size_t len);

/* As hmod_read_tensor for bytes [offset, offset + len) of the tensor; HMOD_E_USAGE if
 * that range is not inside it. Decrypts only the chunks the range touches. */
int hmod_read_tensor_range(const hmod_reader* reader, const char* name, uint64_t offset, void* buf,
                           size_t len);

/* The message (one line, never key material) of the last call on this thread that returned
 * a negative code; "" if the last int-returning call on this thread succeeded. Never NULL.
 * Valid until the next hmod_* call on this thread. */
const char* hmod_last_error(void);

/* Stable lowercase name of a return code: "ok", "usage", "io", "format", "unsupported",
 * "no_matching_key", "auth_failed", "context_mismatch", "key_file", "crypto", "limit",
 * "no_memory", "internal"; "unknown" for anything else. Static storage. */
const char* hmod_error_name(int code);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* HMOD_HMOD_H_ */
