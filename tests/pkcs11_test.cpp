// pkcs11: key provider against a real SoftHSM2 token (FORMAT.md §5.4), and the RFC 7512
// URI parser it rests on.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "keys/pkcs11_provider.h"
#include "keys/pkcs11_uri.h"
#include "support/library_fixture.h"
#include "support/softhsm_token.h"
#include "support/test_util.h"

namespace hmod::testing {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------- URI parser

Pkcs11Uri MustParse(const std::string& text) {
  auto r = ParsePkcs11Uri(text);
  EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : Pkcs11Uri{};
}

std::string ParseError(const std::string& text) {
  auto r = ParsePkcs11Uri(text);
  EXPECT_FALSE(r.ok()) << text << " should not parse";
  if (r.ok()) return {};
  EXPECT_EQ(r.error().code, ErrorCode::kUsage) << text;
  return r.error().message;
}

TEST(Pkcs11Uri, ParsesEveryPathAndQueryAttribute) {
  const Pkcs11Uri u = MustParse(
      "pkcs11:token=My%20token;manufacturer=SoftHSM%20project;serial=4fed7ee2;model=SoftHSM%20v2;"
      "slot-id=403912744;slot-description=d;slot-manufacturer=m;library-manufacturer=lm;"
      "library-description=ld;library-version=2.6;object=model-kek;id=%01%02%fF;type=secret-key"
      "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=12%2634");
  EXPECT_EQ(u.token, "My token");
  EXPECT_EQ(u.manufacturer, "SoftHSM project");
  EXPECT_EQ(u.serial, "4fed7ee2");
  EXPECT_EQ(u.model, "SoftHSM v2");
  EXPECT_EQ(u.slot_id, 403912744ul);
  EXPECT_EQ(u.slot_description, "d");
  EXPECT_EQ(u.slot_manufacturer, "m");
  EXPECT_EQ(u.library_manufacturer, "lm");
  EXPECT_EQ(u.library_description, "ld");
  EXPECT_EQ(u.library_version, "2.6");
  EXPECT_EQ(u.object, "model-kek");
  EXPECT_EQ(u.id, (Bytes{0x01, 0x02, 0xff}));
  EXPECT_EQ(u.type, "secret-key");
  EXPECT_EQ(u.module_path, "/usr/lib/softhsm/libsofthsm2.so");
  EXPECT_EQ(u.pin_value, "12&34");
  EXPECT_FALSE(u.pin_source);
  EXPECT_FALSE(u.module_name);
}

TEST(Pkcs11Uri, EmptyAndMinimalUris) {
  const Pkcs11Uri empty = MustParse("pkcs11:");
  EXPECT_FALSE(empty.token || empty.object || empty.id || empty.module_path);
  MustParse("pkcs11:?");
  const Pkcs11Uri e = MustParse("pkcs11:token=;id=");  // empty values are values (they match empty fields)
  EXPECT_EQ(e.token, "");
  EXPECT_EQ(e.id, Bytes{});
  EXPECT_EQ(MustParse("pkcs11:?module-name=softhsm2").module_name, "softhsm2");
}

TEST(Pkcs11Uri, PercentDecodingIsStrict) {
  EXPECT_EQ(MustParse("pkcs11:object=%41%62%2f%3B%25%00x").object, std::string("Ab/;%\0x", 7));
  EXPECT_EQ(MustParse("pkcs11:id=%00%ab%CD").id, (Bytes{0x00, 0xab, 0xcd}));
  for (const char* bad : {"pkcs11:object=%", "pkcs11:object=%4", "pkcs11:object=a%4", "pkcs11:object=%zz",
                          "pkcs11:object=%g0", "pkcs11:id=%0", "pkcs11:?pin-source=%"}) {
    EXPECT_NE(ParseError(bad).find("two hex digits"), std::string::npos) << bad;
  }
}

TEST(Pkcs11Uri, CharactersRfc7512ReservesMustBeEncoded) {
  for (const char* bad : {"pkcs11:object=a b", "pkcs11:object=a\"b", "pkcs11:object=a/b", "pkcs11:object=a|b",
                          "pkcs11:object=a\\b", "pkcs11:object=a\x01", "pkcs11:object=\xc3\xa9",
                          "pkcs11:?module-path=/a b", "pkcs11:?module-path=a;b"}) {
    EXPECT_NE(ParseError(bad).find("must be percent-encoded"), std::string::npos) << bad;
  }
  EXPECT_NE(ParseError("pkcs11:object=a#frag").find("fragment"), std::string::npos);
  // RFC 7512 lets these through unencoded: "&" in the path, "/", "?" and "|" in the query.
  EXPECT_EQ(MustParse("pkcs11:object=a&b:[]@!$'()*+,=").object, "a&b:[]@!$'()*+,=");
  EXPECT_EQ(MustParse("pkcs11:?module-path=/a/b?c|d").module_path, "/a/b?c|d");
}

TEST(Pkcs11Uri, DuplicateAttributesAreRejected) {
  for (const char* bad : {"pkcs11:token=a;token=a", "pkcs11:object=a;id=%01;object=b", "pkcs11:id=%01;id=%01",
                          "pkcs11:?module-path=/a&module-path=/a", "pkcs11:?pin-source=/a&pin-source=/b",
                          "pkcs11:?pin-value=1&pin-value=1"}) {
    EXPECT_NE(ParseError(bad).find("given twice"), std::string::npos) << bad;
  }
}

TEST(Pkcs11Uri, UnknownPathAttributesAreRejectedUnknownQueryAttributesIgnored) {
  // A path attribute we do not know would make the URI match nothing: say so instead.
  EXPECT_NE(ParseError("pkcs11:token=a;colour=blue").find("unknown path attribute 'colour'"), std::string::npos);
  EXPECT_NE(ParseError("pkcs11:x-vendor=1").find("unknown path attribute"), std::string::npos);
  // Attribute names are case-sensitive.
  EXPECT_NE(ParseError("pkcs11:Token=a").find("unknown path attribute"), std::string::npos);
  // A query attribute can be meant for another consumer.
  const Pkcs11Uri u = MustParse("pkcs11:object=k?x-vendor=1&module-path=/m.so&x-vendor=2&other=%41");
  EXPECT_EQ(u.module_path, "/m.so");
  // ...but it still has to be well-formed.
  ParseError("pkcs11:object=k?other=%4");
  ParseError("pkcs11:object=k?other");
}

TEST(Pkcs11Uri, MalformedStructure) {
  for (const char* bad : {"pkcs11:token", "pkcs11:token=a;;object=b", "pkcs11:token=a;", "pkcs11:;token=a",
                          "pkcs11:=a", "pkcs11:to ken=a", "pkcs11:?a=1&&b=2", "pkcs11:?&", "pkcs11:?=1"}) {
    ParseError(bad);
  }
  EXPECT_NE(ParseError("PKCS11:token=a").find("must start with 'pkcs11:'"), std::string::npos);
  EXPECT_NE(ParseError("file:a").find("must start with 'pkcs11:'"), std::string::npos);
}

TEST(Pkcs11Uri, TypedAttributesAreChecked) {
  for (const char* bad : {"pkcs11:slot-id=", "pkcs11:slot-id=abc", "pkcs11:slot-id=-1", "pkcs11:slot-id=+1",
                          "pkcs11:slot-id=99999999999999999999999", "pkcs11:library-version=",
                          "pkcs11:library-version=1.", "pkcs11:library-version=.1", "pkcs11:library-version=a",
                          "pkcs11:library-version=256", "pkcs11:type=key", "pkcs11:type=Secret-key"}) {
    ParseError(bad);
  }
  EXPECT_EQ(MustParse("pkcs11:slot-id=0").slot_id, 0ul);
  EXPECT_EQ(MustParse("pkcs11:library-version=3").library_version, "3");
  for (const char* t : {"public", "private", "cert", "secret-key", "data"}) {
    EXPECT_EQ(MustParse(std::string("pkcs11:type=") + t).type, t);
  }
}

TEST(Pkcs11Uri, ConflictingQueryAttributesAreRejected) {
  EXPECT_NE(ParseError("pkcs11:?pin-source=/p&pin-value=1").find("either pin-source or pin-value"),
            std::string::npos);
  EXPECT_NE(ParseError("pkcs11:?module-path=/m&module-name=m").find("either module-path or module-name"),
            std::string::npos);
}

TEST(Pkcs11Uri, ErrorsNeverQuoteThePin) {
  for (const char* uri : {"pkcs11:object=k?pin-value=se cret77", "pkcs11:object=k?pin-value=secret77%",
                          "pkcs11:object=k?pin-value=secret77&pin-value=secret77",
                          "pkcs11:object=k?pin-value=secret77&pin-source=/x"}) {
    auto r = ParsePkcs11Uri(uri);
    ASSERT_FALSE(r.ok()) << uri;
    EXPECT_EQ((r.error().message + r.error().hint).find("secret77"), std::string::npos) << r.error().message;
    EXPECT_EQ((r.error().message + r.error().hint).find("cret"), std::string::npos) << r.error().message;
  }
}

TEST(Pkcs11Uri, FormattingIsCanonicalAndRoundTrips) {
  const Pkcs11Uri u = MustParse("pkcs11:id=%01A;object=a%20b~;token=t%3bx?pin-value=1234&module-path=/m");
  // Fixed order, upper-case hex, id fully encoded, never the query.
  EXPECT_EQ(FormatPkcs11UriPath(u), "pkcs11:token=t%3Bx;object=a%20b~;id=%01%41");
  Pkcs11Uri odd;
  odd.token = std::string("\0\xff ;?&%=/", 9);
  odd.object = "\xc3\xa9t\xc3\xa9";
  odd.id = Bytes{0, 1, 2, 255};
  odd.slot_id = 42;
  const Pkcs11Uri back = MustParse(FormatPkcs11UriPath(odd));
  EXPECT_EQ(back.token, odd.token);
  EXPECT_EQ(back.object, odd.object);
  EXPECT_EQ(back.id, odd.id);
  EXPECT_EQ(back.slot_id, odd.slot_id);
  EXPECT_EQ(FormatPkcs11UriPath(back), FormatPkcs11UriPath(odd));
}

// ---------------------------------------------------------------- against SoftHSM2

class Pkcs11Token : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    ASSERT_TRUE(token_.ok()) << token_.error();
  }

  // keygen --pkcs11 through the CLI; returns its JSON.
  json Keygen(const std::string& uri) {
    CliResult r = RunCli({"keygen", "--json", "--pkcs11", uri}, {}, token_.env());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? json::parse(r.out) : json::object();
  }

  std::unique_ptr<KeyProvider> Provider(const std::string& uri) {
    auto p = MakePkcs11Provider(uri);
    EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message + " / " + p.error().hint);
    return p.ok() ? std::move(*p) : nullptr;
  }

  SoftHsmToken token_{"L"};
  TempDir dir_;
};

TEST_F(Pkcs11Token, KeygenCreatesANonExtractableSensitiveAes256Key) {
  const json out = Keygen(token_.Uri("K"));
  EXPECT_EQ(out["pkcs11_key"], "pkcs11:token=L;object=K");
  EXPECT_EQ(out["kek"], std::string("pkcs11:token=L;object=K?module-path=") + kSoftHsmModule);
  EXPECT_EQ(out["extractable"], false);
  EXPECT_EQ(out.dump().find("1234"), std::string::npos) << "the PIN is never printed";

  // Read back from the token with C_GetAttributeValue, not from what keygen said.
  auto info = DescribePkcs11Key(token_.Uri("K"));
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_FALSE(info->extractable);
  EXPECT_TRUE(info->sensitive);
  EXPECT_TRUE(info->never_extractable);
  EXPECT_TRUE(info->always_sensitive);
  EXPECT_TRUE(info->token);
  EXPECT_TRUE(info->is_private);
  EXPECT_TRUE(info->encrypt);
  EXPECT_TRUE(info->decrypt);
  EXPECT_FALSE(info->wrap);
  EXPECT_FALSE(info->unwrap);
  EXPECT_EQ(info->value_len, 32u);
  EXPECT_EQ(info->label, "K");
  EXPECT_TRUE(info->id.empty());

  // And through an independent PKCS#11 client (OpenSC), which must not get the value out.
  ProcessResult tool = RunProcess({"pkcs11-tool", "--module", kSoftHsmModule, "--token-label", "L", "--login",
                                   "--pin", kSoftHsmUserPin, "--list-objects", "--type", "secrkey"},
                                  token_.env());
  ASSERT_NE(tool.exit_code, 127) << "pkcs11-tool (opensc) is missing: scripts/install-deps.sh installs it";
  EXPECT_EQ(tool.exit_code, 0) << tool.err;
  EXPECT_NE(tool.out.find("never extractable"), std::string::npos) << tool.out;
  EXPECT_NE(tool.err.find("CKR_ATTRIBUTE_SENSITIVE"), std::string::npos) << tool.err;
}

TEST_F(Pkcs11Token, KeygenNeverReplacesAKeyAndNeedsALabel) {
  Keygen(token_.Uri("K") + "");
  CliResult again = RunCli({"keygen", "--pkcs11", token_.Uri("K")}, {}, token_.env());
  EXPECT_EQ(again.exit_code, 3);
  EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;

  Keygen("pkcs11:token=L;object=K2;id=%01?module-path=" + std::string(kSoftHsmModule) + "&pin-value=1234");
  CliResult same_id = RunCli(
      {"keygen", "--pkcs11", "pkcs11:token=L;object=K3;id=%01?module-path=" + std::string(kSoftHsmModule) +
                                 "&pin-value=1234"},
      {}, token_.env());
  EXPECT_EQ(same_id.exit_code, 3);
  EXPECT_NE(same_id.err.find("id %01 already exists"), std::string::npos) << same_id.err;

  CliResult no_label = RunCli({"keygen", "--pkcs11", "pkcs11:token=L?module-path=" + std::string(kSoftHsmModule)},
                              {}, token_.env());
  EXPECT_EQ(no_label.exit_code, 2);
  EXPECT_NE(no_label.err.find("object=LABEL"), std::string::npos) << no_label.err;

  CliResult with_output = RunCli({"keygen", "--pkcs11", token_.Uri("K9"), "-o", dir_ / "x"}, {}, token_.env());
  EXPECT_EQ(with_output.exit_code, 2);
  EXPECT_FALSE(Exists(dir_ / "x"));
}

TEST_F(Pkcs11Token, CliRoundTripWithPinValuePinSourceAndModuleName) {
  Keygen(token_.Uri("K"));
  const Bytes plain = TestData(100000, 7);
  WriteFile(dir_ / "p", plain);
  ASSERT_EQ(RunCli({"encrypt", "-q", "--kek", token_.Uri("K"), "-o", dir_ / "p.hmod", dir_ / "p"}, {}, token_.env())
                .exit_code,
            0);

  WriteFile(dir_ / "pin", AsBytes("1234\n"), 0600);
  const std::vector<std::string> keks = {
      "pkcs11:token=L;object=K?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234",
      token_.Uri("K", "pin-source=file:" + (dir_ / "pin")),
      token_.Uri("K", "pin-source=file://" + (dir_ / "pin")),
      token_.Uri("K", "pin-source=" + (dir_ / "pin")),
      "pkcs11:token=L;object=K?module-name=softhsm2&pin-source=file:" + (dir_ / "pin"),
      "pkcs11:serial=" + token_.serial() + ";object=K;type=secret-key?module-path=" + kSoftHsmModule +
          "&pin-value=1234",
  };
  int n = 0;
  for (const auto& kek : keks) {
    const std::string out = dir_ / ("p.out" + std::to_string(n++));
    CliResult d = RunCli({"decrypt", "-q", "--kek", kek, "-o", out, dir_ / "p.hmod"}, {}, token_.env());
    ASSERT_EQ(d.exit_code, 0) << kek << "\n" << d.err;
    EXPECT_TRUE(ReadFile(out) == plain) << kek;
  }

  CliResult inspect = RunCli({"inspect", "--json", dir_ / "p.hmod"});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  EXPECT_NE(inspect.out.find("pkcs11:token=L;object=K"), std::string::npos) << inspect.out;
  EXPECT_EQ(inspect.out.find("module-path"), std::string::npos) << "no module path in the key id";
  EXPECT_EQ(inspect.out.find("pin-"), std::string::npos) << "no PIN attribute in the file";
}

TEST_F(Pkcs11Token, FileWrappedToAKeyFileAndATokenOpensWithEither) {
  Keygen(token_.Uri("K"));
  const std::string key_file = MakeKeyFile(dir_);
  WriteFile(dir_ / "p", TestData(5000, 8));
  ASSERT_EQ(RunCli({"encrypt", "-q", "--kek", "file:" + key_file, "--kek", token_.Uri("K"), "-o", dir_ / "p.hmod",
                    dir_ / "p"},
                   {}, token_.env())
                .exit_code,
            0);
  for (const std::string& kek : {"file:" + key_file, token_.Uri("K")}) {
    CliResult v = RunCli({"verify", "--json", "--kek", kek, dir_ / "p.hmod"}, {}, token_.env());
    EXPECT_EQ(v.exit_code, 0) << kek << "\n" << v.err;
    const std::string out = dir_ / "p.out";
    CliResult d = RunCli({"decrypt", "-q", "-f", "--kek", kek, "-o", out, dir_ / "p.hmod"}, {}, token_.env());
    ASSERT_EQ(d.exit_code, 0) << kek << "\n" << d.err;
    EXPECT_TRUE(ReadFile(out) == ReadFile(dir_ / "p"));
  }
  CliResult inspect = RunCli({"inspect", "--json", dir_ / "p.hmod"});
  EXPECT_NE(inspect.out.find("\"pkcs11\""), std::string::npos) << inspect.out;
  EXPECT_NE(inspect.out.find("\"file\""), std::string::npos) << inspect.out;
}

TEST_F(Pkcs11Token, WrongPinIsAClearErrorAndWritesNothing) {
  Keygen(token_.Uri("K"));
  WriteFile(dir_ / "p", TestData(1000, 9));
  CliResult e = RunCli({"encrypt", "--kek", token_.Uri("K", "pin-value=98765"), "-o", dir_ / "p.hmod", dir_ / "p"},
                       {}, token_.env());
  EXPECT_EQ(e.exit_code, 8);
  EXPECT_NE(e.err.find("wrong PIN for token 'L' (CKR_PIN_INCORRECT)"), std::string::npos) << e.err;
  EXPECT_NE(e.err.find("hint:"), std::string::npos) << e.err;
  EXPECT_EQ(e.err.find("98765"), std::string::npos) << "the PIN is never printed";
  EXPECT_FALSE(Exists(dir_ / "p.hmod"));

  ASSERT_EQ(RunCli({"encrypt", "-q", "--kek", token_.Uri("K"), "-o", dir_ / "p.hmod", dir_ / "p"}, {}, token_.env())
                .exit_code,
            0);
  WriteFile(dir_ / "badpin", AsBytes("98765\n"), 0600);
  CliResult d = RunCli({"decrypt", "--json", "--kek", token_.Uri("K", "pin-source=file:" + (dir_ / "badpin")), "-o",
                        dir_ / "p.out", dir_ / "p.hmod"},
                       {}, token_.env());
  EXPECT_EQ(d.exit_code, 8);
  EXPECT_NE(d.out.find("CKR_PIN_INCORRECT"), std::string::npos) << d.out;
  EXPECT_EQ((d.out + d.err).find("98765"), std::string::npos);
  EXPECT_FALSE(Exists(dir_ / "p.out"));

  CliResult no_pin = RunCli({"decrypt", "--kek", token_.Uri("K", ""), "-o", dir_ / "p.out", dir_ / "p.hmod"}, {},
                            token_.env());
  EXPECT_EQ(no_pin.exit_code, 8);
  EXPECT_NE(no_pin.err.find("needs a user PIN"), std::string::npos) << no_pin.err;
  EXPECT_FALSE(Exists(dir_ / "p.out"));
}

TEST_F(Pkcs11Token, UnwrapOpensItsOwnRecordAndRejectsTamperingAsAuthFailure) {
  Keygen(token_.Uri("K"));
  auto p = Provider(token_.Uri("K"));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->provider_id(), "pkcs11");
  EXPECT_EQ(p->key_id(), "pkcs11:token=L;object=K");
  EXPECT_TRUE(p->is_local());
  EXPECT_EQ(p->description().find("1234"), std::string::npos);

  Bytes file_id = TestData(32, 1);
  EncryptionContext context;
  const WrapContext ctx{file_id, &context};
  const SecretBytes dk = SecretBytes::Random(32);
  auto rec = p->Wrap(dk, ctx);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_EQ(rec->provider_id, "pkcs11");
  EXPECT_EQ(rec->key_id, "pkcs11:token=L;object=K");
  ASSERT_EQ(rec->wrapped.size(), 60u);  // FORMAT.md §5.4: iv 12 + key 32 + tag 16
  auto again = p->Wrap(dk, ctx);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(rec->wrapped, again->wrapped) << "a fresh IV every time";

  auto opened = p->Unwrap(*rec, ctx);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  EXPECT_TRUE(opened->Equals(dk));

  // Every byte of the record is authenticated: IV, ciphertext and tag.
  for (size_t i : {size_t{0}, size_t{11}, size_t{12}, size_t{30}, size_t{43}, size_t{44}, size_t{59}}) {
    WrappedKey bad = *rec;
    bad.wrapped[i] ^= 0x01;
    auto r = p->Unwrap(bad, ctx);
    ASSERT_FALSE(r.ok()) << "byte " << i;
    EXPECT_EQ(r.error().code, ErrorCode::kAuthFailed) << "byte " << i << ": " << r.error().message;
  }
  // The record is bound to its file id (the AAD).
  Bytes other_file = TestData(32, 2);
  auto moved = p->Unwrap(*rec, WrapContext{other_file, &context});
  ASSERT_FALSE(moved.ok());
  EXPECT_EQ(moved.error().code, ErrorCode::kAuthFailed);
  // Exact length, before the token sees it.
  for (size_t len : {size_t{0}, size_t{59}, size_t{61}, size_t{4096}}) {
    WrappedKey bad = *rec;
    bad.wrapped.resize(len);
    auto r = p->Unwrap(bad, ctx);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kAuthFailed) << len;
  }
  // Records naming another key or provider are "not mine".
  for (auto [provider, key] : {std::pair<std::string, std::string>{"pkcs11", "pkcs11:token=L;object=K2"},
                               {"pkcs11", "pkcs11:token=M;object=K"},
                               {"pkcs11", "pkcs11:token=L;object=k"},
                               {"file", "pkcs11:token=L;object=K"}}) {
    WrappedKey other = *rec;
    other.provider_id = provider;
    other.key_id = key;
    auto r = p->Unwrap(other, ctx);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kNoMatchingKey) << provider << " " << key;
  }
  // The provider still works after all those failures.
  auto still = p->Unwrap(*rec, ctx);
  ASSERT_TRUE(still.ok()) << still.error().message;
}

TEST_F(Pkcs11Token, AnotherKeyInTheSameTokenSaysNotMineAndTheKeyIdIsCanonical) {
  Keygen("pkcs11:token=L;object=K1;id=%0A%FF?module-path=" + std::string(kSoftHsmModule) + "&pin-value=1234");
  Keygen(token_.Uri("K2"));
  // However the key is addressed, its key id is what the token says, in canonical form.
  for (const std::string& uri :
       {token_.Uri("K1"), "pkcs11:id=%0a%ff?module-path=" + std::string(kSoftHsmModule) + "&pin-value=1234",
        std::string("pkcs11:model=SoftHSM%20v2;token=L;id=%0A%ff;object=K1?module-name=softhsm2&pin-value=1234")}) {
    auto p = Provider(uri);
    ASSERT_TRUE(p) << uri;
    EXPECT_EQ(p->key_id(), "pkcs11:token=L;object=K1;id=%0A%FF") << uri;
  }
  auto k1 = Provider(token_.Uri("K1"));
  auto k2 = Provider(token_.Uri("K2"));
  ASSERT_TRUE(k1 && k2);
  Bytes file_id = TestData(32, 3);
  EncryptionContext context;
  const WrapContext ctx{file_id, &context};
  auto rec = k1->Wrap(SecretBytes::Random(32), ctx);
  ASSERT_TRUE(rec.ok());
  auto r = k2->Unwrap(*rec, ctx);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNoMatchingKey);
  // Forged key id (same label as K2's): the token's tag check catches it.
  WrappedKey forged = *rec;
  forged.key_id = k2->key_id();
  auto f = k2->Unwrap(forged, ctx);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code, ErrorCode::kAuthFailed);
}

TEST_F(Pkcs11Token, SetupErrorsAreClear) {
  Keygen(token_.Uri("K"));
  struct Case {
    std::string uri;
    ErrorCode code;
    std::string message;
  };
  const std::string m = "?module-path=" + std::string(kSoftHsmModule) + "&pin-value=1234";
  const std::vector<Case> cases = {
      {"pkcs11:token=nope;object=K" + m, ErrorCode::kKeyFile, "no initialised token matches"},
      {"pkcs11:token=L;object=nope" + m, ErrorCode::kKeyFile, "no secret key object=nope in token 'L'"},
      {"pkcs11:token=L" + m, ErrorCode::kUsage, "names no key"},
      {"pkcs11:token=L;object=K;type=cert" + m, ErrorCode::kUsage, "type=cert"},
      {"pkcs11:token=L;object=K?pin-value=1234", ErrorCode::kUsage, "names no PKCS#11 module"},
      {"pkcs11:token=L;object=K?module-path=/nonexistent/lib.so&pin-value=1234", ErrorCode::kKeyFile,
       "cannot load PKCS#11 module /nonexistent/lib.so"},
      {"pkcs11:token=L;object=K?module-name=no-such-module&pin-value=1234", ErrorCode::kKeyFile,
       "no PKCS#11 module named 'no-such-module'"},
      {"pkcs11:token=L;object=K?module-path=" + std::string(kSoftHsmModule) + "&pin-source=file:" + (dir_ / "none"),
       ErrorCode::kKeyFile, "cannot read PIN file"},
      {"pkcs11:token=L;object=K?module-path=" + std::string(kSoftHsmModule) + "&pin-source=env:PIN",
       ErrorCode::kUsage, "not supported"},
  };
  for (const auto& c : cases) {
    auto p = MakePkcs11Provider(c.uri);
    ASSERT_FALSE(p.ok()) << c.uri;
    EXPECT_EQ(p.error().code, c.code) << c.uri << ": " << p.error().message;
    EXPECT_NE(p.error().message.find(c.message), std::string::npos) << c.uri << ": " << p.error().message;
  }
  // The no-token hint lists the tokens that are there.
  auto none = MakePkcs11Provider("pkcs11:token=nope;object=K" + m);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().hint.find("'L' (serial " + token_.serial() + ")"), std::string::npos) << none.error().hint;
  // An empty PIN file is refused rather than tried.
  WriteFile(dir_ / "empty", AsBytes("\n"), 0600);
  auto empty = MakePkcs11Provider(token_.Uri("K", "pin-source=" + (dir_ / "empty")));
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("empty"), std::string::npos);
  // Through the CLI: an unknown URI attribute is a usage error naming it.
  CliResult bad = RunCli({"encrypt", "--kek", "pkcs11:token=L;colour=K" + m, "-o", dir_ / "x", "-"}, "x", token_.env());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("unknown path attribute 'colour'"), std::string::npos) << bad.err;
  EXPECT_FALSE(Exists(dir_ / "x"));
}

}  // namespace
}  // namespace hmod::testing
