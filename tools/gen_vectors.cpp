// tools/gen-vectors: regenerates the .hmod conformance kit tests/vectors/hmod/ (FORMAT.md §8)
// from fixed seeds, and prints the worked example of FORMAT.md §7.
//
//   gen-vectors [--clean] DIR   write one file per case into DIR (--clean: delete DIR's files first)
//   gen-vectors --explain       print the worked example, field by field, with every intermediate
//
// Two writers produce the kit. Valid files come from the library's own encrypt paths
// (EncryptToContainer; EncryptModelToContainer for the per-tensor layout, from safetensors
// and GGUF sources written here byte by byte) with their randomness replaced by a seeded
// generator (crypto/random_for_testing.h); a second, independent model of FORMAT.md in this
// file (ModelFile for §2-§4, TensorModel for §6) rebuilds each of them from the same seed, and
// the two must agree byte for byte or nothing is written. Malformed files come from the model
// alone: it re-MACs and re-encrypts (header, entries, index) wherever a case needs every check
// but the intended one to pass, so a reader that skipped that one check would open the file.
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "crypto/random_for_testing.h"
#include "hmod/container.h"
#include "hmod/key_file.h"
#include "hmod/key_provider.h"
#include "hmod/model_file.h"
#include "hmod/signature.h"
#include "hmod/tensor_container.h"

namespace hmod {
namespace {

// ---------------------------------------------------------------------------------------
// Small helpers

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "gen-vectors: %s\n", message.c_str());
  std::exit(1);
}

template <typename T>
T Must(Result<T> r, const std::string& what) {
  if (!r.ok()) Die(what + ": " + r.error().message);
  return std::move(r).value();
}

Bytes Str(std::string_view s) { return Bytes(s.begin(), s.end()); }
std::string Text(ByteSpan b) { return std::string(b.begin(), b.end()); }

Bytes Cat(std::initializer_list<ByteSpan> parts) {
  Bytes out;
  for (ByteSpan p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes Be(uint64_t v, size_t width) {
  Bytes out(width);
  // Bytes beyond the 8 of a uint64_t are zero (BE96 counters); shifting by 64+ is undefined.
  for (size_t i = 0; i < width && i < 8; ++i) out[width - 1 - i] = static_cast<uint8_t>(v >> (8 * i));
  return out;
}

Bytes Copy(const SecretBytes& s) { return Bytes(s.secret().begin(), s.secret().end()); }

Bytes Range(uint8_t first, size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(first + i);
  return b;
}

// "k100" etc. (string concatenation with to_string trips a GCC 12 -Wrestrict false positive).
std::string Numbered(const char* prefix, int n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%d", prefix, n);
  return buf;
}

Bytes Prefix(ByteSpan b, size_t n) { return Bytes(b.begin(), b.begin() + static_cast<long>(n)); }

// ---------------------------------------------------------------------------------------
// Deterministic randomness: block i = HMAC-SHA-256(SHA-256("hmod gen-vectors drbg v1" ‖ 0x00 ‖
// seed), BE64(i)), the blocks concatenated. Each case has its own seed, so a case's bytes do
// not depend on which cases come before it.

class Drbg {
 public:
  explicit Drbg(std::string_view seed)
      : key_(Sha256(Cat({AsBytes("hmod gen-vectors drbg v1"), Bytes{0}, AsBytes(seed)}))) {}

  void Fill(uint8_t* out, size_t n) {
    while (n > 0) {
      if (avail_ == 0) {
        block_ = HmacSha256(key_, Be(counter_++, 8));
        avail_ = block_.size();
      }
      const size_t take = std::min(n, avail_);
      std::memcpy(out, block_.data() + (block_.size() - avail_), take);
      out += take;
      n -= take;
      avail_ -= take;
    }
  }
  Bytes Take(size_t n) {
    Bytes b(n);
    Fill(b.data(), n);
    return b;
  }

 private:
  std::array<uint8_t, 32> key_;
  std::array<uint8_t, 32> block_{};
  uint64_t counter_ = 0;
  size_t avail_ = 0;
};

Drbg* g_library_drbg = nullptr;
void FillFromDrbg(uint8_t* out, size_t n) {
  if (g_library_drbg == nullptr) Die("randomness drawn outside a seeded section");
  g_library_drbg->Fill(out, n);
}

Bytes Plaintext(size_t n) { return Drbg("plaintext/" + std::to_string(n)).Take(n); }

// Intermediate values of the worked example (--explain); null otherwise.
std::vector<std::pair<std::string, std::string>>* g_trace = nullptr;
void Trace(const std::string& name, ByteSpan value) {
  if (g_trace) g_trace->emplace_back(name, HexEncode(value));
}

// ---------------------------------------------------------------------------------------
// The FORMAT.md model: an encoder that writes exactly the fields it is given, valid or not.

struct Field {
  size_t offset, length;
  std::string name;
};

class Enc {
 public:
  Enc(std::vector<Field>* fields, size_t base) : fields_(fields), base_(base) {}
  void Put(const std::string& name, ByteSpan b) {
    if (fields_) fields_->push_back({base_ + out_.size(), b.size(), name});
    out_.insert(out_.end(), b.begin(), b.end());
  }
  void Int(const std::string& name, uint64_t v, size_t width) { Put(name, Be(v, width)); }
  Bytes& bytes() { return out_; }

 private:
  std::vector<Field>* fields_;
  size_t base_;
  Bytes out_;
};

struct Ext {
  uint16_t type = 0;
  Bytes value;
  std::optional<uint32_t> declared_length;  // a length field that lies
};

struct Record {
  Bytes provider_id, key_id, wrapped;
};

using Pairs = std::vector<std::pair<Bytes, Bytes>>;

struct ModelHeader {
  Bytes magic = Bytes(kMagic.begin(), kMagic.end());
  uint8_t version = 1;
  uint8_t layout = 1;
  uint16_t suite = 1;
  Bytes file_id;
  Pairs context;
  std::vector<Ext> extensions;
  std::optional<uint32_t> region;  // the region-length field; default: the minimal length
  std::vector<Record> records;
};

Bytes EncodeModelCore(const ModelHeader& h, std::vector<Field>* fields = nullptr) {
  Enc e(fields, 0);
  e.Put("magic", h.magic);
  e.Int("version", h.version, 1);
  e.Int("layout", h.layout, 1);
  e.Int("suite", h.suite, 2);
  e.Put("file id", h.file_id);
  e.Int("context pair count", h.context.size(), 2);
  for (size_t i = 0; i < h.context.size(); ++i) {
    const auto& [k, v] = h.context[i];
    const std::string n = "context[" + std::to_string(i) + "] ";
    e.Int(n + "key length", k.size(), 2);
    e.Put(n + "key \"" + Text(k) + "\"", k);
    e.Int(n + "value length", v.size(), 2);
    e.Put(n + "value \"" + Text(v) + "\"", v);
  }
  e.Int("extension count", h.extensions.size(), 2);
  for (size_t i = 0; i < h.extensions.size(); ++i) {
    const Ext& x = h.extensions[i];
    const std::string n = "extension[" + std::to_string(i) + "] ";
    e.Int(n + "type", x.type, 2);
    e.Int(n + "length", x.declared_length.value_or(static_cast<uint32_t>(x.value.size())), 4);
    e.Put(n + "value", x.value);
  }
  return std::move(e.bytes());
}

Bytes EncodeModelKeyBlock(const ModelHeader& h, uint32_t region, std::vector<Field>* fields = nullptr,
                          size_t base = 0) {
  Enc e(fields, base);
  e.Int("region length", region, 4);
  e.Int("wrapped key count", h.records.size(), 2);
  for (size_t i = 0; i < h.records.size(); ++i) {
    const Record& r = h.records[i];
    const std::string n = "wrapped key[" + std::to_string(i) + "] ";
    e.Int(n + "provider id length", r.provider_id.size(), 1);
    e.Put(n + "provider id \"" + Text(r.provider_id) + "\"", r.provider_id);
    e.Int(n + "key id length", r.key_id.size(), 2);
    e.Put(n + "key id \"" + Text(r.key_id) + "\"", r.key_id);
    e.Int(n + "record length", r.wrapped.size(), 2);
    e.Put(n + "record", r.wrapped);
  }
  return std::move(e.bytes());
}

// §3.1: prk = HKDF-Extract-SHA-512(salt = file id, ikm = data key); two Expand labels.
struct FileKeysModel {
  Bytes prk, mac_key, payload_key;
};

FileKeysModel DeriveModel(ByteSpan data_key, ByteSpan file_id) {
  FileKeysModel k;
  k.prk = Copy(Must(HkdfExtract(HashAlg::kSha512, file_id, data_key), "extract"));
  k.mac_key = Copy(Must(HkdfExpand(HashAlg::kSha512, k.prk, AsBytes("hmod/v1 header mac"), 32), "mac key"));
  k.payload_key =
      Copy(Must(HkdfExpand(HashAlg::kSha512, k.prk, AsBytes("hmod/v1 payload key"), 32), "payload key"));
  return k;
}

Bytes AeadSeal(Suite suite, ByteSpan key, ByteSpan nonce, ByteSpan aad, ByteSpan plaintext) {
  Aead aead = Must(Aead::Create(suite, key), "aead");
  Bytes out(plaintext.size() + kAeadTagBytes);
  Must(aead.Seal(nonce, aad, plaintext, out), "seal");
  return out;
}

// §5.1 fingerprint.
std::string Fingerprint(ByteSpan kek) {
  const auto d = Sha256(Cat({AsBytes("hmod/v1 key fingerprint"), Bytes{0}, kek}));
  return HexEncode(ByteSpan(d).first(16));
}

// §5.2: the `file` record.
Record FileRecord(ByteSpan kek, ByteSpan file_id, ByteSpan nonce, ByteSpan data_key) {
  const Bytes wrap_key =
      Copy(Must(Hkdf(HashAlg::kSha256, {}, kek, AsBytes("hmod/v1 file kek"), 32), "file wrap key"));
  const std::string fp = Fingerprint(kek);
  const Bytes aad = Cat({AsBytes("hmod/v1 file wrap"), Bytes{0}, file_id, AsBytes(fp)});
  const Bytes sealed = AeadSeal(Suite::kAes256Gcm, wrap_key, nonce, aad, data_key);
  Trace("key-encryption key (KEK)", kek);
  Trace("KEK fingerprint (ASCII key id)", AsBytes(fp));
  Trace("file wrap key = HKDF-SHA-256(salt = empty, KEK, \"hmod/v1 file kek\", 32)", wrap_key);
  Trace("wrap nonce", nonce);
  Trace("wrap AAD", aad);
  Trace("wrapped data key ‖ tag", sealed);
  return {Str("file"), Str(fp), Cat({nonce, sealed})};
}

// §5.3: the `pass` record, with the writing parameters (3 passes, 64 MiB).
Record PassRecord(std::string_view passphrase, ByteSpan file_id, ByteSpan salt, ByteSpan nonce,
                  ByteSpan data_key) {
  constexpr uint32_t kOps = 3, kMemKiB = 65536;
  const Bytes params = Cat({Be(kOps, 4), Be(kMemKiB, 4)});
  Bytes key(32);
  if (crypto_pwhash(key.data(), key.size(), passphrase.data(), passphrase.size(), salt.data(), kOps,
                    size_t{kMemKiB} * 1024, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    Die("Argon2id failed");
  }
  const Bytes aad = Cat({AsBytes("hmod/v1 pass wrap"), Bytes{0}, file_id, salt, params});
  const Bytes sealed = AeadSeal(Suite::kAes256Gcm, key, nonce, aad, data_key);
  return {Str("pass"), Str("argon2id"), Cat({salt, params, nonce, sealed})};
}

// §4.1: Cobblestone-256 (and its ChaCha20-Poly1305 variant).
struct Cobble {
  Suite suite;
  Bytes key, base_nonce, commitment, salt;
};

Cobble CobbleDerive(Suite suite, ByteSpan input_key, ByteSpan salt, ByteSpan context) {
  const std::string_view aead = suite == Suite::kAes256Gcm ? "AEAD_AES_256_GCM" : "AEAD_CHACHA20_POLY1305";
  const Bytes info =
      Cat({AsBytes("c2sp.org/chunked-encryption@v1+"), AsBytes(aead), Bytes{0}, salt, context});
  const Bytes okm = Copy(Must(HkdfExpand(HashAlg::kSha512, input_key, info, 76), "cobblestone"));
  Trace("Cobblestone info", info);
  Trace("Cobblestone HKDF-Expand output (76 bytes)", okm);
  Cobble c{suite, Prefix(okm, 32), Bytes(okm.begin() + 32, okm.begin() + 44),
           Bytes(okm.begin() + 44, okm.end()), Bytes(salt.begin(), salt.end())};
  return c;
}

Bytes ChunkNonce(const Cobble& c, uint64_t index) {
  Bytes nonce = c.base_nonce;
  const Bytes counter = Be(index, 12);
  for (size_t i = 0; i < nonce.size(); ++i) nonce[i] ^= counter[i];
  return nonce;
}

Bytes SealChunk(const Cobble& c, uint64_t index, ByteSpan plaintext) {
  return AeadSeal(c.suite, c.key, ChunkNonce(c, index), {}, plaintext);
}

Bytes CobbleSeal(const Cobble& c, ByteSpan plaintext) {
  Bytes out = Cat({c.salt, c.commitment});
  for (uint64_t i = 0;; ++i) {
    const size_t at = static_cast<size_t>(i * kChunkBytes);
    const size_t n = std::min(kChunkBytes, plaintext.size() - at);
    const Bytes ct = SealChunk(c, i, plaintext.subspan(at, n));
    out.insert(out.end(), ct.begin(), ct.end());
    if (n < kChunkBytes) break;  // the final chunk is the first short one (maybe empty)
  }
  return out;
}

// §4.2.
Bytes EntryContextModel(ByteSpan core_digest, uint32_t index, std::string_view name) {
  return Cat({AsBytes("hmod/v1 entry"), Bytes{0}, core_digest, Be(index, 4), AsBytes(name)});
}

struct Recipient {
  Bytes kek;               // file: key-encryption key
  std::string passphrase;  // pass: (when kek is empty)
};

// A whole file in the model: header fields, keys, and the payload plaintext. Assemble()
// encodes it with a correct MAC and a payload bound to the core as encoded.
struct ModelFile {
  ModelHeader h;
  Bytes data_key;
  FileKeysModel keys;
  Bytes salt;
  Bytes plaintext;
  Suite payload_suite = Suite::kAes256Gcm;
  uint32_t entry_index = 0;
  std::string entry_name;
  std::optional<size_t> physical_region;  // bytes actually written for the region

  Bytes core, region, payload;
  size_t mac_offset = 0;
  std::vector<Field> fields;  // annotations of `region`

  void Assemble() {
    fields.clear();
    core = EncodeModelCore(h, &fields);
    const size_t content = core.size() + EncodeModelKeyBlock(h, 0).size() + kHeaderMacBytes;
    const size_t minimal = (content + kRegionAlign - 1) / kRegionAlign * kRegionAlign;
    const uint32_t field = h.region.value_or(static_cast<uint32_t>(minimal));
    const size_t physical = physical_region.value_or(
        field >= content && field <= kMaxRegionBytes ? size_t{field} : minimal);
    const Bytes auth = Cat({core, EncodeModelKeyBlock(h, field, &fields, core.size())});
    mac_offset = auth.size();
    const auto mac = HmacSha256(keys.mac_key, auth);
    fields.push_back({auth.size(), mac.size(), "header MAC"});
    region = Cat({auth, mac});
    if (physical > region.size()) {
      fields.push_back({region.size(), physical - region.size(), "padding"});
      region.resize(physical, 0);
    }
    const auto digest = Sha256(core);
    const Bytes ctx = EntryContextModel(digest, entry_index, entry_name);
    Trace("data key", data_key);
    Trace("file id", h.file_id);
    Trace("prk = HKDF-Extract-SHA-512(salt = file id, ikm = data key)", keys.prk);
    Trace("header MAC key = HKDF-Expand-SHA-512(prk, \"hmod/v1 header mac\", 32)", keys.mac_key);
    Trace("payload key = HKDF-Expand-SHA-512(prk, \"hmod/v1 payload key\", 32)", keys.payload_key);
    Trace("core digest = SHA-256(core)", digest);
    Trace("header MAC = HMAC-SHA-256(header MAC key, region[0, MAC offset))", mac);
    Trace("entry context", ctx);
    const Cobble c = CobbleDerive(payload_suite, keys.payload_key, salt, ctx);
    Trace("Cobblestone salt", c.salt);
    Trace("Cobblestone key", c.key);
    Trace("Cobblestone base nonce", c.base_nonce);
    Trace("Cobblestone commitment", c.commitment);
    Trace("chunk 0 nonce", ChunkNonce(c, 0));
    payload = CobbleSeal(c, plaintext);
  }
  Cobble PayloadKeys() const {
    return CobbleDerive(payload_suite, keys.payload_key, salt,
                        EntryContextModel(Sha256(core), entry_index, entry_name));
  }
  Bytes Whole() const { return Cat({region, payload}); }
  // Offset of chunk `i` in Whole().
  size_t Chunk(uint64_t i) const {
    return region.size() + kStreamHeaderBytes + static_cast<size_t>(i) * kChunkCiphertextBytes;
  }
};

Pairs ToPairs(const EncryptionContext& ctx) {
  Pairs p;
  for (const auto& [k, v] : ctx) p.emplace_back(Str(k), Str(v));
  return p;
}

// Draws, in the library's order: file id (32), data key (32), each recipient's record
// randomness (file: nonce 12; pass: salt 16, nonce 12). NewModelFile then draws the
// Cobblestone salt (24); the per-tensor model one salt per encrypted entry (TensorModel).
ModelFile NewHeaderModel(Drbg& d, Suite suite, const EncryptionContext& context,
                         const std::vector<Recipient>& recipients) {
  ModelFile f;
  f.h.suite = static_cast<uint16_t>(suite);
  f.h.file_id = d.Take(kFileIdBytes);
  f.h.context = ToPairs(context);
  f.data_key = d.Take(kDataKeyBytes);
  for (const Recipient& r : recipients) {
    if (!r.kek.empty()) {
      const Bytes nonce = d.Take(kAeadNonceBytes);
      f.h.records.push_back(FileRecord(r.kek, f.h.file_id, nonce, f.data_key));
    } else {
      const Bytes salt = d.Take(16);
      const Bytes nonce = d.Take(kAeadNonceBytes);
      f.h.records.push_back(PassRecord(r.passphrase, f.h.file_id, salt, nonce, f.data_key));
    }
  }
  f.keys = DeriveModel(f.data_key, f.h.file_id);
  f.payload_suite = suite;
  return f;
}

ModelFile NewModelFile(const std::string& seed, Suite suite, const EncryptionContext& context,
                       const std::vector<Recipient>& recipients, Bytes plaintext) {
  Drbg d(seed);
  ModelFile f = NewHeaderModel(d, suite, context, recipients);
  f.salt = d.Take(kSaltBytes);
  f.plaintext = std::move(plaintext);
  f.Assemble();
  return f;
}

// ---------------------------------------------------------------------------------------
// The library's writer, with the seeded randomness.

class KeyDir {
 public:
  KeyDir() {
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base && *base ? base : "/tmp") + "/hmod-gen-vectors-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) Die("mkdtemp failed");
    path_ = templ;
  }
  ~KeyDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string Write(ByteSpan kek) {
    const std::string path = path_ + "/k" + std::to_string(n_++) + ".key";
    const std::string text = EncodeKeyFile(SecretBytes::CopyFrom(kek));
    Must(WriteNewPrivateFile(path, AsBytes(text)), "key file");
    return path;
  }

 private:
  std::string path_;
  int n_ = 0;
};

KeyDir* g_keys = nullptr;

ProviderList LibraryProviders(const std::vector<Recipient>& recipients) {
  ProviderList providers;
  for (const Recipient& r : recipients) {
    if (!r.kek.empty()) {
      providers.push_back(Must(ProviderFromUri("file:" + g_keys->Write(r.kek)), "file provider"));
    } else {
      ::setenv("HMOD_PASSPHRASE", r.passphrase.c_str(), 1);
      providers.push_back(Must(ProviderFromUri("pass:"), "pass provider"));
      ::unsetenv("HMOD_PASSPHRASE");
    }
  }
  return providers;
}

Bytes LibraryEncrypt(const std::string& seed, Suite suite, const EncryptionContext& context,
                     const std::vector<Recipient>& recipients, ByteSpan plaintext) {
  ProviderList providers = LibraryProviders(recipients);
  MemorySource in(plaintext);
  MemorySink out;
  EncryptOptions options;
  options.suite = suite;
  options.context = context;
  options.stream.threads = 1;
  Drbg d(seed);
  g_library_drbg = &d;
  SetRandomSourceForTesting(FillFromDrbg);
  auto r = EncryptToContainer(in, out, providers, options);
  SetRandomSourceForTesting(nullptr);
  g_library_drbg = nullptr;
  Must(std::move(r), "EncryptToContainer");
  return out.bytes;
}

// A file both writers produce; they must agree.
ModelFile ValidFile(const std::string& name, Suite suite, const EncryptionContext& context,
                    const std::vector<Recipient>& recipients, Bytes plaintext) {
  const std::string seed = "case/" + name;
  ModelFile f = NewModelFile(seed, suite, context, recipients, plaintext);
  const Bytes lib = LibraryEncrypt(seed, suite, context, recipients, plaintext);
  if (lib != f.Whole()) {
    size_t i = 0;
    while (i < lib.size() && i < f.Whole().size() && lib[i] == f.Whole()[i]) ++i;
    Die(name + ": EncryptToContainer and the FORMAT.md model differ at byte " + std::to_string(i));
  }
  return f;
}

// ---------------------------------------------------------------------------------------
// Cases

const Bytes kKekA = Range(0x00, 32);
const Bytes kKekB = Range(0x20, 32);
const Bytes kKekC = Range(0x40, 32);
const std::string kPassphrase = "correct horse battery staple";
const Recipient kA{kKekA, {}}, kB{kKekB, {}}, kC{kKekC, {}}, kPass{{}, kPassphrase};

struct Case {
  std::string name, expect;
  std::vector<std::pair<std::string, std::string>> lines;  // file key / passphrase / context
  std::optional<Bytes> released;                           // -> payload:
  std::vector<std::string> comments;
  Bytes body;

  Case& FileKey(ByteSpan kek) {
    lines.emplace_back("file key", HexEncode(kek));
    return *this;
  }
  Case& Passphrase(const std::string& p) {
    lines.emplace_back("passphrase", p);
    return *this;
  }
  Case& Require(const std::string& r) {
    lines.emplace_back("context", r);
    return *this;
  }
  Case& Released(ByteSpan plaintext) {
    released = Bytes(plaintext.begin(), plaintext.end());
    return *this;
  }
  Case& Comment(const std::string& c) {
    comments.push_back(c);
    return *this;
  }
};

std::vector<Case> g_cases;

Case& Add(const std::string& name, const std::string& expect, Bytes body) {
  g_cases.push_back(Case{name, expect, {}, std::nullopt, {}, std::move(body)});
  return g_cases.back();
}

std::string SuiteTag(Suite s) { return s == Suite::kAes256Gcm ? "aes" : "chacha"; }

const EncryptionContext kDemoContext = {{"model", "demo"}, {"version", "1"}};

// The base of the header and MAC cases: 100 bytes, AES-256-GCM, KEK A, a two-pair context.
ModelFile HeaderBase(const std::string& name) {
  return NewModelFile("case/" + name, Suite::kAes256Gcm, kDemoContext, {kA}, Plaintext(100));
}

// The base of the payload cases: three chunks (16384 + 16384 + 7232).
ModelFile PayloadBase(const std::string& name, Suite suite = Suite::kAes256Gcm, size_t n = 40000) {
  return NewModelFile("case/" + name, suite, {}, {kA}, Plaintext(n));
}

// Re-encodes `modified` but keeps the MAC of `original`: what an attacker without the data
// key can do. The payload stays the original's.
Bytes KeepMac(ModelFile modified, const ModelFile& original) {
  modified.Assemble();
  std::copy(original.region.begin() + static_cast<long>(original.mac_offset),
            original.region.begin() + static_cast<long>(original.mac_offset + kHeaderMacBytes),
            modified.region.begin() + static_cast<long>(modified.mac_offset));
  return Cat({modified.region, original.payload});
}

Record Foreign(std::string provider = "x", std::string key_id = "", Bytes wrapped = {0}) {
  return {Str(provider), Str(key_id), std::move(wrapped)};
}

void SuccessCases() {
  for (Suite suite : {Suite::kAes256Gcm, Suite::kChaCha20Poly1305}) {
    for (size_t n : {0, 1, 16383, 16384, 16385, 32768, 40000}) {
      const std::string name = "success_" + SuiteTag(suite) + "_" + std::to_string(n);
      const Bytes pt = Plaintext(n);
      ModelFile f = ValidFile(name, suite, {}, {kA}, pt);
      Add(name, "success", f.Whole())
          .FileKey(kKekA)
          .Released(pt)
          .Comment(std::string(SuiteName(suite)) + ", " + std::to_string(n) + " bytes of plaintext");
    }
  }
  {
    const Bytes pt = Plaintext(100);
    ModelFile f = ValidFile("success_two_keks", Suite::kAes256Gcm, {}, {kA, kB}, pt);
    Add("success_two_keks_open_with_first", "success", f.Whole())
        .FileKey(kKekA)
        .Released(pt)
        .Comment("wrapped to KEKs A and B; opened with A");
    Add("success_two_keks_open_with_second", "success", f.Whole())
        .FileKey(kKekB)
        .Released(pt)
        .Comment("wrapped to KEKs A and B; opened with B (its record is the second)");
  }
  {
    const Bytes pt = Plaintext(100);
    ModelFile f = ValidFile("success_pass", Suite::kAes256Gcm, {}, {kPass}, pt);
    Add("success_pass", "success", f.Whole())
        .Passphrase(kPassphrase)
        .Released(pt)
        .Comment("pass: record, Argon2id with 3 passes over 64 MiB");
    Add("hmac_wrong_passphrase", "header mac failure", f.Whole())
        .Passphrase(kPassphrase + "r")
        .Comment("a pass record has no key id to match, so a wrong passphrase is an")
        .Comment("authentication failure of the record, never \"no match\"");
    Add("nomatch_pass_file_with_file_key", "no match", f.Whole())
        .FileKey(kKekA)
        .Comment("the only record is a pass record; a file: provider has nothing to try");
  }
  {
    const Bytes pt = Plaintext(100);
    ModelFile f = ValidFile("success_file_and_pass", Suite::kAes256Gcm, {}, {kA, kPass}, pt);
    Add("success_file_and_pass_open_with_pass", "success", f.Whole())
        .Passphrase(kPassphrase)
        .Released(pt)
        .Comment("records: file (KEK A), then pass; opened with the passphrase");
    Add("success_wrong_passphrase_then_file_key", "success", f.Whole())
        .Passphrase(kPassphrase + "r")
        .FileKey(kKekA)
        .Released(pt)
        .Comment("the pass record fails to open with the first provider; the second")
        .Comment("provider opens the file record, so the file opens");
  }
  {
    const Bytes pt = Plaintext(100);
    const EncryptionContext ctx = {{"model", "llama-3-8b"}, {"version", "3"}};
    ModelFile f = ValidFile("success_context_required", Suite::kAes256Gcm, ctx, {kA}, pt);
    Add("success_context_required", "success", f.Whole())
        .FileKey(kKekA)
        .Require("model=llama-3-8b")
        .Require("version")
        .Released(pt)
        .Comment("context {model: llama-3-8b, version: 3}; a value requirement and a bare key");
  }
  {
    const Bytes pt = Plaintext(100);
    // Sorted by unsigned bytes: "Z" (5a) < "a" (61) < "emoji" < "é" (c3 a9) < "日本" (e6 97 a5 ...).
    const EncryptionContext ctx = {
        {"Z", "upper"}, {"a", "lower"}, {"emoji", "\xF0\x9F\xA6\x99"}, {"\xC3\xA9", "\xC3\xA9t\xC3\xA9"},
        {"\xE6\x97\xA5\xE6\x9C\xAC", "\xE8\xAA\x9E"}};
    ModelFile f = ValidFile("success_context_utf8", Suite::kChaCha20Poly1305, ctx, {kA}, pt);
    Add("success_context_utf8", "success", f.Whole())
        .FileKey(kKekA)
        .Require("\xE6\x97\xA5\xE6\x9C\xAC=\xE8\xAA\x9E")
        .Require("emoji=\xF0\x9F\xA6\x99")
        .Released(pt)
        .Comment("multi-byte UTF-8 keys and values, ordered by their bytes, not by code point or locale");
  }
  {
    const Bytes pt = Plaintext(100);
    ModelFile f = ValidFile("success_context_empty_value", Suite::kAes256Gcm, {{"note", ""}}, {kA}, pt);
    Add("success_context_empty_value", "success", f.Whole())
        .FileKey(kKekA)
        .Require("note")
        .Require("note=")
        .Released(pt)
        .Comment("an empty value is allowed; bare \"note\" and \"note=\" both match it");
  }
  {
    const Bytes pt = Plaintext(100);
    EncryptionContext ctx;
    for (int i = 0; i < 62; ++i) ctx.emplace(Numbered("k", 100 + i), std::string(1, 'v'));
    ctx[std::string(256, 'a')] = "longest key";
    ctx["long value"] = std::string(4096, 'z');
    ModelFile f = ValidFile("success_context_at_limits", Suite::kAes256Gcm, ctx, {kA}, pt);
    Add("success_context_at_limits", "success", f.Whole())
        .FileKey(kKekA)
        .Require("long value")
        .Released(pt)
        .Comment("64 context pairs, a 256-byte key and a 4096-byte value: every limit met exactly;")
        .Comment("the header needs a second 4096-byte block (region length 8192)");
  }
  {
    const Bytes pt = Plaintext(100);
    ModelFile f = ValidFile("success_other_key_record_first", Suite::kAes256Gcm, {}, {kC, kA}, pt);
    Add("success_other_key_record_first", "success", f.Whole())
        .FileKey(kKekA)
        .Released(pt)
        .Comment("records for KEK C then KEK A; opened with A: C's record has another key id and is skipped");
  }
  {
    ModelFile f = HeaderBase("success_provider_order");
    Add("success_second_provider_opens", "success", f.Whole())
        .FileKey(kKekC)
        .FileKey(kKekA)
        .Released(f.plaintext)
        .Comment("providers tried in order: KEK C matches no record, KEK A opens");
  }
  {
    const Bytes pt = Str("hmod worked example\n");
    ModelFile f = ValidFile("success_worked_example", Suite::kAes256Gcm,
                            {{"model", "tiny-example"}, {"version", "1"}}, {kA}, pt);
    Add("success_worked_example", "success", f.Whole())
        .FileKey(kKekA)
        .Require("model=tiny-example")
        .Released(pt)
        .Comment("the worked example of FORMAT.md section 7");
  }
  // Valid files the library's writer never produces; readers must accept them.
  {
    ModelFile f = HeaderBase("success_region_8192");
    f.h.region = 8192;
    f.Assemble();
    Add("success_region_8192", "success", f.Whole())
        .FileKey(kKekA)
        .Released(f.plaintext)
        .Comment("region length 8192 where 4096 would do: longer zero padding is allowed");
  }
  {
    ModelFile f = HeaderBase("success_noncritical_extensions");
    f.h.extensions = {{0x0001, Str("hello"), {}}, {0x7fff, {}, {}}};
    f.Assemble();
    Add("success_noncritical_extensions", "success", f.Whole())
        .FileKey(kKekA)
        .Released(f.plaintext)
        .Comment("unknown non-critical extensions 0x0001 and 0x7fff are skipped by the reader")
        .Comment("(they are still covered by the header MAC and the core digest)");
  }
  {
    ModelFile f = HeaderBase("success_foreign_record_first");
    f.h.records.insert(f.h.records.begin(),
                       Foreign("aws-kms", "arn:aws:kms:eu-west-1:111122223333:key/example", Range(0x80, 40)));
    f.Assemble();
    Add("success_foreign_record_first", "success", f.Whole())
        .FileKey(kKekA)
        .Released(f.plaintext)
        .Comment("a record for a provider this reader does not have comes first and is skipped");
  }
  {
    ModelFile f = HeaderBase("success_64_wrapped_keys");
    while (f.h.records.size() < 64) f.h.records.insert(f.h.records.begin(), Foreign());
    f.Assemble();
    Add("success_64_wrapped_keys", "success", f.Whole())
        .FileKey(kKekA)
        .Released(f.plaintext)
        .Comment("63 foreign records (provider \"x\", empty key id, 1-byte record), then KEK A's: the limit");
  }
}

void HeaderCases() {
  auto add = [](const std::string& name, Bytes body, const std::string& comment) {
    Add(name, "header failure", std::move(body)).FileKey(kKekA).Comment(comment);
  };
  // Mutates a fresh base file, re-MACs and re-encrypts it.
  auto mutate = [&](const std::string& name, const std::string& comment, auto&& change) {
    ModelFile f = HeaderBase(name);
    change(f);
    f.Assemble();
    add(name, f.Whole(), comment);
  };

  mutate("header_bad_magic", "magic byte 1 is 'h' instead of 'H'", [](ModelFile& f) { f.h.magic[1] = 'h'; });
  add("header_empty_file", {}, "a file of zero bytes");
  {
    const Bytes whole = HeaderBase("header_truncated").Whole();
    ModelFile f = HeaderBase("header_truncated");
    add("header_truncated_in_magic", Prefix(whole, 5), "the file ends inside the magic");
    add("header_truncated_in_core", Prefix(whole, 60), "the file ends inside the context");
    add("header_truncated_in_key_block", Prefix(whole, f.core.size() + 30),
        "the file ends inside the wrapped-key record");
    add("header_truncated_in_mac", Prefix(whole, f.mac_offset + 10), "the file ends inside the header MAC");
    add("header_truncated_in_padding", Prefix(whole, f.region.size() - 1),
        "the file ends one byte before the end of the region");
  }
  mutate("header_version_0", "format version 0", [](ModelFile& f) { f.h.version = 0; });
  mutate("header_version_2", "format version 2 (unknown)", [](ModelFile& f) { f.h.version = 2; });
  mutate("header_layout_0", "layout 0 (unassigned)", [](ModelFile& f) { f.h.layout = 0; });
  mutate("header_layout_3", "layout 3 (unassigned)", [](ModelFile& f) { f.h.layout = 3; });
  mutate("header_suite_0", "suite id 0x0000 (unassigned)", [](ModelFile& f) { f.h.suite = 0; });
  mutate("header_suite_3", "suite id 0x0003 (unassigned); the payload is AES-256-GCM",
         [](ModelFile& f) { f.h.suite = 3; });
  mutate("header_context_keys_out_of_order", "context keys \"version\" then \"model\"",
         [](ModelFile& f) { std::swap(f.h.context[0], f.h.context[1]); });
  mutate("header_context_duplicate_key", "context key \"model\" twice, same value",
         [](ModelFile& f) { f.h.context[1] = f.h.context[0]; });
  mutate("header_context_empty_key", "a context key of length 0 (sorted first)",
         [](ModelFile& f) { f.h.context.insert(f.h.context.begin(), {Bytes{}, Str("x")}); });
  mutate("header_context_key_invalid_utf8", "context key 0xff (sorted last)",
         [](ModelFile& f) { f.h.context.push_back({Bytes{0xff}, Str("x")}); });
  mutate("header_context_value_overlong_utf8", "context value c0 af: an overlong encoding of '/'",
         [](ModelFile& f) { f.h.context[0].second = Bytes{0xc0, 0xaf}; });
  mutate("header_context_value_surrogate", "context value ed a0 80: an encoded UTF-16 surrogate",
         [](ModelFile& f) { f.h.context[0].second = Bytes{0xed, 0xa0, 0x80}; });
  mutate("header_context_value_truncated_utf8", "context value e6 97: a cut multi-byte sequence",
         [](ModelFile& f) { f.h.context[0].second = Bytes{0xe6, 0x97}; });
  mutate("header_context_key_too_long", "a 257-byte context key (limit 256)",
         [](ModelFile& f) { f.h.context.insert(f.h.context.begin(), {Bytes(257, 'a'), Str("x")}); });
  mutate("header_context_value_too_long", "a 4097-byte context value (limit 4096)",
         [](ModelFile& f) { f.h.context[0].second = Bytes(4097, 'z'); });
  mutate("header_context_too_many_pairs", "65 context pairs (limit 64)", [](ModelFile& f) {
    f.h.context.clear();
    for (int i = 0; i < 65; ++i) f.h.context.push_back({Str(Numbered("k", 100 + i)), Str("v")});
  });
  mutate("header_zero_wrapped_keys", "wrapped key count 0", [](ModelFile& f) { f.h.records.clear(); });
  mutate("header_too_many_wrapped_keys", "65 wrapped keys (limit 64); the last is KEK A's", [](ModelFile& f) {
    while (f.h.records.size() < 65) f.h.records.insert(f.h.records.begin(), Foreign());
  });
  mutate("header_region_not_multiple_of_4096", "region length 4100, and 4100 region bytes",
         [](ModelFile& f) { f.h.region = 4100; });
  mutate("header_region_zero", "region length 0", [](ModelFile& f) { f.h.region = 0; });
  mutate("header_region_over_16_mib", "region length 16 MiB + 4096 (limit 16 MiB)",
         [](ModelFile& f) { f.h.region = kMaxRegionBytes + kRegionAlign; });
  mutate("header_region_shorter_than_header",
         "region length 4096, but the header (a 5000-byte extension) needs 8192", [](ModelFile& f) {
           f.h.extensions = {{0x0001, Bytes(5000, 'e'), {}}};
           f.h.region = 4096;
         });
  {
    ModelFile f = HeaderBase("header_padding_last_byte_nonzero");
    f.region.back() = 0x01;
    add("header_padding_last_byte_nonzero", f.Whole(),
        "the last padding byte is 0x01 (padding is not MAC'd, so the MAC is still valid)");
  }
  {
    ModelFile f = HeaderBase("header_padding_first_byte_nonzero");
    f.region[f.mac_offset + kHeaderMacBytes] = 0x80;
    add("header_padding_first_byte_nonzero", f.Whole(), "the first byte after the header MAC is 0x80");
  }
  mutate("header_unknown_critical_extension", "extension 0x8001 (critical bit set), value \"x\"",
         [](ModelFile& f) { f.h.extensions = {{0x8001, Str("x"), {}}}; });
  mutate("header_extensions_out_of_order", "non-critical extensions 0x0002 then 0x0001",
         [](ModelFile& f) { f.h.extensions = {{0x0002, Str("b"), {}}, {0x0001, Str("a"), {}}}; });
  mutate("header_extensions_duplicate_type", "extension 0x0001 twice",
         [](ModelFile& f) { f.h.extensions = {{0x0001, Str("a"), {}}, {0x0001, Str("b"), {}}}; });
  mutate("header_too_many_extensions", "65 non-critical extensions (limit 64)", [](ModelFile& f) {
    for (uint16_t t = 1; t <= 65; ++t) f.h.extensions.push_back({t, {}, {}});
  });
  mutate("header_extension_length_over_16_mib", "an extension whose length field says 16 MiB + 1",
         [](ModelFile& f) { f.h.extensions = {{0x0001, {}, kMaxRegionBytes + 1}}; });
  mutate("header_provider_id_uppercase", "provider id \"File\"",
         [](ModelFile& f) { f.h.records[0].provider_id = Str("File"); });
  mutate("header_provider_id_trailing_space", "provider id \"file \"",
         [](ModelFile& f) { f.h.records[0].provider_id = Str("file "); });
  mutate("header_provider_id_empty", "a foreign record with an empty provider id, then KEK A's",
         [](ModelFile& f) { f.h.records.insert(f.h.records.begin(), Foreign("")); });
  mutate("header_provider_id_too_long", "a foreign record with a 33-byte provider id (limit 32)",
         [](ModelFile& f) { f.h.records.insert(f.h.records.begin(), Foreign(std::string(33, 'p'))); });
  mutate("header_key_id_invalid_utf8", "a foreign record whose key id is ff fe", [](ModelFile& f) {
    f.h.records.insert(f.h.records.begin(), Foreign("x", "\xff\xfe"));
  });
  mutate("header_key_id_too_long", "a foreign record with a 1025-byte key id (limit 1024)", [](ModelFile& f) {
    f.h.records.insert(f.h.records.begin(), Foreign("x", std::string(1025, 'k')));
  });
  mutate("header_wrapped_key_empty", "a foreign record of length 0", [](ModelFile& f) {
    f.h.records.insert(f.h.records.begin(), Foreign("x", "", {}));
  });
  mutate("header_wrapped_key_too_long", "a foreign record of 4097 bytes (limit 4096)", [](ModelFile& f) {
    f.h.records.insert(f.h.records.begin(), Foreign("x", "", Bytes(4097, 0x5a)));
  });
}

void HeaderMacCases() {
  auto add = [](const std::string& name, Bytes body, const std::string& comment) {
    return &Add(name, "header mac failure", std::move(body)).FileKey(kKekA).Comment(comment);
  };
  // Changes a field without the data key: the MAC is the original one.
  auto forge = [&](const std::string& name, const std::string& comment, auto&& change) {
    const ModelFile original = HeaderBase(name);
    ModelFile f = original;
    change(f);
    return add(name, KeepMac(std::move(f), original), comment);
  };
  forge("hmac_context_value_changed", "context value \"demo\" became \"demp\" (still canonical)",
        [](ModelFile& f) { f.h.context[0].second = Str("demp"); });
  forge("hmac_context_pair_removed", "the \"version\" pair was removed",
        [](ModelFile& f) { f.h.context.pop_back(); });
  forge("hmac_suite_changed", "suite 0x0001 became 0x0002", [](ModelFile& f) { f.h.suite = 2; });
  forge("hmac_region_length_changed", "region length 4096 became 8192 (4096 more zero bytes)",
        [](ModelFile& f) { f.h.region = 8192; });
  forge("hmac_extension_added", "a non-critical extension 0x0001 was inserted",
        [](ModelFile& f) { f.h.extensions = {{0x0001, Str("x"), {}}}; });
  forge("hmac_file_id_changed", "file id byte 0 flipped: the wrapped key no longer opens (its AAD",
        [](ModelFile& f) { f.h.file_id[0] ^= 0x01; })
      ->Comment("binds the file id), which is reported like a MAC failure");
  forge("hmac_wrapped_key_changed", "a byte of KEK A's wrapped data key flipped: the record fails to open",
        [](ModelFile& f) { f.h.records[0].wrapped[20] ^= 0x01; });
  forge("hmac_record_wraps_other_data_key",
        "KEK A's record re-made around another data key (someone holding KEK A): it opens,",
        [](ModelFile& f) {
          f.h.records[0] = FileRecord(kKekA, f.h.file_id, Range(0xa0, 12), Range(0xc0, 32));
        })
      ->Comment("but the MAC, keyed from that data key, does not verify");
  {
    ModelFile f = HeaderBase("hmac_mac_flipped");
    f.region[f.mac_offset + 31] ^= 0x80;
    add("hmac_mac_flipped", f.Whole(), "the last byte of the header MAC flipped");
  }
  {
    const ModelFile original = NewModelFile("case/hmac_records_swapped", Suite::kAes256Gcm, kDemoContext,
                                            {kA, kB}, Plaintext(100));
    ModelFile f = original;
    std::swap(f.h.records[0], f.h.records[1]);
    add("hmac_records_swapped", KeepMac(std::move(f), original),
        "records for KEKs A and B swapped: the order of records is authenticated");
  }
}

void NoMatchCases() {
  {
    ModelFile f = HeaderBase("nomatch_other_file_key");
    Add("nomatch_other_file_key", "no match", f.Whole())
        .FileKey(kKekC)
        .Comment("wrapped to KEK A only; opened with KEK C");
  }
  {
    const ModelFile original = HeaderBase("nomatch_key_id_changed");
    ModelFile f = original;
    f.h.records[0].key_id[0] = f.h.records[0].key_id[0] == '0' ? '1' : '0';
    Add("nomatch_key_id_changed", "no match", KeepMac(std::move(f), original))
        .FileKey(kKekA)
        .Comment("the key id of KEK A's record was altered (MAC not updated): no provider")
        .Comment("claims the record, so the MAC is never reached and the result is \"no match\"");
  }
  {
    ModelFile f = HeaderBase("nomatch_key_id_uppercase");
    for (auto& c : f.h.records[0].key_id) c = static_cast<uint8_t>(std::toupper(c));
    f.Assemble();
    Add("nomatch_key_id_uppercase", "no match", f.Whole())
        .FileKey(kKekA)
        .Comment("KEK A's fingerprint in upper case (re-MAC'd): key ids compare as bytes");
  }
  {
    ModelFile f = HeaderBase("nomatch_unknown_provider");
    f.h.records[0].provider_id = Str("aws-kms");
    f.Assemble();
    Add("nomatch_unknown_provider", "no match", f.Whole())
        .FileKey(kKekA)
        .Comment("KEK A's record relabelled with provider id \"aws-kms\" (re-MAC'd)");
  }
}

void ContextCases() {
  ModelFile f = HeaderBase("context_mismatch");
  const Bytes body = f.Whole();
  auto add = [&](const std::string& name, const std::string& comment) -> Case& {
    return Add(name, "context mismatch", body).FileKey(kKekA).Comment(comment);
  };
  add("context_value_differs", "context {model: demo, version: 1}; required model=other").Require("model=other");
  add("context_key_absent", "context {model: demo, version: 1}; required bare key \"license\"").Require("license");
  add("context_key_case_differs", "required Model=demo: keys compare as bytes").Require("Model=demo");
  add("context_empty_value_required", "required model= (an empty value), stored \"demo\"").Require("model=");
  add("context_second_requirement_fails", "model=demo matches, version=2 does not")
      .Require("model=demo")
      .Require("version=2");
}

void PayloadCases() {
  auto add = [](const std::string& name, Bytes body, ByteSpan released, const std::string& comment) -> Case& {
    return Add(name, "payload failure", std::move(body)).FileKey(kKekA).Released(released).Comment(comment);
  };
  auto first = [](const ModelFile& f, size_t n) { return Prefix(f.plaintext, n); };
  const size_t k1 = kChunkBytes, k2 = 2 * kChunkBytes;
  {
    ModelFile f = PayloadBase("payload_chunk1_flipped");
    Bytes b = f.Whole();
    b[f.Chunk(1) + 100] ^= 0x01;
    add("payload_chunk1_flipped", b, first(f, k1), "a ciphertext byte of chunk 1 (of 3) flipped");
  }
  {
    ModelFile f = PayloadBase("payload_final_chunk_flipped");
    Bytes b = f.Whole();
    b[f.Chunk(2)] ^= 0x01;
    add("payload_final_chunk_flipped", b, first(f, k2), "the first byte of the final chunk flipped");
  }
  {
    ModelFile f = PayloadBase("payload_chunk0_tag_flipped");
    Bytes b = f.Whole();
    b[f.Chunk(1) - 1] ^= 0x01;
    add("payload_chunk0_tag_flipped", b, {}, "the last tag byte of chunk 0 flipped");
  }
  {
    ModelFile f = PayloadBase("payload_final_chunk_removed");
    add("payload_final_chunk_removed", Prefix(f.Whole(), f.Chunk(2)), first(f, k2),
        "truncated at a chunk boundary: the short final chunk is gone, so the message ends on a")
        .Comment("full chunk; chunks 0 and 1 authenticate and may be released");
  }
  {
    ModelFile f = PayloadBase("payload_truncated_after_chunk0");
    add("payload_truncated_after_chunk0", Prefix(f.Whole(), f.Chunk(1)), first(f, k1),
        "truncated at the boundary after chunk 0");
  }
  {
    ModelFile f = PayloadBase("payload_truncated_mid_chunk1");
    add("payload_truncated_mid_chunk1", Prefix(f.Whole(), f.Chunk(1) + 5000), first(f, k1),
        "truncated 5000 bytes into chunk 1");
  }
  {
    ModelFile f = PayloadBase("payload_truncated_final_tag");
    const Bytes b = f.Whole();
    add("payload_truncated_final_tag", Prefix(b, b.size() - 1), first(f, k2),
        "the last byte of the final chunk's tag is missing");
  }
  {
    ModelFile f = PayloadBase("payload_trailing_byte");
    Bytes b = f.Whole();
    b.push_back(0x00);
    add("payload_trailing_byte", b, first(f, k2), "one 0x00 byte after the final chunk");
  }
  {
    ModelFile f = PayloadBase("payload_trailing_valid_chunk", Suite::kAes256Gcm, 32768);
    Bytes b = f.Whole();
    const Bytes extra = SealChunk(f.PayloadKeys(), 3, {});
    b.insert(b.end(), extra.begin(), extra.end());
    add("payload_trailing_valid_chunk", b, first(f, k2),
        "32768 bytes (chunks 16384, 16384, empty final) followed by an empty chunk validly sealed")
        .Comment("at index 3: the last 32 bytes read as one chunk 2, which fails");
  }
  {
    ModelFile f = PayloadBase("payload_missing_empty_final_chunk", Suite::kAes256Gcm, 32768);
    const Bytes b = f.Whole();
    add("payload_missing_empty_final_chunk", Prefix(b, b.size() - kAeadTagBytes), first(f, k2),
        "32768 bytes without their empty final chunk: every chunk present authenticates and the")
        .Comment("whole plaintext may be released, yet the message is truncated and MUST fail");
  }
  {
    ModelFile f = PayloadBase("payload_chunks_swapped");
    Bytes b = f.Whole();
    std::swap_ranges(b.begin() + static_cast<long>(f.Chunk(0)), b.begin() + static_cast<long>(f.Chunk(1)),
                     b.begin() + static_cast<long>(f.Chunk(1)));
    add("payload_chunks_swapped", b, {}, "chunks 0 and 1 swapped");
  }
  {
    ModelFile f = PayloadBase("payload_chunk_duplicated");
    Bytes b = f.Whole();
    std::copy(b.begin() + static_cast<long>(f.Chunk(0)), b.begin() + static_cast<long>(f.Chunk(1)),
              b.begin() + static_cast<long>(f.Chunk(1)));
    add("payload_chunk_duplicated", b, first(f, k1), "chunk 0 repeated in place of chunk 1");
  }
  {
    ModelFile f = PayloadBase("payload_from_other_file");
    ModelFile other = PayloadBase("payload_from_other_file/other");
    add("payload_from_other_file", Cat({f.region, other.payload}), {},
        "this header with the payload of another file wrapped to the same KEK, same plaintext");
  }
  {
    ModelFile f = PayloadBase("payload_from_other_context");
    ModelFile other = f;
    other.h.context = {{Str("model"), Str("other")}};
    other.Assemble();
    add("payload_from_other_context", Cat({f.region, other.payload}), {},
        "same data key and file id, but the payload was sealed under a header with another")
        .Comment("context: the core digest in the entry context differs, so the commitment does");
  }
  {
    ModelFile f = PayloadBase("payload_commitment_flipped");
    Bytes b = f.Whole();
    b[f.region.size() + kSaltBytes + 5] ^= 0x01;
    add("payload_commitment_flipped", b, {}, "byte 5 of the Cobblestone commitment flipped");
  }
  {
    ModelFile f = PayloadBase("payload_salt_flipped");
    Bytes b = f.Whole();
    b[f.region.size()] ^= 0x01;
    add("payload_salt_flipped", b, {}, "byte 0 of the Cobblestone salt flipped");
  }
  {
    ModelFile f = PayloadBase("payload_absent");
    add("payload_absent", f.region, {}, "the file ends with the header region");
  }
  {
    ModelFile f = PayloadBase("payload_stream_header_truncated");
    add("payload_stream_header_truncated", Prefix(f.Whole(), f.region.size() + 30), {},
        "the file ends 30 bytes into the 56-byte salt and commitment");
  }
  {
    ModelFile f = PayloadBase("payload_no_chunks");
    add("payload_no_chunks", Prefix(f.Whole(), f.region.size() + kStreamHeaderBytes), {},
        "salt and commitment, then nothing: there is no final chunk");
  }
  {
    ModelFile f = PayloadBase("payload_entry_index_1");
    f.entry_index = 1;
    f.Assemble();
    add("payload_entry_index_1", f.Whole(), {}, "the payload was sealed as entry 1 instead of entry 0");
  }
  {
    ModelFile f = PayloadBase("payload_entry_name_set");
    f.entry_name = "model.bin";
    f.Assemble();
    add("payload_entry_name_set", f.Whole(), {},
        "the payload was sealed with entry name \"model.bin\" instead of the empty name");
  }
  {
    ModelFile f = PayloadBase("payload_sealed_with_other_suite", Suite::kChaCha20Poly1305);
    f.payload_suite = Suite::kAes256Gcm;
    f.Assemble();
    add("payload_sealed_with_other_suite", f.Whole(), {},
        "the header says chacha20-poly1305; the payload was sealed with AEAD_AES_256_GCM");
  }
  {
    ModelFile f = PayloadBase("payload_chacha_chunk1_flipped", Suite::kChaCha20Poly1305);
    Bytes b = f.Whole();
    b[f.Chunk(1) + 100] ^= 0x01;
    add("payload_chacha_chunk1_flipped", b, first(f, k1), "chacha20-poly1305: a byte of chunk 1 flipped");
  }
  {
    ModelFile f = PayloadBase("payload_chacha_final_chunk_removed", Suite::kChaCha20Poly1305);
    add("payload_chacha_final_chunk_removed", Prefix(f.Whole(), f.Chunk(2)), first(f, k2),
        "chacha20-poly1305: truncated at a chunk boundary, the final chunk is gone");
  }
  {
    ModelFile f = PayloadBase("payload_empty_message_extra_tag", Suite::kAes256Gcm, 0);
    Bytes b = f.Whole();
    const Bytes tag(b.end() - kAeadTagBytes, b.end());
    b.insert(b.end(), tag.begin(), tag.end());
    add("payload_empty_message_extra_tag", b, {}, "an empty message whose final chunk (a bare tag) is repeated");
  }
}

// ---------------------------------------------------------------------------------------
// Per-tensor layout (FORMAT.md §6). The sources are written here byte by byte, with the
// generator's own record of where each tensor lies; TensorModel is a second encoder of §6
// that shares nothing with src/format/tensor_*.cpp, and ValidTensorFile makes the two agree.

Bytes Le(uint64_t v, size_t width) {
  Bytes out(width);
  for (size_t i = 0; i < width; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
  return out;
}

void Append(Bytes& out, ByteSpan b) { out.insert(out.end(), b.begin(), b.end()); }

struct SourceTensor {
  std::string name, dtype;
  std::vector<uint64_t> shape;
  uint64_t offset = 0, size = 0;  // absolute, in the source file
};

struct SourceFile {
  uint8_t format = 1;                 // §6.2 source-format: 1 safetensors, 2 GGUF
  Bytes bytes;
  std::vector<SourceTensor> tensors;  // in entry order (§6.1)

  const SourceTensor& Tensor(std::string_view name) const {
    for (const auto& t : tensors) {
      if (t.name == name) return t;
    }
    Die("no source tensor " + std::string(name));
  }
  // Entry number of a tensor (§6.1: entry 0 is the skeleton).
  uint32_t Entry(std::string_view name) const {
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (tensors[i].name == name) return static_cast<uint32_t>(i + 1);
    }
    Die("no source tensor " + std::string(name));
  }
};

// §6.1: tensors in ascending order of source offset; at equal offsets (only an empty tensor
// can share one) the shorter first, then by name, bytewise.
void SortTensors(std::vector<SourceTensor>& tensors) {
  std::sort(tensors.begin(), tensors.end(), [](const SourceTensor& a, const SourceTensor& b) {
    return std::tie(a.offset, a.size, a.name) < std::tie(b.offset, b.size, b.name);
  });
}

Bytes TensorBytes(const std::string& name, uint64_t n) { return Drbg("tensor/" + name).Take(n); }

// A safetensors file: [u64 LE N][N bytes of JSON, space-padded to a multiple of 8][data].
// `big` adds a 40960-byte tensor, three chunks when encrypted (16384 + 16384 + 8192).
SourceFile SafetensorsSource(bool big) {
  struct T {
    std::string name, dtype;
    std::vector<uint64_t> shape;
    uint64_t size;
  };
  std::vector<T> data = {  // in data order
      {"embed.weight", "F16", {160, 128}, 40960},
      {"layers.0.attn.q.weight", "F32", {16, 16}, 1024},
      {"scale", "F32", {}, 4},  // 0-d
      {"empty", "F32", {0}, 0},  // data_offsets [x, x], x also where the next tensor starts
      {"layers.0.attn.k.weight", "F32", {16, 16}, 1024},
      {"layers.0.norm.bias", "BF16", {8}, 16},
      {"head.caf\xC3\xA9", "I8", {17, 3}, 51},
  };
  if (!big) data.erase(data.begin());
  std::vector<uint64_t> begin;
  uint64_t at = 0;
  for (const T& t : data) begin.push_back(at), at += t.size;
  // The JSON lists the tensors in reverse data order: order in the header means nothing.
  std::string json = "{\"__metadata__\":{\"format\":\"pt\"}";
  for (size_t i = data.size(); i-- > 0;) {
    std::string dims;
    for (uint64_t d : data[i].shape) {
      if (!dims.empty()) dims += ',';
      dims += std::to_string(d);
    }
    json += ",\"" + data[i].name + "\":{\"dtype\":\"" + data[i].dtype + "\",\"shape\":[" + dims +
            "],\"data_offsets\":[" + std::to_string(begin[i]) + "," + std::to_string(begin[i] + data[i].size) + "]}";
  }
  json += "}";
  while (json.size() % 8) json += ' ';
  SourceFile f;
  f.format = 1;
  f.bytes = Le(json.size(), 8);
  Append(f.bytes, AsBytes(json));
  const uint64_t data_start = f.bytes.size();
  for (size_t i = 0; i < data.size(); ++i) {
    Append(f.bytes, TensorBytes(data[i].name, data[i].size));
    f.tensors.push_back({data[i].name, data[i].dtype, data[i].shape, data_start + begin[i], data[i].size});
  }
  SortTensors(f.tensors);
  return f;
}

// A GGUF v3 file with general.alignment = 64, tensor infos listed out of offset order, gaps
// between tensors (alignment padding, and 64 bytes of 0xa5 filler that belong to no tensor),
// a 0-d tensor and an empty one at the offset of the next tensor. So the skeleton has five
// segments. `big` adds a 40960-byte F16 tensor first in the data section.
SourceFile GgufSource(bool big) {
  struct T {
    std::string name, dtype;
    uint32_t type;
    std::vector<uint64_t> ne;
    uint64_t rel, size;
  };
  std::vector<T> infos = {  // in the order of the tensor infos
      {"blk.0.attn_k.weight", "Q8_0", 8, {64, 8}, 41792, 544},
      {"token_embd.weight", "F16", 1, {128, 160}, 0, 40960},
      {"rope.scale", "F32", 0, {}, 41152, 4},
      {"blk.0.attn_q.weight", "Q8_0", 8, {64, 8}, 41216, 544},
      {"empty", "F32", 0, {0}, 41216, 0},
      {"blk.0.attn_norm.weight", "F32", 0, {20}, 40960, 80},
  };
  uint64_t base = 0;
  if (!big) {
    infos.erase(infos.begin() + 1);
    base = 40960;
    for (T& t : infos) t.rel -= base;
  }
  const uint64_t filler = 41088 - base, data_bytes = 42368 - base;  // after attn_k, padded to 64

  auto str = [](Bytes& b, std::string_view s) {
    Append(b, Le(s.size(), 8));
    Append(b, AsBytes(s));
  };
  Bytes b = Str("GGUF");
  Append(b, Le(3, 4));
  Append(b, Le(infos.size(), 8));
  Append(b, Le(5, 8));
  str(b, "general.architecture");
  Append(b, Le(8, 4));  // string
  str(b, "llama");
  str(b, "general.alignment");
  Append(b, Le(4, 4));  // u32
  Append(b, Le(64, 4));
  str(b, "general.name");
  Append(b, Le(8, 4));
  str(b, "hmod conformance kit");
  str(b, "test.array");
  Append(b, Le(9, 4));  // array of 3 i32
  Append(b, Le(5, 4));
  Append(b, Le(3, 8));
  for (uint32_t v : {1u, 2u, 3u}) Append(b, Le(v, 4));
  str(b, "test.flag");
  Append(b, Le(7, 4));  // bool
  b.push_back(1);
  for (const T& t : infos) {
    str(b, t.name);
    Append(b, Le(t.ne.size(), 4));
    for (uint64_t d : t.ne) Append(b, Le(d, 8));
    Append(b, Le(t.type, 4));
    Append(b, Le(t.rel, 8));
  }
  const uint64_t data_start = (b.size() + 63) / 64 * 64;
  b.resize(data_start, 0);
  Bytes data(data_bytes, 0);
  std::fill(data.begin() + static_cast<long>(filler), data.begin() + static_cast<long>(filler + 64), 0xa5);
  SourceFile f;
  f.format = 2;
  for (const T& t : infos) {
    const Bytes tb = TensorBytes(t.name, t.size);
    std::copy(tb.begin(), tb.end(), data.begin() + static_cast<long>(t.rel));
    f.tensors.push_back({t.name, t.dtype, t.ne, data_start + t.rel, t.size});
  }
  Append(b, data);
  f.bytes = std::move(b);
  SortTensors(f.tensors);
  return f;
}

// One entry of the index (§6.3).
struct TEntry {
  uint8_t kind = 1;        // 0 skeleton, 1 tensor
  uint8_t protection = 1;  // 1 encrypted, 0 plain
  std::string name, dtype;
  std::vector<uint64_t> shape;
  uint64_t offset = 0, stored_length = 0, size = 0;
  std::vector<std::pair<uint64_t, uint64_t>> segments;  // (source offset, length)
  Bytes digest;                                          // plain entries: SHA-256 of the source bytes
};

uint64_t Align4096(uint64_t v) { return (v + 4095) / 4096 * 4096; }
// §4.1: a message of L plaintext bytes is 56 + L + 16 (⌊L / 16384⌋ + 1) bytes.
uint64_t MessageSize(uint64_t n) { return 56 + n + 16 * (n / kChunkBytes + 1); }

Bytes EncodeIndexModel(const std::vector<TEntry>& entries) {
  Bytes out = Str("HMIX");
  Append(out, Be(1, 1));
  Append(out, Be(entries.size(), 4));
  for (const TEntry& e : entries) {
    Append(out, Be(e.kind, 1));
    Append(out, Be(e.protection, 1));
    Append(out, Be(e.name.size(), 2));
    Append(out, AsBytes(e.name));
    Append(out, Be(e.dtype.size(), 1));
    Append(out, AsBytes(e.dtype));
    Append(out, Be(e.shape.size(), 1));
    for (uint64_t d : e.shape) Append(out, Be(d, 8));
    Append(out, Be(e.offset, 8));
    Append(out, Be(e.stored_length, 8));
    Append(out, Be(e.size, 8));
    Append(out, Be(e.segments.size(), 4));
    for (const auto& [at, n] : e.segments) {
      Append(out, Be(at, 8));
      Append(out, Be(n, 8));
    }
    if (e.protection == 0) Append(out, e.digest);
  }
  return out;
}

const Bytes kSignSeed = Range(0x60, 32);  // the publisher's Ed25519 seed (key D)

struct Ed25519Keys {
  Bytes public_key, secret_key;  // libsodium's 64-byte secret: seed ‖ public key
};
Ed25519Keys Ed25519FromSeed(ByteSpan seed) {
  Ed25519Keys k{Bytes(crypto_sign_PUBLICKEYBYTES), Bytes(crypto_sign_SECRETKEYBYTES)};
  if (crypto_sign_seed_keypair(k.public_key.data(), k.secret_key.data(), seed.data()) != 0) Die("Ed25519 keypair");
  return k;
}

// A whole layout-2 file in the model. Assemble() encodes it from the source, the index as
// written (after the edits below, for malformed files) and the header, with every entry
// sealed under the core and the index as written, and the index MAC'd or sealed under them:
// a reader that skipped the check a malformed case is about would open the file.
struct TensorModel {
  ModelFile hdr;  // header fields and keys (its stream payload is not used)
  Suite suite = Suite::kAes256Gcm;
  SourceFile src;
  uint8_t index_mode = 1;  // 1 encrypted, 2 public
  std::set<std::string> plain;
  bool sign = false;
  std::vector<Bytes> salts;  // per entry (empty for plain ones), drawn in entry order
  Bytes index_salt;          // encrypted index only

  // Edits, for malformed files.
  std::function<void(TensorModel&)> edit_plan;           // entries' offsets, index_offset
  std::function<void(std::vector<TEntry>&)> edit_index;  // the index as written
  std::function<void(Bytes&)> edit_index_bytes;          // its encoding
  std::function<void(Bytes&)> edit_extension;            // the 0x8001 value
  bool omit_extension = false;

  // Results.
  std::vector<TEntry> planned, written;
  std::vector<Bytes> contents, stored;  // per entry: its source bytes; its bytes in the file
  uint64_t index_offset = 0;
  Bytes index_plain, index_stored, extension, whole;
  size_t trailer_offset = 0;
  Ed25519Keys signer;

  // §6.1: entry 0 holds every source byte outside the tensors, in order; then the tensors.
  void Plan() {
    planned.clear();
    contents.clear();
    TEntry sk;
    sk.kind = 0;
    sk.protection = index_mode == 1 ? 1 : 0;  // §6.3: public mode stores the skeleton plain
    uint64_t pos = 0;
    for (const auto& t : src.tensors) {
      if (t.offset > pos) sk.segments.push_back({pos, t.offset - pos});
      pos = std::max(pos, t.offset + t.size);
    }
    if (pos < src.bytes.size()) sk.segments.push_back({pos, src.bytes.size() - pos});
    planned.push_back(sk);
    for (const auto& t : src.tensors) {
      TEntry e;
      e.protection = plain.count(t.name) ? 0 : 1;
      e.name = t.name;
      e.dtype = t.dtype;
      e.shape = t.shape;
      e.segments = {{t.offset, t.size}};
      planned.push_back(e);
    }
    for (TEntry& e : planned) {
      Bytes c;
      for (const auto& [at, n] : e.segments) {
        Append(c, ByteSpan(src.bytes).subspan(static_cast<size_t>(at), static_cast<size_t>(n)));
      }
      e.size = c.size();
      if (e.protection == 0) {
        const auto d = Sha256(c);
        e.digest.assign(d.begin(), d.end());
      }
      contents.push_back(std::move(c));
    }
  }

  void Assemble() {
    // The region's size fixes every offset after it; it is known once the header is encoded.
    size_t region = kRegionAlign;
    for (int pass = 0;; ++pass) {
      if (pass == 3) Die("tensor model: the region size does not settle");
      Plan();
      uint64_t at = region;
      for (TEntry& e : planned) {
        e.offset = Align4096(at);
        e.stored_length = e.protection == 1 ? MessageSize(e.size) : e.size;
        at = e.offset + e.stored_length;
      }
      index_offset = Align4096(at);
      if (edit_plan) edit_plan(*this);
      written = planned;
      if (edit_index) edit_index(written);
      index_plain = EncodeIndexModel(written);
      if (edit_index_bytes) edit_index_bytes(index_plain);
      const uint64_t index_length = index_mode == 1 ? MessageSize(index_plain.size()) : index_plain.size() + 32;
      extension = Cat({Be(index_mode, 1), Be(src.format, 1), Be(src.bytes.size(), 8), Be(index_offset, 8),
                       Be(index_length, 4), Be(0, 2), Be(sign ? 1 : 0, 1)});
      if (edit_extension) edit_extension(extension);
      hdr.h.layout = 2;
      hdr.h.extensions.clear();
      if (!omit_extension) hdr.h.extensions.push_back({0x8001, extension, {}});
      hdr.Assemble();
      if (hdr.region.size() == region) break;
      region = hdr.region.size();
    }
    const auto digest = Sha256(hdr.core);
    whole = hdr.region;
    whole.resize(static_cast<size_t>(index_offset), 0);
    stored.clear();
    for (size_t i = 0; i < written.size(); ++i) {
      Bytes s = contents[i];
      if (written[i].protection == 1) {
        const Cobble c = CobbleDerive(suite, hdr.keys.payload_key, salts[i],
                                      EntryContextModel(digest, static_cast<uint32_t>(i), written[i].name));
        s = CobbleSeal(c, contents[i]);
      }
      const size_t at = static_cast<size_t>(written[i].offset);
      if (at + s.size() > whole.size()) Die("tensor model: an entry runs into the index");
      std::copy(s.begin(), s.end(), whole.begin() + static_cast<long>(at));
      stored.push_back(std::move(s));
    }
    if (index_mode == 1) {
      const Cobble c = CobbleDerive(suite, hdr.keys.payload_key, index_salt,
                                    EntryContextModel(digest, 0xFFFFFFFF, "hmod.index"));
      index_stored = CobbleSeal(c, index_plain);
    } else {
      const Bytes key =
          Copy(Must(HkdfExpand(HashAlg::kSha512, hdr.keys.prk, AsBytes("hmod/v1 index mac"), 32), "index mac key"));
      const auto mac = HmacSha256(key, Cat({digest, index_plain}));
      index_stored = Cat({index_plain, mac});
    }
    Append(whole, index_stored);
    trailer_offset = whole.size();
    if (sign) {
      signer = Ed25519FromSeed(kSignSeed);
      const auto body = Sha256(ByteSpan(whole).subspan(hdr.region.size()));
      const Bytes message = Cat({AsBytes("hmod/v1 signature"), Bytes{0}, Sha256(hdr.region), body});
      Bytes sig(crypto_sign_BYTES);
      crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), signer.secret_key.data());
      Append(whole, Cat({AsBytes("HMSG"), Bytes{1}, signer.public_key, body, sig}));
    }
  }

  // Where byte `at` of the file lies, for messages.
  std::string Describe(size_t at) const {
    if (at < hdr.region.size()) {
      for (const Field& f : hdr.fields) {
        if (at >= f.offset && at < f.offset + f.length) return "the header (" + f.name + ")";
      }
      return "the header region";
    }
    for (size_t i = 0; i < written.size(); ++i) {
      if (at >= written[i].offset && at < written[i].offset + stored[i].size()) {
        return "entry " + std::to_string(i) + (i ? " ('" + written[i].name + "')" : " (the skeleton)") +
               ", byte " + std::to_string(at - written[i].offset);
      }
    }
    if (at < index_offset) return "padding between entries";
    if (at < trailer_offset) return "the index, byte " + std::to_string(at - index_offset);
    return "the signature trailer, byte " + std::to_string(at - trailer_offset);
  }
};

struct TensorOptions {
  Suite suite = Suite::kAes256Gcm;
  EncryptionContext context;
  std::vector<Recipient> recipients = {{Range(0x00, 32), {}}};
  bool public_index = false;
  std::set<std::string> plain;              // for the model: tensors stored plain
  std::vector<std::string> plaintext_globs;  // for the library: the same, as patterns
  bool sign = false;
};

// Draws, in the library's order: the header (NewHeaderModel), then a Cobblestone salt for
// each encrypted entry in entry order, then one for an encrypted index.
TensorModel NewTensorModel(const std::string& seed, const SourceFile& src, const TensorOptions& o) {
  Drbg d(seed);
  TensorModel m;
  m.hdr = NewHeaderModel(d, o.suite, o.context, o.recipients);
  m.suite = o.suite;
  m.src = src;
  m.index_mode = o.public_index ? 2 : 1;
  m.plain = o.plain;
  m.sign = o.sign;
  m.Plan();
  for (const TEntry& e : m.planned) m.salts.push_back(e.protection == 1 ? d.Take(kSaltBytes) : Bytes{});
  if (m.index_mode == 1) m.index_salt = d.Take(kSaltBytes);
  m.Assemble();
  return m;
}

Bytes LibraryEncryptTensors(const std::string& seed, const SourceFile& src, const TensorOptions& o) {
  ProviderList providers = LibraryProviders(o.recipients);
  MemorySource in(src.bytes);
  const ModelLayout layout =
      Must(ParseModel(in, src.format == 1 ? ModelFormat::kSafetensors : ModelFormat::kGguf), "ParseModel");
  TensorEncryptOptions options;
  options.suite = o.suite;
  options.context = o.context;
  options.public_index = o.public_index;
  options.plaintext_globs = o.plaintext_globs;
  options.stream.threads = 1;
  SigningKey key{SecretBytes(crypto_sign_SECRETKEYBYTES), {}};
  if (o.sign) {
    crypto_sign_seed_keypair(key.public_key.data(), key.secret.secret().data(), kSignSeed.data());
    options.sign_key = &key;
  }
  MemorySink out;
  Drbg d(seed);
  g_library_drbg = &d;
  SetRandomSourceForTesting(FillFromDrbg);
  auto r = EncryptModelToContainer(in, layout, out, providers, options);
  SetRandomSourceForTesting(nullptr);
  g_library_drbg = nullptr;
  Must(std::move(r), "EncryptModelToContainer");
  return out.bytes;
}

// A layout-2 file both writers produce; they must agree.
TensorModel ValidTensorFile(const std::string& name, const SourceFile& src, const TensorOptions& o) {
  const std::string seed = "case/" + name;
  TensorModel m = NewTensorModel(seed, src, o);
  const Bytes lib = LibraryEncryptTensors(seed, src, o);
  if (lib != m.whole) {
    size_t i = 0;
    while (i < lib.size() && i < m.whole.size() && lib[i] == m.whole[i]) ++i;
    Die(name + ": EncryptModelToContainer and the FORMAT.md §6 model differ at byte " + std::to_string(i) + " of " +
        std::to_string(lib.size()) + " (model: " + std::to_string(m.whole.size()) + " bytes), in " +
        m.Describe(i));
  }
  return m;
}

// The plaintext a reader releases when entry `tensor` fails at chunk `chunk`: every source
// byte before it, and the chunks of it that authenticate (§6.4, §4.5).
Bytes ReleasedBefore(const SourceFile& src, std::string_view tensor, uint64_t chunk = 0) {
  return Prefix(src.bytes, static_cast<size_t>(src.Tensor(tensor).offset + chunk * kChunkBytes));
}

Case& Signer(Case& c, const TensorModel& m) {
  c.lines.emplace_back("signer", HexEncode(m.signer.public_key));
  return c;
}

void TensorCases() {
  const SourceFile st = SafetensorsSource(true), gguf = GgufSource(true);
  const SourceFile st_small = SafetensorsSource(false), gguf_small = GgufSource(false);
  const Suite aes = Suite::kAes256Gcm, chacha = Suite::kChaCha20Poly1305;
  auto success = [](const std::string& name, const TensorModel& m) -> Case& {
    return Add(name, "success", m.whole).FileKey(kKekA).Released(m.src.bytes);
  };

  // ---- success
  {
    TensorOptions o{aes};
    TensorModel m = ValidTensorFile("success_tensors_safetensors_aes", st, o);
    success("success_tensors_safetensors_aes", m)
        .Comment("per-tensor layout (section 6), safetensors source of 7 tensors: one of 40960 bytes")
        .Comment("(three chunks), a 0-d tensor, an empty tensor, a UTF-8 name; encrypted index");
  }
  {
    TensorOptions o{chacha};
    o.public_index = true;
    TensorModel m = ValidTensorFile("success_tensors_safetensors_chacha_public", st, o);
    success("success_tensors_safetensors_chacha_public", m)
        .Comment("chacha20-poly1305, public index (MAC'd, skeleton stored plain), tensors encrypted");
  }
  {
    TensorOptions o{aes};
    o.public_index = true;
    TensorModel m = ValidTensorFile("success_tensors_gguf_aes_public", gguf, o);
    success("success_tensors_gguf_aes_public", m)
        .Comment("GGUF v3 source, alignment 64: tensor infos out of offset order, gaps between tensors")
        .Comment("(padding and 0xa5 filler), a 0-d and an empty tensor: the skeleton has 5 segments;")
        .Comment("public index");
  }
  {
    TensorOptions o{chacha};
    TensorModel m = ValidTensorFile("success_tensors_gguf_chacha", gguf, o);
    success("success_tensors_gguf_chacha", m).Comment("GGUF source, chacha20-poly1305, encrypted index");
  }
  {
    TensorOptions o{aes};
    o.plain = {"layers.0.norm.bias", "scale", "empty"};
    o.plaintext_globs = {"*norm*", "scale", "empty"};
    TensorModel m = ValidTensorFile("success_tensors_safetensors_plain_tensors", st, o);
    success("success_tensors_safetensors_plain_tensors", m)
        .Comment("encrypted index; tensors layers.0.norm.bias, scale (0-d) and empty stored plain,")
        .Comment("checked by their SHA-256 in the index; the empty plain entry has no bytes and shares")
        .Comment("its offset with the next entry");
  }
  {
    TensorOptions o{aes};
    o.public_index = true;
    o.plain = {"blk.0.attn_norm.weight", "rope.scale", "empty"};
    o.plaintext_globs = {"*norm*", "rope.*", "empty"};
    TensorModel m = ValidTensorFile("success_tensors_gguf_public_plain_tensors", gguf, o);
    success("success_tensors_gguf_public_plain_tensors", m)
        .Comment("GGUF, public index, three tensors (one 0-d, one empty) and the skeleton stored plain");
  }
  {
    TensorOptions o{aes};
    o.sign = true;
    TensorModel m = ValidTensorFile("success_tensors_safetensors_signed", st, o);
    Signer(success("success_tensors_safetensors_signed", m), m)
        .Comment("encrypted index, Ed25519 signature trailer (section 6.5) by the key of the signer line");
  }
  {
    TensorOptions o{chacha};
    o.public_index = true;
    o.plain = {"blk.0.attn_norm.weight"};
    o.plaintext_globs = {"*norm*"};
    o.sign = true;
    TensorModel m = ValidTensorFile("success_tensors_gguf_signed_public", gguf, o);
    Signer(success("success_tensors_gguf_signed_public", m), m)
        .Comment("GGUF, chacha20-poly1305, public index, one plain tensor, signed");
  }
  {
    TensorOptions o{aes};
    o.context = {{"model", "tiny-gguf"}};
    o.recipients = {kA, kB};
    TensorModel m = ValidTensorFile("success_tensors_two_keks_context", gguf_small, o);
    Add("success_tensors_two_keks_context", "success", m.whole)
        .FileKey(kKekB)
        .Require("model=tiny-gguf")
        .Released(m.src.bytes)
        .Comment("small GGUF source wrapped to KEKs A and B, opened with B; context required");
  }

  // ---- header failures: rule 12 (the tensor-layout extension), everything else valid
  auto header = [&](const std::string& name, const std::string& comment, auto&& change) {
    TensorModel m = NewTensorModel("case/" + name, st_small, TensorOptions{aes});
    change(m);
    m.Assemble();
    Add(name, "header failure", m.whole).FileKey(kKekA).Comment(comment);
  };
  header("header_tensors_extension_missing", "layout 2 without the 0x8001 extension",
         [](TensorModel& m) { m.omit_extension = true; });
  header("header_tensors_extension_26_bytes", "the 0x8001 extension is 26 bytes (a trailing 0x00), not 25",
         [](TensorModel& m) { m.edit_extension = [](Bytes& v) { v.push_back(0); }; });
  header("header_tensors_extension_24_bytes", "the 0x8001 extension is 24 bytes: the signed byte is missing",
         [](TensorModel& m) { m.edit_extension = [](Bytes& v) { v.pop_back(); }; });
  header("header_tensors_index_mode_3", "index mode 3 (unassigned): unsupported",
         [](TensorModel& m) { m.edit_extension = [](Bytes& v) { v[0] = 3; }; });
  header("header_tensors_source_format_3", "source format 3 (unassigned): unsupported",
         [](TensorModel& m) { m.edit_extension = [](Bytes& v) { v[1] = 3; }; });
  header("header_tensors_reserved_nonzero", "the reserved u16 of the 0x8001 extension is 0x0001",
         [](TensorModel& m) { m.edit_extension = [](Bytes& v) { v[23] = 1; }; });
  header("header_tensors_signed_2", "the signed byte is 2 (only 0 and 1 are defined)",
         [](TensorModel& m) { m.edit_extension = [](Bytes& v) { v[24] = 2; }; });
  header("header_tensors_index_offset_unaligned",
         "the index starts right after the last entry, at an offset that is not a multiple of 4096",
         [](TensorModel& m) {
           m.edit_plan = [](TensorModel& t) {
             t.index_offset = t.planned.back().offset + t.planned.back().stored_length;
           };
         });
  {
    ModelFile f = HeaderBase("header_stream_with_tensor_extension");
    f.h.extensions = {{0x8001, Cat({Bytes{1, 1}, Be(100, 8), Be(8192, 8), Be(200, 4), Be(0, 2), Bytes{0}}), {}}};
    f.Assemble();
    Add("header_stream_with_tensor_extension", "header failure", f.Whole())
        .FileKey(kKekA)
        .Comment("layout 1 (stream) with a well-formed 25-byte 0x8001 extension");
  }
  {
    ModelFile f = HeaderBase("header_unknown_critical_extension_8002");
    f.h.extensions = {{0x8002, Str("x"), {}}};
    f.Assemble();
    Add("header_unknown_critical_extension_8002", "header failure", f.Whole())
        .FileKey(kKekA)
        .Comment("extension 0x8002: critical and unassigned (header_unknown_critical_extension predates")
        .Comment("the assignment of 0x8001 and now fails as layout 1 with a 0x8001 extension)");
  }

  // ---- index failures: the header opens, the index authenticates, its parse fails
  auto index = [&](const std::string& name, bool public_index, const std::string& comment, auto&& change) -> Case& {
    TensorOptions o{aes};
    o.public_index = public_index;
    TensorModel m = NewTensorModel("case/" + name, gguf_small, o);
    change(m);
    m.Assemble();
    return Add(name, "index failure", m.whole).FileKey(kKekA).Comment(comment);
  };
  const uint32_t q = gguf_small.Entry("blk.0.attn_q.weight"), k = gguf_small.Entry("blk.0.attn_k.weight");
  const uint32_t norm = gguf_small.Entry("blk.0.attn_norm.weight");
  index("index_entries_overlap", false, "attn_k's entry placed at attn_q's offset (the two overlap)", [&](TensorModel& m) {
    m.edit_index = [&](std::vector<TEntry>& e) { e[k].offset = e[q].offset; };
  }).Comment("GGUF source, encrypted index (re-sealed)");
  index("index_entry_offset_unaligned", false, "attn_norm's entry moved 16 bytes on: its offset is not a multiple of 4096",
        [&](TensorModel& m) { m.edit_index = [&](std::vector<TEntry>& e) { e[norm].offset += 16; }; });
  index("index_segments_overlap", false, "attn_q's segment starts one byte early, inside a skeleton segment:",
        [&](TensorModel& m) { m.edit_index = [&](std::vector<TEntry>& e) { e[q].segments[0].first -= 1; }; })
      .Comment("the segments no longer tile the source");
  index("index_duplicate_name", false, "attn_k's entry renamed blk.0.attn_q.weight (sealed under that name)",
        [&](TensorModel& m) { m.edit_index = [&](std::vector<TEntry>& e) { e[k].name = e[q].name; }; });
  index("index_stored_length_mismatch", false, "attn_q is encrypted but its stored length is its size",
        [&](TensorModel& m) { m.edit_index = [&](std::vector<TEntry>& e) { e[q].stored_length = e[q].size; }; });
  index("index_trailing_byte", false, "one 0x00 byte after the last entry of the index plaintext",
        [](TensorModel& m) { m.edit_index_bytes = [](Bytes& b) { b.push_back(0); }; });
  index("index_public_duplicate_name", true, "public index (re-MAC'd): attn_k's entry renamed blk.0.attn_q.weight",
        [&](TensorModel& m) { m.edit_index = [&](std::vector<TEntry>& e) { e[k].name = e[q].name; }; });

  // ---- payload failures
  auto payload = [](const std::string& name, Bytes body, ByteSpan released, const std::string& comment) -> Case& {
    return Add(name, "payload failure", std::move(body)).FileKey(kKekA).Released(released).Comment(comment);
  };
  {
    TensorModel m = NewTensorModel("case/payload_tensors_entries_swapped", gguf_small, TensorOptions{aes});
    Bytes body = m.whole;
    std::copy(m.stored[q].begin(), m.stored[q].end(), body.begin() + static_cast<long>(m.written[k].offset));
    std::copy(m.stored[k].begin(), m.stored[k].end(), body.begin() + static_cast<long>(m.written[q].offset));
    payload("payload_tensors_entries_swapped", body, ReleasedBefore(gguf_small, "blk.0.attn_q.weight"),
            "GGUF: the stored entries of attn_q and attn_k (544 bytes each) swapped: each is sealed")
        .Comment("under its own entry number and name; everything before attn_q is released");
  }
  {
    TensorModel m = NewTensorModel("case/payload_tensors_chunk1_flipped", st, TensorOptions{aes});
    const uint32_t e = st.Entry("embed.weight");
    Bytes body = m.whole;
    body[m.written[e].offset + kStreamHeaderBytes + kChunkCiphertextBytes + 100] ^= 0x01;
    payload("payload_tensors_chunk1_flipped", body, ReleasedBefore(st, "embed.weight", 1),
            "a byte of chunk 1 (of 3) of embed.weight flipped: the skeleton and chunk 0 are released");
  }
  {
    TensorModel m = NewTensorModel("case/payload_tensors_empty_tensor_flipped", gguf_small, TensorOptions{aes});
    Bytes body = m.whole;
    body[m.written[gguf_small.Entry("empty")].offset + 60] ^= 0x01;
    payload("payload_tensors_empty_tensor_flipped", body, ReleasedBefore(gguf_small, "empty"),
            "a tag byte of the empty tensor's message (56 + 16 bytes) flipped: an empty entry is")
        .Comment("authenticated like any other; it comes before attn_q, at the same source offset");
  }
  {
    TensorOptions o{aes};
    o.plain = {"layers.0.norm.bias", "scale", "empty"};
    TensorModel m = NewTensorModel("case/payload_tensors_plain_tensor_flipped", st_small, o);
    Bytes body = m.whole;
    body[m.written[st_small.Entry("layers.0.norm.bias")].offset + 3] ^= 0x01;
    payload("payload_tensors_plain_tensor_flipped", body, ReleasedBefore(st_small, "layers.0.norm.bias"),
            "a byte of the plain tensor layers.0.norm.bias flipped: its SHA-256 no longer matches the")
        .Comment("index; everything before it is released, none of it");
  }
  {
    TensorOptions o{aes};
    o.public_index = true;
    TensorModel m = NewTensorModel("case/payload_tensors_plain_skeleton_flipped", gguf_small, o);
    Bytes body = m.whole;
    body[m.written[0].offset + 40] ^= 0x01;
    payload("payload_tensors_plain_skeleton_flipped", body, {},
            "public index, plain skeleton: a byte of the GGUF header (in entry 0) flipped");
  }
  {
    TensorModel m = NewTensorModel("case/payload_tensors_skeleton_flipped", gguf_small, TensorOptions{aes});
    Bytes body = m.whole;
    body[m.written[0].offset + kStreamHeaderBytes + 40] ^= 0x01;
    payload("payload_tensors_skeleton_flipped", body, {}, "encrypted skeleton: a ciphertext byte flipped");
  }
  {
    TensorOptions o{aes};
    o.public_index = true;
    TensorModel m = NewTensorModel("case/payload_tensors_public_index_flipped", gguf_small, o);
    Bytes body = m.whole;
    body[m.index_offset + 20] ^= 0x01;
    payload("payload_tensors_public_index_flipped", body, {},
            "public index: a byte of the index plaintext flipped, its MAC no longer verifies");
  }
  {
    TensorModel m = NewTensorModel("case/payload_tensors_index_flipped", gguf_small, TensorOptions{aes});
    Bytes body = m.whole;
    body[m.index_offset + kStreamHeaderBytes + 20] ^= 0x01;
    payload("payload_tensors_index_flipped", body, {}, "encrypted index: a ciphertext byte flipped");
  }
  {
    TensorModel m = NewTensorModel("case/payload_tensors_padding_flipped", gguf_small, TensorOptions{aes});
    Bytes body = m.whole;
    body[m.written[norm].offset - 1] ^= 0x01;
    payload("payload_tensors_padding_flipped", body, {},
            "the zero byte just before attn_norm's entry (padding after the skeleton) is 0x01");
  }
  {
    TensorModel m = NewTensorModel("case/payload_tensors_truncated", gguf_small, TensorOptions{aes});
    payload("payload_tensors_truncated", Prefix(m.whole, m.whole.size() - 1), {},
            "the last byte of the file (of the index's final tag) is missing");
  }
  {
    TensorModel m = NewTensorModel("case/payload_tensors_trailing_byte", gguf_small, TensorOptions{aes});
    Bytes body = m.whole;
    body.push_back(0);
    payload("payload_tensors_trailing_byte", body, {}, "one 0x00 byte after the index");
  }
  {
    TensorOptions o{aes};
    o.sign = true;
    TensorModel m = NewTensorModel("case/payload_tensors_signature_flipped", st_small, o);
    Bytes body = m.whole;
    body.back() ^= 0x01;
    Signer(payload("payload_tensors_signature_flipped", body, {},
                   "signed: the last byte of the Ed25519 signature in the trailer flipped"),
           m);
  }
  {
    TensorOptions o{aes};
    o.sign = true;
    TensorModel m = NewTensorModel("case/payload_tensors_signed_tensor_flipped", st_small, o);
    Bytes body = m.whole;
    body[m.written[st_small.Entry("layers.0.attn.k.weight")].offset + 200] ^= 0x01;
    Signer(payload("payload_tensors_signed_tensor_flipped", body, ReleasedBefore(st_small, "layers.0.attn.k.weight"),
                   "signed: a byte of layers.0.attn.k.weight flipped; the trailer itself still verifies,"),
           m)
        .Comment("the tensor does not (and the signer's body digest no longer matches)");
  }
  {
    TensorOptions o{aes};
    o.sign = true;
    TensorModel m = NewTensorModel("case/payload_tensors_signature_truncated", st_small, o);
    Signer(payload("payload_tensors_signature_truncated", Prefix(m.whole, m.trailer_offset), {},
                   "signed (the extension says so) but the 133-byte trailer is missing"),
           m);
  }
}

// ---------------------------------------------------------------------------------------
// Output

Bytes Serialize(const Case& c) {
  std::string text = "expect: " + c.expect + "\n";
  for (const auto& [k, v] : c.lines) text += k + ": " + v + "\n";
  if (c.released) text += "payload: " + HexEncode(Sha256(*c.released)) + "\n";
  for (const auto& comment : c.comments) text += "comment: " + comment + "\n";
  text += "\n";
  return Cat({AsBytes(text), c.body});
}

void CheckCases() {
  static const std::set<std::string> kExpect = {"success",          "header failure",   "index failure", "no match",
                                                "header mac failure", "payload failure", "context mismatch"};
  std::set<std::string> names;
  for (const Case& c : g_cases) {
    if (!names.insert(c.name).second) Die("duplicate case " + c.name);
    if (!kExpect.count(c.expect)) Die(c.name + ": bad expect");
    const bool needs_payload = c.expect == "success" || c.expect == "payload failure";
    if (needs_payload != c.released.has_value()) Die(c.name + ": payload line mismatch");
    if (c.body.size() >= 200 * 1024) Die(c.name + ": over 200 KiB; keep the kit small");
    for (char ch : c.name) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_') Die(c.name + ": bad name");
    }
  }
}

void GenerateAll() {
  KeyDir keys;
  g_keys = &keys;
  SuccessCases();
  HeaderCases();
  HeaderMacCases();
  NoMatchCases();
  ContextCases();
  PayloadCases();
  TensorCases();
  g_keys = nullptr;
  CheckCases();
}

int WriteKit(const std::string& dir, bool clean) {
  namespace fs = std::filesystem;
  // Everything is generated (and the two writers compared) before DIR is touched.
  GenerateAll();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) Die("cannot create " + dir + ": " + ec.message());
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!clean) Die(dir + " is not empty (pass --clean to replace its files)");
    if (!e.is_regular_file()) Die(dir + " holds something other than files: " + e.path().string());
  }
  for (const auto& e : fs::directory_iterator(dir)) fs::remove(e.path());
  for (const Case& c : g_cases) {
    const Bytes bytes = Serialize(c);
    std::ofstream out(dir + "/" + c.name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) Die("cannot write " + dir + "/" + c.name);
  }
  std::printf("gen-vectors: wrote %zu cases to %s\n", g_cases.size(), dir.c_str());
  return 0;
}

// FORMAT.md §7: the worked example, as Markdown.
std::string HexDump(ByteSpan b) {
  std::string out;
  char line[128];
  std::string previous;
  bool starred = false;
  for (size_t at = 0; at < b.size(); at += 16) {
    const size_t n = std::min<size_t>(16, b.size() - at);
    std::string hex, ascii;
    for (size_t i = 0; i < 16; ++i) {
      if (i == 8) hex += ' ';
      if (i < n) {
        std::snprintf(line, sizeof line, "%02x ", b[at + i]);
        hex += line;
        const uint8_t c = b[at + i];
        ascii += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '.';
      } else {
        hex += "   ";
      }
    }
    const std::string key = hex;
    if (n == 16 && key == previous && at + 16 < b.size()) {
      if (!starred) out += "*\n";
      starred = true;
      continue;
    }
    starred = false;
    previous = key;
    std::snprintf(line, sizeof line, "%08zx  %s |%s|\n", at, hex.c_str(), ascii.c_str());
    out += line;
  }
  std::snprintf(line, sizeof line, "%08zx\n", b.size());
  return out + line;
}

int Explain() {
  std::vector<std::pair<std::string, std::string>> trace;
  g_trace = &trace;
  ModelFile f = NewModelFile("case/success_worked_example", Suite::kAes256Gcm,
                             {{"model", "tiny-example"}, {"version", "1"}}, {kA}, Str("hmod worked example\n"));
  g_trace = nullptr;
  const Bytes whole = f.Whole();
  std::printf("Plaintext (%zu bytes): \"hmod worked example\\n\"\n\n", f.plaintext.size());
  std::printf("Intermediate values (hex):\n\n```\n");
  std::set<std::string> seen;
  for (const auto& [name, hex] : trace) {
    if (!seen.insert(name).second) continue;
    std::printf("%s:\n", name.c_str());
    for (size_t i = 0; i < hex.size(); i += 64) std::printf("  %s\n", hex.substr(i, 64).c_str());
  }
  std::printf("```\n\nFields:\n\n| offset | length | field | bytes |\n|---|---|---|---|\n");
  auto row = [&](size_t off, size_t len, const std::string& name) {
    std::string hex = len > 24 && name == "padding" ? "00 × " + std::to_string(len)
                                                    : HexEncode(ByteSpan(whole).subspan(off, len));
    if (hex.size() > 72) hex = hex.substr(0, 32) + "…" + hex.substr(hex.size() - 16);
    std::printf("| 0x%04zx | %zu | %s | `%s` |\n", off, len, name.c_str(), hex.c_str());
  };
  for (const Field& fl : f.fields) row(fl.offset, fl.length, fl.name);
  const size_t p = f.region.size();
  row(p, kSaltBytes, "payload: Cobblestone salt");
  row(p + kSaltBytes, kCommitmentBytes, "payload: commitment");
  row(p + kStreamHeaderBytes, f.plaintext.size(), "payload: chunk 0 (final) ciphertext");
  row(p + kStreamHeaderBytes + f.plaintext.size(), kAeadTagBytes, "payload: chunk 0 tag");
  std::printf("\nFile (%zu bytes, `hexdump -C` style; `*` repeats the line above):\n\n```\n%s```\n",
              whole.size(), HexDump(whole).c_str());
  return 0;
}

}  // namespace
}  // namespace hmod

int main(int argc, char** argv) {
  if (!hmod::InitCrypto().ok()) hmod::Die("libsodium failed to initialise");
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && args[0] == "--explain") return hmod::Explain();
  if (args.size() == 1 && args[0].rfind("--", 0) != 0) return hmod::WriteKit(args[0], false);
  if (args.size() == 2 && args[0] == "--clean") return hmod::WriteKit(args[1], true);
  std::fprintf(stderr,
               "usage: gen-vectors [--clean] DIR   write the .hmod conformance kit into DIR\n"
               "       gen-vectors --explain       print the worked example of FORMAT.md section 7\n");
  return 2;
}
