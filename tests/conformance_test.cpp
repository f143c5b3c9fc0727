// The .hmod conformance kit (FORMAT.md §8): every file in tests/vectors/hmod/ is one case,
// written by tools/gen-vectors. Each is read strictly (an unknown or missing header line
// fails the case) and opened through the public API exactly as the CLI would: providers
// from their URIs, DecryptContainer over a MemorySource (a positional source, so per-tensor
// files, layout 2, restore through TensorFile), and the outcome compared with `expect:`.
// Signed cases are also checked with the publisher's key (VerifyFileSignature).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "hmod/container.h"
#include "hmod/key_file.h"
#include "hmod/key_provider.h"
#include "hmod/signature.h"

namespace hmod {
namespace {

const std::string kKitDir = HMOD_VECTORS_DIR "/hmod";

// The number of cases tools/gen-vectors writes. A kit with fewer files fails.
constexpr size_t kGeneratedCases = 160;

const std::set<std::string> kExpect = {"success",          "header failure",   "index failure", "no match",
                                       "header mac failure", "payload failure", "context mismatch"};

struct VectorCase {
  std::string expect;
  std::vector<std::pair<std::string, std::string>> keys;  // ("file key" | "passphrase", value), in order
  std::vector<ContextRequirement> required;
  std::optional<std::string> payload_sha256;
  std::optional<Ed25519PublicKey> signer;  // the publisher's key, for signed per-tensor files
  Bytes body;
};

std::vector<std::string> ListCases() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(kKitDir, ec)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

Bytes ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), {});
}

// Strict: every header line is "key: value" with a known key; `expect` exactly once; the
// header ends with an empty line; `payload` is present exactly when bytes may be released.
Result<VectorCase> ParseCase(const Bytes& file) {
  VectorCase c;
  bool have_expect = false;
  size_t pos = 0;
  while (true) {
    const auto nl = std::find(file.begin() + static_cast<long>(pos), file.end(), '\n');
    if (nl == file.end()) return MakeError(ErrorCode::kFormat, "header does not end with an empty line");
    const std::string line(file.begin() + static_cast<long>(pos), nl);
    pos = static_cast<size_t>(nl - file.begin()) + 1;
    if (line.empty()) break;
    const auto colon = line.find(": ");
    if (colon == std::string::npos) return MakeError(ErrorCode::kFormat, "not a 'key: value' line: " + line);
    const std::string key = line.substr(0, colon), value = line.substr(colon + 2);
    if (key == "expect") {
      if (have_expect || !kExpect.count(value)) return MakeError(ErrorCode::kFormat, "bad expect line: " + line);
      c.expect = value;
      have_expect = true;
    } else if (key == "file key" || key == "passphrase") {
      c.keys.emplace_back(key, value);
    } else if (key == "context") {
      auto r = ParseContextRequirement(value);
      if (!r.ok()) return r.error();
      c.required.push_back(std::move(*r));
    } else if (key == "payload") {
      if (c.payload_sha256 || value.size() != 64) return MakeError(ErrorCode::kFormat, "bad payload line");
      c.payload_sha256 = value;
    } else if (key == "signer") {
      auto pk = HexDecode(value);
      if (c.signer || !pk.ok() || pk->size() != 32) return MakeError(ErrorCode::kFormat, "bad signer line");
      c.signer.emplace();
      std::copy(pk->begin(), pk->end(), c.signer->begin());
    } else if (key != "comment") {
      return MakeError(ErrorCode::kFormat, "unknown header key '" + key + "'");
    }
  }
  if (!have_expect) return MakeError(ErrorCode::kFormat, "no expect line");
  const bool releases = c.expect == "success" || c.expect == "payload failure";
  if (releases != c.payload_sha256.has_value()) {
    return MakeError(ErrorCode::kFormat, "a payload line belongs to success and payload failure cases only");
  }
  c.body.assign(file.begin() + static_cast<long>(pos), file.end());
  return c;
}

// A private directory for the cases' key files, removed afterwards.
class KeyDir {
 public:
  KeyDir() {
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base && *base ? base : "/tmp") + "/hmod-conformance-XXXXXX";
    if (::mkdtemp(templ.data()) != nullptr) path_ = templ;
  }
  ~KeyDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Providers in the order of the case's lines, built from URIs as the CLI builds them.
Result<ProviderList> MakeProviders(const VectorCase& c, const KeyDir& dir) {
  ProviderList providers;
  int n = 0;
  for (const auto& [kind, value] : c.keys) {
    if (kind == "file key") {
      HMOD_ASSIGN_OR_RETURN(Bytes kek, HexDecode(value));
      const std::string path = dir.path() + "/k" + std::to_string(n++) + ".key";
      HMOD_TRY(WriteNewPrivateFile(path, AsBytes(EncodeKeyFile(SecretBytes::CopyFrom(kek)))));
      HMOD_ASSIGN_OR_RETURN(auto p, ProviderFromUri("file:" + path));
      providers.push_back(std::move(p));
    } else {
      ::setenv("HMOD_PASSPHRASE", value.c_str(), 1);
      auto p = ProviderFromUri("pass:");
      ::unsetenv("HMOD_PASSPHRASE");
      if (!p.ok()) return p.error();
      providers.push_back(std::move(*p));
    }
  }
  return providers;
}

bool InClass(const std::string& expect, ErrorCode code) {
  if (expect == "header failure" || expect == "index failure") {
    return code == ErrorCode::kFormat || code == ErrorCode::kUnsupported || code == ErrorCode::kLimit;
  }
  if (expect == "no match") return code == ErrorCode::kNoMatchingKey;
  if (expect == "header mac failure" || expect == "payload failure") return code == ErrorCode::kAuthFailed;
  if (expect == "context mismatch") return code == ErrorCode::kContextMismatch;
  return false;
}

class Vector : public ::testing::TestWithParam<std::string> {};

TEST_P(Vector, Decrypt) {
  ASSERT_TRUE(InitCrypto().ok());
  const std::string name = GetParam();
  auto parsed = ParseCase(ReadAll(kKitDir + "/" + name));
  ASSERT_TRUE(parsed.ok()) << name << ": " << parsed.error().message;
  const VectorCase& c = *parsed;
  KeyDir dir;
  ASSERT_FALSE(dir.path().empty());
  auto providers = MakeProviders(c, dir);
  ASSERT_TRUE(providers.ok()) << providers.error().message;

  // One worker and several: what is released must not depend on the pipeline's batching.
  for (unsigned threads : {1u, 4u}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    MemorySource in(c.body);
    MemorySink out;
    DecryptOptions options;
    options.required_context = c.required;
    options.stream.threads = threads;
    auto r = DecryptContainer(in, out, *providers, options);

    if (c.expect == "success") {
      ASSERT_TRUE(r.ok()) << ErrorCodeName(r.error().code) << ": " << r.error().message;
      EXPECT_EQ(r->plaintext_bytes, out.bytes.size());
    } else {
      ASSERT_FALSE(r.ok()) << "expected " << c.expect;
      EXPECT_TRUE(InClass(c.expect, r.error().code))
          << "expected " << c.expect << ", got " << ErrorCodeName(r.error().code) << ": " << r.error().message;
    }
    if (c.payload_sha256) {
      // success: the whole plaintext; payload failure: exactly the whole chunks that
      // authenticate before the first bad one (FORMAT.md §4.5).
      EXPECT_EQ(HexEncode(Sha256(out.bytes)), *c.payload_sha256) << out.bytes.size() << " bytes released";
    } else {
      EXPECT_TRUE(out.bytes.empty()) << out.bytes.size() << " bytes released before the failure";
    }
  }

  // The class says where the failure lies. A header failure breaks a rule that needs no key
  // (FORMAT.md §2.6 rules 1-19); an index failure is a per-tensor file whose header parses
  // and authenticates, and whose authenticated index does not parse (§6.3).
  auto header = ParseHeader(c.body);
  if (c.expect == "header failure") {
    EXPECT_FALSE(header.ok()) << "a header failure must be found without a key";
  } else if (c.expect == "index failure") {
    ASSERT_TRUE(header.ok()) << header.error().message;
    EXPECT_EQ(header->header.layout, Layout::kTensors);
    auto opened = OpenHeader(*header, *providers);
    EXPECT_TRUE(opened.ok()) << opened.error().message;
  }

  // Provenance (§6.5): the publisher's key verifies a valid signed file, and nothing else.
  if (c.signer) {
    Status verified = header.ok() ? VerifyFileSignature(MemorySource(c.body), *header, *c.signer)
                                  : Status(header.error());
    if (c.expect == "success") {
      EXPECT_TRUE(verified.ok()) << verified.error().message;
    } else {
      EXPECT_FALSE(verified.ok()) << "a signed file that fails to decrypt passed VerifyFileSignature";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Conformance, Vector, ::testing::ValuesIn(ListCases()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// Silent skips fail: the kit must hold every generated case, each readable, and every
// expected outcome must be represented.
TEST(Conformance, KitIsComplete) {
  const auto names = ListCases();
  EXPECT_GE(names.size(), kGeneratedCases) << "in " << kKitDir;
  std::map<std::string, size_t> by_expect;
  for (const auto& name : names) {
    auto c = ParseCase(ReadAll(kKitDir + "/" + name));
    ASSERT_TRUE(c.ok()) << name << ": " << c.error().message;
    ++by_expect[c->expect];
  }
  for (const auto& e : kExpect) EXPECT_GT(by_expect[e], 0u) << "no '" << e << "' case";
}

}  // namespace
}  // namespace hmod
