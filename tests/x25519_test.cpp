// x25519 public-key recipients (FORMAT.md §5.6) through hmodctl and the provider itself, and
// the decryption order (--decryption-order, $HMOD_DECRYPTION_ORDER) on a file wrapped to a
// key file and an x25519 recipient.
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "keys/wrap_aad.h"
#include "keys/x25519_provider.h"
#include "support/test_util.h"

namespace hmod::testing {
namespace {

using nlohmann::json;

std::string AsString(const Bytes& b) { return std::string(b.begin(), b.end()); }

unsigned ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

// `hmodctl keygen --x25519 --json -o PATH`; returns the recipient string "x25519:<hex>".
std::string MakeIdentity(const TempDir& dir, const std::string& name) {
  CliResult r = RunCli({"keygen", "--x25519", "--json", "-o", dir / name});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return {};
  return json::parse(r.out)["recipient"].get<std::string>();
}

// The 64 hex digits of the secret key in an identity file (§5.6: its one non-comment line).
std::string IdentitySecretHex(const std::string& path) {
  const std::string text = AsString(ReadFile(path));
  const std::string prefix = "hmod-x25519-identity-v1 ";
  const auto at = text.find("\n" + prefix);
  EXPECT_NE(at, std::string::npos) << text;
  return text.substr(at + 1 + prefix.size(), 64);
}

class X25519Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    alice_ = MakeIdentity(dir_, "alice.id");
    bob_ = MakeIdentity(dir_, "bob.id");
    ASSERT_FALSE(alice_.empty());
    ASSERT_FALSE(bob_.empty());
    plain_ = TestData(50000, 25519);
    WriteFile(dir_ / "p", plain_);
  }
  // Encrypts `plain_` to the given --kek URIs into dir_/NAME.
  void Encrypt(const std::vector<std::string>& keks, const std::string& name) {
    std::vector<std::string> args = {"encrypt", "-q"};
    for (const auto& k : keks) {
      args.push_back("--kek");
      args.push_back(k);
    }
    args.insert(args.end(), {"-o", dir_ / name, dir_ / "p"});
    CliResult r = RunCli(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  TempDir dir_;
  std::string alice_, bob_;
  Bytes plain_;
};

TEST_F(X25519Cli, KeygenWritesA0600IdentityAndPrintsItsRecipient) {
  EXPECT_EQ(ModeOf(dir_ / "alice.id"), 0600u);
  ASSERT_EQ(alice_.size(), 7u + 64u);
  EXPECT_EQ(alice_.substr(0, 7), "x25519:");
  EXPECT_EQ(alice_.find_first_not_of("0123456789abcdef", 7), std::string::npos) << alice_;
  EXPECT_NE(alice_, bob_);

  // The recipient is X25519(secret, basepoint) of the identity's secret key.
  auto secret = HexDecode(IdentitySecretHex(dir_ / "alice.id"));
  ASSERT_TRUE(secret.ok());
  ASSERT_EQ(secret->size(), 32u);
  std::array<uint8_t, 32> pub{};
  crypto_scalarmult_base(pub.data(), secret->data());
  EXPECT_EQ("x25519:" + HexEncode(pub), alice_);
  // ... and the secret is not printed.
  CliResult plain = RunCli({"keygen", "--x25519", "-o", dir_ / "carol.id"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_NE(plain.out.find("recipient: x25519:"), std::string::npos) << plain.out;
  EXPECT_EQ(plain.out.find(IdentitySecretHex(dir_ / "carol.id")), std::string::npos);

  // Never overwritten.
  const Bytes before = ReadFile(dir_ / "alice.id");
  CliResult again = RunCli({"keygen", "--x25519", "-o", dir_ / "alice.id"});
  EXPECT_EQ(again.exit_code, 3);
  EXPECT_TRUE(ReadFile(dir_ / "alice.id") == before);
}

TEST_F(X25519Cli, EncryptToRecipientDecryptWithIdentity) {
  Encrypt({alice_}, "a.hmod");
  CliResult i = RunCli({"inspect", "--json", dir_ / "a.hmod"});
  ASSERT_EQ(i.exit_code, 0) << i.err;
  auto doc = json::parse(i.out);
  ASSERT_EQ(doc["wrapped_keys"].size(), 1u);
  EXPECT_EQ(doc["wrapped_keys"][0]["provider"], "x25519");
  EXPECT_EQ(doc["wrapped_keys"][0]["key_id"], alice_.substr(7));
  EXPECT_EQ(doc["wrapped_keys"][0]["wrapped_bytes"], 80);

  CliResult d = RunCli({"decrypt", "--json", "--kek", "x25519:" + dir_ / "alice.id", "-o", dir_ / "out",
                        dir_ / "a.hmod"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_TRUE(ReadFile(dir_ / "out") == plain_);
  EXPECT_EQ(json::parse(d.out)["opened_by"].get<std::string>().rfind("x25519:", 0), 0u) << d.out;
}

TEST_F(X25519Cli, BareRecipientOrAnotherIdentityCannotDecrypt) {
  Encrypt({alice_}, "a.hmod");
  CliResult bare = RunCli({"decrypt", "--kek", alice_, "-o", dir_ / "o1", dir_ / "a.hmod"});
  EXPECT_EQ(bare.exit_code, 5) << bare.err;
  EXPECT_FALSE(Exists(dir_ / "o1"));

  CliResult other = RunCli({"decrypt", "--kek", "x25519:" + dir_ / "bob.id", "-o", dir_ / "o2", dir_ / "a.hmod"});
  EXPECT_EQ(other.exit_code, 5) << other.err;
  EXPECT_NE(other.err.find("no key provider could open this file"), std::string::npos) << other.err;
  // The hint names who can open it: alice's recipient.
  EXPECT_NE(other.err.find(alice_.substr(7)), std::string::npos) << other.err;
  EXPECT_FALSE(Exists(dir_ / "o2"));
}

TEST_F(X25519Cli, TwoRecipientsEachOpenTheFile) {
  Encrypt({alice_, bob_}, "ab.hmod");
  for (const std::string id : {"alice.id", "bob.id"}) {
    const std::string out = dir_ / (id + ".out");
    CliResult d = RunCli({"decrypt", "-q", "--kek", "x25519:" + dir_ / id, "-o", out, dir_ / "ab.hmod"});
    ASSERT_EQ(d.exit_code, 0) << id << ": " << d.err;
    EXPECT_TRUE(ReadFile(out) == plain_) << id;
  }
}

TEST_F(X25519Cli, IdentityReadableByOthersIsRefused) {
  Encrypt({alice_}, "a.hmod");
  ASSERT_EQ(::chmod((dir_ / "alice.id").c_str(), 0640), 0);
  CliResult d = RunCli({"decrypt", "--kek", "x25519:" + dir_ / "alice.id", "-o", dir_ / "o", dir_ / "a.hmod"});
  EXPECT_EQ(d.exit_code, 8) << d.err;
  EXPECT_FALSE(Exists(dir_ / "o"));
}

TEST_F(X25519Cli, TamperedRecordDoesNotOpen) {
  Encrypt({alice_}, "a.hmod");
  const Bytes good = ReadFile(dir_ / "a.hmod");
  // The record: key id (64 hex) ‖ u16 length (80) ‖ E (32) ‖ ciphertext+tag (48).
  const std::string text = AsString(good);
  const size_t at = text.find(alice_.substr(7));
  ASSERT_NE(at, std::string::npos);
  const size_t record = at + 64 + 2;
  ASSERT_EQ(good[record - 2], 0);
  ASSERT_EQ(good[record - 1], 80);
  // One byte of the ephemeral key, of the wrapped data key, and of the tag.
  for (size_t offset : {size_t{5}, size_t{32 + 7}, size_t{80 - 1}}) {
    Bytes bad = good;
    bad[record + offset] ^= 0x01;
    WriteFile(dir_ / "bad.hmod", bad);
    CliResult d = RunCli({"decrypt", "--kek", "x25519:" + dir_ / "alice.id", "-o", dir_ / "o", dir_ / "bad.hmod"});
    EXPECT_EQ(d.exit_code, 6) << "offset " << offset << ": " << d.err;
    EXPECT_FALSE(Exists(dir_ / "o")) << "offset " << offset;
  }
  // Control: the untouched file still opens.
  CliResult ok = RunCli({"decrypt", "-q", "--kek", "x25519:" + dir_ / "alice.id", "-o", dir_ / "o", dir_ / "a.hmod"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

// ---- The provider itself (FORMAT.md §5.6) ----

class X25519Provider : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    auto r = GenerateX25519Identity(dir_ / "id");
    ASSERT_TRUE(r.ok()) << r.error().message;
    recipient_ = r->substr(7);
    auto p = MakeX25519Provider(dir_ / "id");
    ASSERT_TRUE(p.ok()) << p.error().message;
    identity_ = std::move(*p);
    RandomFill(file_id_);
    data_key_ = SecretBytes::Random(32);
  }
  WrapContext Ctx() const { return WrapContext{file_id_, nullptr}; }
  WrappedKey Record(Bytes wrapped) const { return WrappedKey{"x25519", recipient_, std::move(wrapped)}; }

  // A record with ephemeral key `eph` whose tag is valid if the shared secret is all zero,
  // as it is for any low-order `eph`: only the low-order check can reject it.
  Bytes RecordWithZeroSharedSecret(const std::array<uint8_t, 32>& eph) const {
    auto r = HexDecode(recipient_);
    EXPECT_TRUE(r.ok());
    Bytes salt(eph.begin(), eph.end());
    salt.insert(salt.end(), r->begin(), r->end());
    const std::array<uint8_t, 32> zero{};
    auto key = Hkdf(HashAlg::kSha256, salt, zero, AsBytes("hmod/v1 x25519 wrap"), 32);
    EXPECT_TRUE(key.ok());
    auto aead = Aead::Create(Suite::kAes256Gcm, key->secret());
    EXPECT_TRUE(aead.ok());
    Bytes rec(eph.begin(), eph.end());
    rec.resize(80);
    const std::array<uint8_t, 12> nonce{};
    EXPECT_TRUE(aead->Seal(nonce, WrapAad("hmod/v1 x25519 wrap", file_id_, *r), data_key_.secret(),
                           MutableByteSpan(rec).subspan(32)).ok());
    return rec;
  }

  TempDir dir_;
  std::string recipient_;
  std::unique_ptr<KeyProvider> identity_;
  std::array<uint8_t, 32> file_id_{};
  SecretBytes data_key_;
};

TEST_F(X25519Provider, RecordMatchesTheSpecAndRoundTrips) {
  auto wk = identity_->Wrap(data_key_, Ctx());
  ASSERT_TRUE(wk.ok()) << wk.error().message;
  EXPECT_EQ(wk->provider_id, "x25519");
  EXPECT_EQ(wk->key_id, recipient_);
  ASSERT_EQ(wk->wrapped.size(), 80u);

  // Open it independently, as §5.6 says: S = X25519(r, E), HKDF(E ‖ R, S), zero nonce.
  auto r = HexDecode(IdentitySecretHex(dir_ / "id"));
  auto R = HexDecode(recipient_);
  ASSERT_TRUE(r.ok() && R.ok());
  std::array<uint8_t, 32> shared{};
  ASSERT_EQ(crypto_scalarmult(shared.data(), r->data(), wk->wrapped.data()), 0);
  Bytes salt(wk->wrapped.begin(), wk->wrapped.begin() + 32);
  salt.insert(salt.end(), R->begin(), R->end());
  auto key = Hkdf(HashAlg::kSha256, salt, shared, AsBytes("hmod/v1 x25519 wrap"), 32);
  ASSERT_TRUE(key.ok());
  auto aead = Aead::Create(Suite::kAes256Gcm, key->secret());
  ASSERT_TRUE(aead.ok());
  SecretBytes dk(32);
  const std::array<uint8_t, 12> nonce{};
  ASSERT_TRUE(aead->Open(nonce, WrapAad("hmod/v1 x25519 wrap", file_id_, *R), ByteSpan(wk->wrapped).subspan(32),
                         dk.secret()).ok());
  EXPECT_TRUE(dk.Equals(data_key_));

  auto back = identity_->Unwrap(*wk, Ctx());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(back->Equals(data_key_));

  // A fresh ephemeral key per record.
  auto wk2 = identity_->Wrap(data_key_, Ctx());
  ASSERT_TRUE(wk2.ok());
  EXPECT_FALSE(std::equal(wk->wrapped.begin(), wk->wrapped.begin() + 32, wk2->wrapped.begin()));

  // Bound to the file id.
  std::array<uint8_t, 32> other_id = file_id_;
  other_id[0] ^= 1;
  auto moved = identity_->Unwrap(*wk, WrapContext{other_id, nullptr});
  ASSERT_FALSE(moved.ok());
  EXPECT_EQ(moved.error().code, ErrorCode::kAuthFailed);
}

TEST_F(X25519Provider, LowOrderEphemeralKeyIsRejected) {
  // Each record below carries a valid tag for S = 0, so only the low-order check stops it.
  std::array<uint8_t, 32> zero{}, one{}, order8{};
  one[0] = 1;
  // A point of order 8 on Curve25519 (the list libsodium and age check against).
  auto o8 = HexDecode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800");
  ASSERT_TRUE(o8.ok());
  std::copy(o8->begin(), o8->end(), order8.begin());
  for (const auto& eph : {zero, one, order8}) {
    auto r = identity_->Unwrap(Record(RecordWithZeroSharedSecret(eph)), Ctx());
    ASSERT_FALSE(r.ok()) << "accepted low-order E " << HexEncode(eph);
    EXPECT_EQ(r.error().code, ErrorCode::kAuthFailed) << HexEncode(eph);
    EXPECT_NE(r.error().message.find("low-order"), std::string::npos) << r.error().message;
  }
}

TEST_F(X25519Provider, LowOrderRecipientIsRefusedOnWrap) {
  auto p = MakeX25519Provider(std::string(64, '0'));
  ASSERT_TRUE(p.ok()) << p.error().message;
  auto wk = (*p)->Wrap(data_key_, Ctx());
  ASSERT_FALSE(wk.ok());
  EXPECT_NE(wk.error().message.find("low-order"), std::string::npos) << wk.error().message;
}

TEST_F(X25519Provider, RecordLengthIsCheckedBeforeCrypto) {
  auto wk = identity_->Wrap(data_key_, Ctx());
  ASSERT_TRUE(wk.ok());
  for (size_t n : {size_t{0}, size_t{1}, size_t{32}, size_t{79}, size_t{81}, size_t{4096}}) {
    Bytes w = wk->wrapped;
    w.resize(n, 0);  // a prefix, or the valid record with zero bytes appended
    auto r = identity_->Unwrap(Record(w), Ctx());
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.error().code, ErrorCode::kAuthFailed) << n;
    EXPECT_NE(r.error().message.find("wrong length"), std::string::npos) << n << ": " << r.error().message;
  }
}

TEST_F(X25519Provider, NotMineAndBareRecipient) {
  auto wk = identity_->Wrap(data_key_, Ctx());
  ASSERT_TRUE(wk.ok());
  // Another recipient's key id, an upper-case key id, another provider id: not mine.
  for (WrappedKey rec : {WrappedKey{"x25519", std::string(64, 'a'), wk->wrapped},
                         WrappedKey{"x25519", [&] {
                                      std::string up = recipient_;
                                      for (auto& c : up) c = static_cast<char>(std::toupper(c));
                                      return up;
                                    }(), wk->wrapped},
                         WrappedKey{"file", recipient_, wk->wrapped}}) {
    auto r = identity_->Unwrap(rec, Ctx());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kNoMatchingKey) << rec.provider_id << " " << rec.key_id;
  }
  // The bare recipient wraps (and the identity opens that), but never unwraps.
  auto bare = MakeX25519Provider(recipient_);
  ASSERT_TRUE(bare.ok()) << bare.error().message;
  EXPECT_EQ((*bare)->key_id(), recipient_);
  auto wk2 = (*bare)->Wrap(data_key_, Ctx());
  ASSERT_TRUE(wk2.ok());
  auto opened = identity_->Unwrap(*wk2, Ctx());
  ASSERT_TRUE(opened.ok());
  EXPECT_TRUE(opened->Equals(data_key_));
  auto r = (*bare)->Unwrap(*wk2, Ctx());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNoMatchingKey);
}

TEST_F(X25519Provider, MalformedIdentityFilesAreRejected) {
  const std::string hex(64, '1');
  for (const std::string& text :
       {std::string("hmod-x25519-identity-v1 ") + hex.substr(2) + "\n",             // short
        std::string("hmod-x25519-identity-v1 ") + hex + "\nhmod-x25519-identity-v1 " + hex + "\n",  // two
        std::string("hmod-key-v1 ") + hex + "\n",                                    // a key file
        std::string("# only a comment\n")}) {
    const std::string path = dir_ / "bad.id";
    ::unlink(path.c_str());
    WriteFile(path, AsBytes(text), 0600);
    auto p = MakeX25519Provider(path);
    ASSERT_FALSE(p.ok()) << text;
    EXPECT_EQ(p.error().code, ErrorCode::kKeyFile) << text;
  }
}

// ---- Decryption order ----

class DecryptionOrder : public X25519Cli {
 protected:
  void SetUp() override {
    X25519Cli::SetUp();
    key_ = MakeKeyFile(dir_);
    Encrypt({"file:" + key_, alice_}, "both.hmod");
  }
  // Decrypts both.hmod with the given --kek list and extra args; returns opened_by.
  std::string OpenedBy(const std::vector<std::string>& keks, const std::vector<std::string>& extra = {},
                       const std::map<std::string, std::string>& env = {}) {
    std::vector<std::string> args = {"decrypt", "--json", "-f"};
    for (const auto& k : keks) args.insert(args.end(), {"--kek", k});
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"-o", dir_ / "out", dir_ / "both.hmod"});
    CliResult d = RunCli(args, {}, env);
    EXPECT_EQ(d.exit_code, 0) << d.err;
    if (d.exit_code != 0) return {};
    EXPECT_TRUE(ReadFile(dir_ / "out") == plain_);
    return json::parse(d.out)["opened_by"].get<std::string>();
  }
  std::string File() const { return "file:" + key_; }
  std::string Id() const { return "x25519:" + dir_ / "alice.id"; }
  std::string key_;
};

bool StartsWith(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

TEST_F(DecryptionOrder, DefaultTriesFileFirstWhateverTheKekOrder) {
  EXPECT_TRUE(StartsWith(OpenedBy({File(), Id()}), "file:"));
  EXPECT_TRUE(StartsWith(OpenedBy({Id(), File()}), "file:"));
}

TEST_F(DecryptionOrder, FlagPutsX25519First) {
  EXPECT_TRUE(StartsWith(OpenedBy({File(), Id()}, {"--decryption-order", "x25519,file"}), "x25519:"));
  EXPECT_TRUE(StartsWith(OpenedBy({Id(), File()}, {"--decryption-order", "x25519,file"}), "x25519:"));
  // Naming only x25519 is enough: unnamed providers come after the named ones.
  EXPECT_TRUE(StartsWith(OpenedBy({File(), Id()}, {"--decryption-order", "x25519"}), "x25519:"));
  EXPECT_TRUE(StartsWith(OpenedBy({Id(), File()}, {"--decryption-order", "file,x25519"}), "file:"));
}

TEST_F(DecryptionOrder, EnvironmentVariableAndFlagPrecedence) {
  const std::map<std::string, std::string> env = {{"HMOD_DECRYPTION_ORDER", "x25519,file"}};
  EXPECT_TRUE(StartsWith(OpenedBy({File(), Id()}, {}, env), "x25519:"));
  // The flag wins over the environment.
  EXPECT_TRUE(StartsWith(OpenedBy({File(), Id()}, {"--decryption-order", "file,x25519"}, env), "file:"));
}

}  // namespace
}  // namespace hmod::testing
