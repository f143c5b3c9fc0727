// Device licenses (FORMAT.md §5.7): `hmodctl license fingerprint|issue` and decrypting with
// --kek license:FILE, $HMOD_LICENSE_KEY and $HMOD_DEVICE_FINGERPRINT.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "hmod/envelope.h"
#include "keys/wrap_aad.h"
#include "support/test_util.h"

namespace hmod::testing {
namespace {

using nlohmann::json;

std::string AsString(const Bytes& b) { return std::string(b.begin(), b.end()); }

// The text after `prefix` on the line that starts with it.
std::string LineValue(const std::string& path, const std::string& prefix) {
  const std::string text = "\n" + AsString(ReadFile(path));
  const auto at = text.find("\n" + prefix);
  EXPECT_NE(at, std::string::npos) << path << ":\n" << text;
  if (at == std::string::npos) return {};
  const auto start = at + 1 + prefix.size();
  return text.substr(start, text.find('\n', start) - start);
}

constexpr const char* kDeviceA = "device-A-4f1c";
constexpr const char* kDeviceB = "device-B-9e02";

class License : public ::testing::Test {
 protected:
  void SetUp() override {
    vendor_ = MakeKeyFile(dir_, "vendor.key");
    plain_a_ = TestData(70000, 7);
    plain_b_ = TestData(3000, 8);
    WriteFile(dir_ / "a", plain_a_);
    WriteFile(dir_ / "b", plain_b_);
    for (const std::string m : {"a", "b"}) {
      CliResult r = RunCli({"encrypt", "-q", "--kek", "file:" + vendor_, "-o", dir_ / (m + ".hmod"), dir_ / m});
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
  }
  // `license issue` for model a.hmod (or `model`) and `device`, writing dir_/NAME (+ NAME.key).
  CliResult Issue(const std::string& name, const std::string& device, const std::string& kek,
                  const std::string& model = "a.hmod", const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"license", "issue", "--json", "--kek", kek, "--fingerprint", device,
                                     "-o", dir_ / name};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(dir_ / model);
    return RunCli(args);
  }
  CliResult Decrypt(const std::string& license, const std::string& key_hex, const std::string& device,
                    const std::string& model, const std::string& out) {
    return RunCli({"decrypt", "--json", "--kek", "license:" + dir_ / license, "-o", dir_ / out, dir_ / model}, {},
                  {{"HMOD_LICENSE_KEY", key_hex}, {"HMOD_DEVICE_FINGERPRINT", device}});
  }
  std::string KeyHex(const std::string& key_file) { return LineValue(key_file, "hmod-key-v1 "); }

  TempDir dir_;
  std::string vendor_;
  Bytes plain_a_, plain_b_;
};

TEST_F(License, FingerprintHonoursTheEnvironment) {
  CliResult r = RunCli({"license", "fingerprint"}, {}, {{"HMOD_DEVICE_FINGERPRINT", kDeviceA}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, std::string(kDeviceA) + "\n");
  CliResult j = RunCli({"license", "fingerprint", "--json"}, {}, {{"HMOD_DEVICE_FINGERPRINT", kDeviceB}});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_EQ(json::parse(j.out)["fingerprint"], kDeviceB);

  // Without it: hex SHA-256("hmod/v1 device" ‖ 0x00 ‖ /etc/machine-id).
  if (std::getenv("HMOD_DEVICE_FINGERPRINT") != nullptr) GTEST_SKIP() << "HMOD_DEVICE_FINGERPRINT is set";
  CliResult m = RunCli({"license", "fingerprint"});
  if (::access("/etc/machine-id", R_OK) != 0) {
    EXPECT_NE(m.exit_code, 0) << "no /etc/machine-id, yet a fingerprint: " << m.out;
    return;
  }
  ASSERT_EQ(m.exit_code, 0) << m.err;
  Bytes input = {'h', 'm', 'o', 'd', '/', 'v', '1', ' ', 'd', 'e', 'v', 'i', 'c', 'e', 0};
  const Bytes id = ReadFile("/etc/machine-id");
  input.insert(input.end(), id.begin(), id.end());
  EXPECT_EQ(m.out, HexEncode(Sha256(input)) + "\n");
}

TEST_F(License, IssueThenDecryptOnThatDevice) {
  CliResult issued = Issue("alice.lic", kDeviceA, "file:" + vendor_);
  ASSERT_EQ(issued.exit_code, 0) << issued.err;
  auto doc = json::parse(issued.out);
  EXPECT_EQ(doc["license"], dir_ / "alice.lic");
  EXPECT_EQ(doc["license_key_file"], dir_ / "alice.lic.key");
  EXPECT_EQ(doc["device"], kDeviceA);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "alice.lic.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string key = KeyHex(dir_ / "alice.lic.key");
  ASSERT_EQ(key.size(), 64u);
  // The license itself carries no key.
  EXPECT_EQ(AsString(ReadFile(dir_ / "alice.lic")).find(key), std::string::npos);

  CliResult d = Decrypt("alice.lic", key, kDeviceA, "a.hmod", "out");
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_TRUE(ReadFile(dir_ / "out") == plain_a_);
  EXPECT_EQ(json::parse(d.out)["opened_by"].get<std::string>().rfind("license:", 0), 0u) << d.out;
}

TEST_F(License, BlobIsWhatTheSpecSays) {
  ASSERT_EQ(Issue("alice.lic", kDeviceA, "file:" + vendor_).exit_code, 0);
  auto blob = HexDecode(LineValue(dir_ / "alice.lic", "hmod-license-v1 "));
  ASSERT_TRUE(blob.ok());
  ASSERT_EQ(blob->size(), 108u);
  const Bytes file = ReadFile(dir_ / "a.hmod");
  auto parsed = ParseHeader(file);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const auto& file_id = parsed->header.file_id;
  ASSERT_TRUE(std::equal(file_id.begin(), file_id.end(), blob->begin())) << "blob must start with the file id";
  ByteSpan b(*blob);

  // device-key = HKDF-SHA-256(file-id, license-key ‖ SHA-256(fingerprint), "hmod/v1 license", 32)
  auto license_key = HexDecode(KeyHex(dir_ / "alice.lic.key"));
  ASSERT_TRUE(license_key.ok());
  Bytes ikm = *license_key;
  const auto fp = Sha256(AsBytes(kDeviceA));
  ikm.insert(ikm.end(), fp.begin(), fp.end());
  auto device_key = Hkdf(HashAlg::kSha256, file_id, ikm, AsBytes("hmod/v1 license"), 32);
  ASSERT_TRUE(device_key.ok());
  auto aead = Aead::Create(Suite::kAes256Gcm, device_key->secret());
  ASSERT_TRUE(aead.ok());
  SecretBytes dk(32);
  ASSERT_TRUE(aead->Open(b.subspan(48, 12), WrapAad("hmod/v1 license wrap", file_id, b.subspan(32, 16)),
                         b.subspan(60), dk.secret()).ok());
  // ... and that is the model's data key: it verifies the header MAC.
  auto keys = DeriveFileKeys(dk, file_id);
  ASSERT_TRUE(keys.ok());
  EXPECT_TRUE(ConstantTimeEquals(HmacSha256(keys->mac_key.secret(), parsed->authenticated()), parsed->mac));
}

TEST_F(License, AnotherDeviceOrAWrongLicenseKeyFails) {
  ASSERT_EQ(Issue("alice.lic", kDeviceA, "file:" + vendor_).exit_code, 0);
  const std::string key = KeyHex(dir_ / "alice.lic.key");

  CliResult other = Decrypt("alice.lic", key, kDeviceB, "a.hmod", "o1");
  EXPECT_EQ(other.exit_code, 6) << other.err;
  EXPECT_NE(other.err.find("device"), std::string::npos) << other.err;
  EXPECT_FALSE(Exists(dir_ / "o1"));

  std::string wrong = key;
  wrong[0] = wrong[0] == '0' ? '1' : '0';
  CliResult bad_key = Decrypt("alice.lic", wrong, kDeviceA, "a.hmod", "o2");
  EXPECT_EQ(bad_key.exit_code, 6) << bad_key.err;
  EXPECT_FALSE(Exists(dir_ / "o2"));

  // No license key at all, or not 64 hex digits: a usage error, nothing written.
  CliResult none = RunCli({"decrypt", "--kek", "license:" + dir_ / "alice.lic", "-o", dir_ / "o3", dir_ / "a.hmod"},
                          {}, {{"HMOD_DEVICE_FINGERPRINT", kDeviceA}});
  if (std::getenv("HMOD_LICENSE_KEY") == nullptr) {
    EXPECT_EQ(none.exit_code, 2) << none.err;
    EXPECT_NE(none.err.find("HMOD_LICENSE_KEY"), std::string::npos) << none.err;
  }
  EXPECT_FALSE(Exists(dir_ / "o3"));
  CliResult short_key = Decrypt("alice.lic", key.substr(2), kDeviceA, "a.hmod", "o4");
  EXPECT_EQ(short_key.exit_code, 2) << short_key.err;
  EXPECT_FALSE(Exists(dir_ / "o4"));
}

TEST_F(License, ALicenseForOneModelDoesNotOpenAnother) {
  ASSERT_EQ(Issue("alice.lic", kDeviceA, "file:" + vendor_).exit_code, 0);
  CliResult d = Decrypt("alice.lic", KeyHex(dir_ / "alice.lic.key"), kDeviceA, "b.hmod", "o");
  EXPECT_EQ(d.exit_code, 5) << d.err;
  EXPECT_FALSE(Exists(dir_ / "o"));
}

TEST_F(License, OneLicenseKeyServesSeveralDevices) {
  ASSERT_EQ(Issue("alice.lic", kDeviceA, "file:" + vendor_).exit_code, 0);
  const std::string key_file = dir_ / "alice.lic.key";
  CliResult second = Issue("alice-laptop.lic", kDeviceB, "file:" + vendor_, "a.hmod",
                           {"--license-key-file", key_file});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_FALSE(Exists(dir_ / "alice-laptop.lic.key")) << "an existing license key must be reused";
  const std::string key = KeyHex(key_file);
  CliResult d = Decrypt("alice-laptop.lic", key, kDeviceB, "a.hmod", "o");
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_TRUE(ReadFile(dir_ / "o") == plain_a_);
  // Each license stays bound to its own device.
  EXPECT_EQ(Decrypt("alice-laptop.lic", key, kDeviceA, "a.hmod", "o2").exit_code, 6);
}

TEST_F(License, IssueWithAKekThatCannotOpenTheModelWritesNothing) {
  const std::string other = MakeKeyFile(dir_, "other.key");
  auto before = dir_.List();
  std::sort(before.begin(), before.end());
  CliResult r = Issue("mallory.lic", kDeviceA, "file:" + other);
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_FALSE(Exists(dir_ / "mallory.lic"));
  EXPECT_FALSE(Exists(dir_ / "mallory.lic.key"));
  auto after = dir_.List();
  std::sort(after.begin(), after.end());
  EXPECT_EQ(after, before);
}

TEST_F(License, CannotEncrypt) {
  ASSERT_EQ(Issue("alice.lic", kDeviceA, "file:" + vendor_).exit_code, 0);
  CliResult r = RunCli({"encrypt", "--kek", "license:" + dir_ / "alice.lic", "-o", dir_ / "x.hmod", dir_ / "a"}, {},
                       {{"HMOD_LICENSE_KEY", KeyHex(dir_ / "alice.lic.key")}, {"HMOD_DEVICE_FINGERPRINT", kDeviceA}});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("cannot encrypt"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("license issue"), std::string::npos) << r.err;
  EXPECT_FALSE(Exists(dir_ / "x.hmod"));
}

}  // namespace
}  // namespace hmod::testing
