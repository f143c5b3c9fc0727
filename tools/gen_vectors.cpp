// tools/gen-vectors: regenerates the .hmod conformance kit tests/vectors/hmod/ (FORMAT.md §8)
// from fixed seeds, and prints the worked example of FORMAT.md §7.
//
//   gen-vectors [--clean] DIR   write one file per case into DIR (--clean: delete DIR's files first)
//   gen-vectors --explain       print the worked example, field by field, with every intermediate
//
// Two writers produce the kit. Valid files come from the library's own encrypt path
// (EncryptToContainer) with its randomness replaced by a seeded generator
// (crypto/random_for_testing.h); a second, independent model of FORMAT.md in this file
// rebuilds each of them from the same seed, and the two must agree byte for byte or nothing
// is written. Malformed files come from the model alone: it re-MACs and re-encrypts wherever
// a case needs every check but the intended one to pass, so a reader that skipped that one
// check would open the file.
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
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "crypto/random_for_testing.h"
#include "hmod/container.h"
#include "hmod/key_file.h"
#include "hmod/key_provider.h"

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
  for (size_t i = 0; i < width; ++i) out[width - 1 - i] = static_cast<uint8_t>(v >> (8 * i));
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
// randomness (file: nonce 12; pass: salt 16, nonce 12), Cobblestone salt (24).
ModelFile NewModelFile(const std::string& seed, Suite suite, const EncryptionContext& context,
                       const std::vector<Recipient>& recipients, Bytes plaintext) {
  Drbg d(seed);
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
  f.salt = d.Take(kSaltBytes);
  f.keys = DeriveModel(f.data_key, f.h.file_id);
  f.payload_suite = suite;
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

Bytes LibraryEncrypt(const std::string& seed, Suite suite, const EncryptionContext& context,
                     const std::vector<Recipient>& recipients, ByteSpan plaintext) {
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
  static const std::set<std::string> kExpect = {"success",           "header failure",  "no match",
                                                "header mac failure", "payload failure", "context mismatch"};
  std::set<std::string> names;
  for (const Case& c : g_cases) {
    if (!names.insert(c.name).second) Die("duplicate case " + c.name);
    if (!kExpect.count(c.expect)) Die(c.name + ": bad expect");
    const bool needs_payload = c.expect == "success" || c.expect == "payload failure";
    if (needs_payload != c.released.has_value()) Die(c.name + ": payload line mismatch");
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
  g_keys = nullptr;
  CheckCases();
}

int WriteKit(const std::string& dir, bool clean) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) Die("cannot create " + dir + ": " + ec.message());
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!clean) Die(dir + " is not empty (pass --clean to replace its files)");
    if (!e.is_regular_file()) Die(dir + " holds something other than files: " + e.path().string());
    fs::remove(e.path());
  }
  GenerateAll();
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
