// The per-tensor tamper matrix (FORMAT.md §6): entries moved between files or within one,
// flipped bytes in the encrypted index, in a public index (MAC), in plaintext tensors
// (digest) and in the padding, truncation and trailing bytes, and every single-byte flip of a
// small file, all fail, through the library (whole decrypt and ReadEntry) and the CLI; only
// an authenticated prefix of the source is ever released, and a failed CLI run leaves no
// output file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "support/tensor_fixture.h"

namespace hmod::testing {
namespace {

// Three tiny tensors; "a" and "b" have the same size, so their entries can be swapped.
Bytes TinyModel() {
  return BuildSafetensors({{"a", "F32", {4}, TestData(16, 1)},
                           {"b", "U8", {16}, TestData(16, 2)},
                           {"c", "BF16", {3}, TestData(6, 3)}});
}

class TensorTamper : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    key_path_ = NewKeyFile(dir_);
    providers_ = FileProviders(key_path_);
    model_ = TinyModel();
  }

  Bytes Encrypt(bool public_index = false, std::vector<std::string> globs = {}) {
    return EncryptModel(model_, providers_, TensorOptions(Suite::kAes256Gcm, public_index, std::move(globs)));
  }

  // The index of an untampered file.
  TensorIndex IndexOf(const Bytes& file) {
    MemorySource src(file);
    auto f = OpenTensors(src, providers_);
    EXPECT_TRUE(f.ok()) << f.error().message;
    return f.ok() ? (*f)->index() : TensorIndex{};
  }
  TensorLayoutInfo LayoutInfoOf(const Bytes& file) {
    MemorySource src(file);
    auto f = OpenTensors(src, providers_);
    EXPECT_TRUE(f.ok()) << f.error().message;
    return f.ok() ? (*f)->layout() : TensorLayoutInfo{};
  }

  // Whole-file decrypt must fail with `code`, releasing at most an authenticated prefix of
  // the source (nothing at all if `nothing_released`).
  void ExpectRejected(const Bytes& bytes, const std::string& what, ErrorCode code = ErrorCode::kAuthFailed,
                      bool nothing_released = true) {
    auto out = DecryptBytes(bytes, providers_);
    ASSERT_FALSE(out.result.ok()) << what << " was accepted";
    EXPECT_EQ(out.result.error().code, code) << what << ": " << out.result.error().message;
    EXPECT_LE(out.released.size(), model_.size()) << what;
    EXPECT_TRUE(std::equal(out.released.begin(), out.released.end(), model_.begin()))
        << what << ": released bytes that are not the source";
    if (nothing_released) {
      EXPECT_TRUE(out.released.empty()) << what << ": released " << out.released.size();
    }
  }

  // ReadEntry of tensor `name` must fail (if the file opens at all), leaving `out` untouched
  // or wiped, never holding other bytes.
  void ExpectReadFails(const Bytes& bytes, const std::string& name, const std::string& what) {
    MemorySource src(bytes);
    auto f = OpenTensors(src, providers_);
    if (!f.ok()) return;  // failing to open is failing to read
    auto entry = (*f)->Find(name);
    ASSERT_TRUE(entry.ok()) << what;
    const uint64_t size = (*f)->index().entries[*entry].size;
    Bytes out(size, 0xEE);
    Status st = (*f)->ReadEntry(*entry, 0, out);
    ASSERT_FALSE(st.ok()) << what << ": ReadEntry of '" << name << "' succeeded";
    EXPECT_EQ(st.error().code, ErrorCode::kAuthFailed) << what << ": " << st.error().message;
    EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](uint8_t b) { return b == 0xEE || b == 0; })) << what;
    if (size > 2) {
      Bytes part(1, 0xEE);
      EXPECT_FALSE((*f)->ReadEntry(*entry, size / 2, part).ok()) << what << ": a one-byte read succeeded";
    }
  }

  // ReadEntry of tensor `name` succeeds with the source bytes.
  void ExpectReadOk(const Bytes& bytes, const std::string& name, const std::string& what) {
    MemorySource src(bytes);
    auto f = OpenTensors(src, providers_);
    ASSERT_TRUE(f.ok()) << what << ": " << f.error().message;
    auto entry = (*f)->Find(name);
    ASSERT_TRUE(entry.ok());
    auto got = ReadWholeEntry(**f, *entry);
    ASSERT_TRUE(got.ok()) << what << ": " << got.error().message;
    const ModelLayout layout = LayoutOfModel(model_);
    const TensorInfo& t = layout.tensors[*entry - 1];
    EXPECT_TRUE(*got == SliceOf(model_, t.offset, t.size)) << what;
  }

  TempDir dir_;
  std::string key_path_;
  ProviderList providers_;
  Bytes model_;
};

TEST_F(TensorTamper, UntouchedFilesOpen) {
  for (bool public_index : {false, true}) {
    const Bytes file = Encrypt(public_index, {"c"});
    auto out = DecryptBytes(file, providers_);
    ASSERT_TRUE(out.result.ok()) << out.result.error().message;
    EXPECT_TRUE(out.released == model_);
    for (const char* name : {"a", "b", "c"}) ExpectReadOk(file, name, "untouched");
  }
}

TEST_F(TensorTamper, EntrySwappedBetweenFilesWithTheSameKeyFails) {
  const Bytes one = Encrypt(), two = Encrypt();
  const TensorIndex i1 = IndexOf(one), i2 = IndexOf(two);
  ASSERT_EQ(one.size(), two.size());
  ASSERT_EQ(i1.entries.size(), i2.entries.size());
  for (size_t k = 0; k < i1.entries.size(); ++k) {
    ASSERT_EQ(i1.entries[k].offset, i2.entries[k].offset) << "same model, same layout";
    ASSERT_EQ(i1.entries[k].stored_length, i2.entries[k].stored_length);
  }
  for (size_t k = 0; k < i1.entries.size(); ++k) {
    const IndexEntry& e = i1.entries[k];
    const std::string what = "entry " + std::to_string(k) + " from another file";
    Bytes bad = one;
    std::copy_n(two.begin() + static_cast<ptrdiff_t>(e.offset), e.stored_length,
                bad.begin() + static_cast<ptrdiff_t>(e.offset));
    ASSERT_NE(bad, one);
    ExpectRejected(bad, what, ErrorCode::kAuthFailed, /*nothing_released=*/false);
    if (k > 0) {
      ExpectReadFails(bad, e.name, what);
      for (const char* other : {"a", "b", "c"}) {
        if (e.name != other) ExpectReadOk(bad, other, what + ", other tensors");
      }
    }
  }
  // The whole index of the other file.
  const TensorLayoutInfo info = LayoutInfoOf(one);
  Bytes bad = one;
  std::copy(two.begin() + static_cast<ptrdiff_t>(info.index_offset), two.end(),
            bad.begin() + static_cast<ptrdiff_t>(info.index_offset));
  ExpectRejected(bad, "index from another file");
  // The header region of the other file over this one's entries and index.
  Bytes spliced(two.begin(), two.begin() + 4096);
  spliced.insert(spliced.end(), one.begin() + 4096, one.end());
  ExpectRejected(spliced, "header from another file");
}

TEST_F(TensorTamper, SameSizeEntriesSwappedWithinAFileFail) {
  // Encrypted entries (bound to their position and name), then plain ones (digests).
  for (bool plain : {false, true}) {
    const Bytes file = plain ? Encrypt(/*public_index=*/true, {"*"}) : Encrypt();
    const TensorIndex index = IndexOf(file);
    ASSERT_EQ(index.entries.size(), 4u);
    const IndexEntry &a = index.entries[1], &b = index.entries[2];
    ASSERT_EQ(a.name, "a");
    ASSERT_EQ(b.name, "b");
    ASSERT_EQ(a.stored_length, b.stored_length);
    ASSERT_EQ(a.encrypted, !plain);
    Bytes bad = file;
    std::swap_ranges(bad.begin() + static_cast<ptrdiff_t>(a.offset),
                     bad.begin() + static_cast<ptrdiff_t>(a.offset + a.stored_length),
                     bad.begin() + static_cast<ptrdiff_t>(b.offset));
    const std::string what = plain ? "plain a and b swapped" : "encrypted a and b swapped";
    ExpectRejected(bad, what, ErrorCode::kAuthFailed, /*nothing_released=*/false);
    ExpectReadFails(bad, "a", what);
    ExpectReadFails(bad, "b", what);
    ExpectReadOk(bad, "c", what);
  }
}

TEST_F(TensorTamper, FlippedByteInTheEncryptedIndexFails) {
  const Bytes file = Encrypt();
  const TensorLayoutInfo info = LayoutInfoOf(file);
  ASSERT_EQ(info.index_mode, IndexMode::kEncrypted);
  const uint64_t at = info.index_offset, n = info.index_length;
  // Salt, commitment, first ciphertext byte, middle, last tag byte.
  for (uint64_t k : {uint64_t{0}, uint64_t{30}, uint64_t{56}, n / 2 + 20, n - 1}) {
    Bytes bad = file;
    bad[at + k] ^= 0x04;
    const std::string what = "encrypted index byte " + std::to_string(k);
    ExpectRejected(bad, what);
    MemorySource src(bad);
    auto f = OpenTensors(src, providers_);
    ASSERT_FALSE(f.ok()) << what;
    EXPECT_EQ(f.error().code, ErrorCode::kAuthFailed) << what;
  }
}

TEST_F(TensorTamper, FlippedByteInAPublicIndexFailsItsMac) {
  const Bytes file = Encrypt(/*public_index=*/true);
  const TensorLayoutInfo info = LayoutInfoOf(file);
  ASSERT_EQ(info.index_mode, IndexMode::kPublic);
  const uint64_t at = info.index_offset, n = info.index_length;
  ASSERT_EQ(AsString(SliceOf(file, at, 4)), "HMIX") << "a public index is stored in clear";
  // Magic, version, entry count, a name, the last index byte, the MAC.
  for (uint64_t k : {uint64_t{0}, uint64_t{4}, uint64_t{8}, n / 2, n - 33, n - 32, n - 1}) {
    Bytes bad = file;
    bad[at + k] ^= 0x01;
    const std::string what = "public index byte " + std::to_string(k);
    ExpectRejected(bad, what);
    MemorySource src(bad);
    auto f = OpenTensors(src, providers_);
    ASSERT_FALSE(f.ok()) << what;
    EXPECT_EQ(f.error().code, ErrorCode::kAuthFailed) << what;
    EXPECT_NE(f.error().message.find("MAC"), std::string::npos) << f.error().message;
  }
  // A changed tensor name, consistently re-encoded, still fails the MAC.
  Bytes renamed = file;
  TensorIndex index = IndexOf(file);
  index.entries[1].name = "z";
  const Bytes forged = EncodeIndex(index);
  ASSERT_EQ(forged.size() + 32, n);
  std::copy(forged.begin(), forged.end(), renamed.begin() + static_cast<ptrdiff_t>(at));
  ExpectRejected(renamed, "re-encoded index with a renamed tensor");
}

TEST_F(TensorTamper, FlippedByteInAPlaintextTensorFailsItsDigest) {
  for (bool public_index : {false, true}) {
    const Bytes file = Encrypt(public_index, {"b"});
    const TensorIndex index = IndexOf(file);
    const IndexEntry& b = index.entries[2];
    ASSERT_EQ(b.name, "b");
    ASSERT_FALSE(b.encrypted);
    ASSERT_TRUE(SliceOf(file, b.offset, b.size) == SliceOf(model_, b.segments[0].source_offset, b.size));
    for (uint64_t k : {uint64_t{0}, uint64_t{7}, b.size - 1}) {
      Bytes bad = file;
      bad[b.offset + k] ^= 0x10;
      const std::string what = std::string(public_index ? "public" : "encrypted") + " index, plain b byte " +
                               std::to_string(k);
      ExpectRejected(bad, what, ErrorCode::kAuthFailed, /*nothing_released=*/false);
      auto out = DecryptBytes(bad, providers_);
      EXPECT_NE(out.result.error().message.find("digest"), std::string::npos) << out.result.error().message;
      // Only what precedes b in the source (header and tensor a) can have been released.
      EXPECT_LE(out.released.size(), b.segments[0].source_offset) << what;
      ExpectReadFails(bad, "b", what);
      ExpectReadOk(bad, "a", what);
      ExpectReadOk(bad, "c", what);
    }
  }
}

TEST_F(TensorTamper, FlippedByteInAPlainSkeletonFails) {
  // In public mode the skeleton (here the safetensors header) is stored plain.
  const Bytes file = Encrypt(/*public_index=*/true);
  const IndexEntry skeleton = IndexOf(file).entries[0];
  ASSERT_FALSE(skeleton.encrypted);
  for (uint64_t k : {uint64_t{0}, uint64_t{8}, skeleton.size - 1}) {
    Bytes bad = file;
    bad[skeleton.offset + k] ^= 0x20;
    ExpectRejected(bad, "plain skeleton byte " + std::to_string(k));
  }
}

TEST_F(TensorTamper, NonZeroPaddingFails) {
  for (bool public_index : {false, true}) {
    const Bytes file = Encrypt(public_index, {"c"});
    const TensorIndex index = IndexOf(file);
    const TensorLayoutInfo info = LayoutInfoOf(file);
    std::vector<uint64_t> pads;
    for (size_t k = 0; k < index.entries.size(); ++k) {
      const IndexEntry& e = index.entries[k];
      const uint64_t end = e.offset + e.stored_length;
      const uint64_t next = k + 1 < index.entries.size() ? index.entries[k + 1].offset : info.index_offset;
      ASSERT_LT(end, next) << "tiny entries leave padding";
      pads.insert(pads.end(), {end, (end + next) / 2, next - 1});
    }
    for (uint64_t p : pads) {
      ASSERT_EQ(file[p], 0);
      Bytes bad = file;
      bad[p] = 0x01;
      const std::string what = "padding byte " + std::to_string(p);
      ExpectRejected(bad, what);
      auto out = DecryptBytes(bad, providers_);
      EXPECT_NE(out.result.error().message.find("padding"), std::string::npos) << out.result.error().message;
    }
  }
}

TEST_F(TensorTamper, TruncationAndTrailingBytesFail) {
  for (bool public_index : {false, true}) {
    const Bytes file = Encrypt(public_index, {"c"});
    const TensorIndex index = IndexOf(file);
    const TensorLayoutInfo info = LayoutInfoOf(file);
    std::vector<uint64_t> cuts = {0, 1, 8, 100, 4095, 4096, 4097, info.index_offset, info.index_offset + 1,
                                  file.size() - 32, file.size() - 16, file.size() - 1};
    for (const auto& e : index.entries) cuts.insert(cuts.end(), {e.offset + 10, e.offset + e.stored_length});
    for (uint64_t cut : cuts) {
      ASSERT_LT(cut, file.size());
      const Bytes bad(file.begin(), file.begin() + static_cast<ptrdiff_t>(cut));
      const std::string what = "truncated to " + std::to_string(cut);
      auto out = DecryptBytes(bad, providers_);
      ASSERT_FALSE(out.result.ok()) << what;
      EXPECT_TRUE(out.released.empty()) << what;
      if (cut > 4096) {
        EXPECT_EQ(out.result.error().code, ErrorCode::kAuthFailed) << what;
      }
      MemorySource src(bad);
      EXPECT_FALSE(OpenTensors(src, providers_).ok()) << what;
    }
    for (size_t extra : {1, 16, 32, 4096, 16400}) {
      for (uint8_t fill : {0x00, 0xAB}) {
        Bytes bad = file;
        bad.resize(bad.size() + extra, fill);
        const std::string what = std::to_string(extra) + " trailing bytes of " + std::to_string(fill);
        ExpectRejected(bad, what);
        MemorySource src(bad);
        EXPECT_FALSE(OpenTensors(src, providers_).ok()) << what;
      }
    }
  }
}

// An empty tensor is still a message (header and an empty final chunk): its bytes are
// authenticated like any other entry's, by whole decrypt and by ReadEntry.
TEST_F(TensorTamper, FlippedByteInAnEmptyTensorFails) {
  model_ = BuildSafetensors({{"a", "F32", {4}, TestData(16, 1)}, {"e", "F32", {0}, {}}, {"c", "BF16", {3}, TestData(6, 3)}});
  const Bytes file = Encrypt();
  const TensorIndex index = IndexOf(file);
  const IndexEntry& e = index.entries[2];
  ASSERT_EQ(e.name, "e");
  ASSERT_EQ(e.size, 0u);
  ASSERT_EQ(e.stored_length, kStreamHeaderBytes + kAeadTagBytes);
  for (uint64_t k : {uint64_t{0}, uint64_t{40}, e.stored_length - 1}) {
    Bytes bad = file;
    bad[e.offset + k] ^= 0x01;
    const std::string what = "empty tensor byte " + std::to_string(k);
    ExpectRejected(bad, what, ErrorCode::kAuthFailed, /*nothing_released=*/false);
    ExpectReadFails(bad, "e", what);
  }
}

// Every single-byte flip of a small per-tensor file fails. Flips outside the entries
// (header, padding, index) release nothing; flips inside an entry release at most the
// source bytes before that entry's first byte in the source. With `sample_padding`, only
// the first and last 8 bytes of each padding run and every 61st byte in between are flipped
// (the padding is most of a small file, and every padding flip fails the same way).
void EveryByteFlip(const Bytes& file, ProviderList& providers, const Bytes& model, bool sample_padding) {
  MemorySource clean(file);
  auto opened = OpenTensors(clean, providers);
  ASSERT_TRUE(opened.ok());
  const TensorIndex index = (*opened)->index();
  const uint64_t region = (*opened)->header().region_bytes, index_offset = (*opened)->layout().index_offset;
  // For each file byte: the source offset before which releasing is allowed.
  std::vector<uint64_t> may_release(file.size(), 0);
  std::vector<bool> skip(file.size(), false);
  uint64_t end = region;
  auto sample = [&](uint64_t from, uint64_t to) {
    for (uint64_t p = from; p < to; ++p) skip[p] = sample_padding && p >= from + 8 && p + 8 < to && p % 61 != 0;
  };
  for (const auto& e : index.entries) {
    const uint64_t first = e.segments.empty() ? 0 : e.segments[0].source_offset;
    for (uint64_t p = e.offset; p < e.offset + e.stored_length; ++p) may_release[p] = first;
    sample(end, e.offset);
    end = e.offset + e.stored_length;
  }
  sample(end, index_offset);
  size_t auth = 0, other = 0, flipped = 0;
  for (size_t i = 0; i < file.size(); ++i) {
    if (skip[i]) continue;
    Bytes bad = file;
    bad[i] ^= 0x01;
    auto out = DecryptBytes(bad, providers);
    ASSERT_FALSE(out.result.ok()) << "flip at byte " << i << " was accepted";
    ASSERT_LE(out.released.size(), may_release[i]) << "flip at byte " << i;
    ASSERT_TRUE(std::equal(out.released.begin(), out.released.end(), model.begin())) << "flip at byte " << i;
    // Past the header region every failure is an authentication failure: a tag, the
    // commitment, the index MAC, a digest, the padding.
    if (i >= region) {
      ASSERT_EQ(out.result.error().code, ErrorCode::kAuthFailed) << "flip at byte " << i;
    }
    (out.result.error().code == ErrorCode::kAuthFailed ? auth : other)++;
    ++flipped;
  }
  EXPECT_GT(auth, 0u);
  EXPECT_GT(other, 0u) << "header parse errors";
  if (!sample_padding) {
    EXPECT_EQ(flipped, file.size());
  }
}

TEST_F(TensorTamper, EverySingleByteFlipFails) {
  const Bytes file = Encrypt();
  ASSERT_LT(file.size(), 24u * 1024);
  EveryByteFlip(file, providers_, model_, /*sample_padding=*/false);
}

TEST_F(TensorTamper, EveryByteFlipFailsPublicIndexWithPlainTensor) {
  const Bytes file = Encrypt(/*public_index=*/true, {"b"});
  ASSERT_LT(file.size(), 24u * 1024);
  EveryByteFlip(file, providers_, model_, /*sample_padding=*/true);
}

// ---- through the CLI ------------------------------------------------------------------------

class TensorCliTamper : public TensorTamper {
 protected:
  void ExpectCliRejects(const Bytes& bytes, const std::string& what, int expected_exit,
                        const std::vector<std::string>& extra = {}) {
    const std::string in = dir_ / "in.hmod", out = dir_ / "out.bin";
    std::remove(out.c_str());  // so one failure does not cascade into the next case
    WriteFile(in, bytes);
    std::vector<std::string> args = {"decrypt", "--kek", "file:" + key_path_, "-o", out, in};
    args.insert(args.end(), extra.begin(), extra.end());
    CliResult r = RunCli(args);
    EXPECT_EQ(r.exit_code, expected_exit) << what << "\n" << r.err;
    EXPECT_NE(r.err.find("hmodctl: error: "), std::string::npos) << what;
    EXPECT_FALSE(Exists(out)) << what << ": output path exists after a failed run";
    EXPECT_TRUE(ReadFile(in) == bytes) << what << ": input was modified";
    ExpectNoTempFiles(dir_, what);
    if (extra.empty()) {
      CliResult v = RunCli({"verify", "--kek", "file:" + key_path_, in});
      EXPECT_EQ(v.exit_code, expected_exit) << what << " (verify)\n" << v.err;
    }
  }
};

TEST_F(TensorCliTamper, FailuresLeaveNoOutput) {
  const Bytes enc = Encrypt(), other = Encrypt(), pub = Encrypt(/*public_index=*/true, {"b"});
  const TensorIndex ei = IndexOf(enc), pi = IndexOf(pub);
  const TensorLayoutInfo el = LayoutInfoOf(enc), pl = LayoutInfoOf(pub);

  {  // Tensor a's entry from another file with the same key.
    Bytes bad = enc;
    const IndexEntry& a = ei.entries[1];
    std::copy_n(other.begin() + static_cast<ptrdiff_t>(a.offset), a.stored_length,
                bad.begin() + static_cast<ptrdiff_t>(a.offset));
    ExpectCliRejects(bad, "entry from another file", 6);
    ExpectCliRejects(bad, "entry from another file, --tensor a", 6, {"--tensor", "a"});
  }
  {  // a and b swapped.
    Bytes bad = enc;
    const IndexEntry &a = ei.entries[1], &b = ei.entries[2];
    std::swap_ranges(bad.begin() + static_cast<ptrdiff_t>(a.offset),
                     bad.begin() + static_cast<ptrdiff_t>(a.offset + a.stored_length),
                     bad.begin() + static_cast<ptrdiff_t>(b.offset));
    ExpectCliRejects(bad, "a and b swapped", 6);
    ExpectCliRejects(bad, "a and b swapped, --tensor b", 6, {"--tensor", "b"});
  }
  {
    Bytes bad = enc;
    bad[el.index_offset + 100] ^= 1;
    ExpectCliRejects(bad, "encrypted index flip", 6);
  }
  {
    Bytes bad = pub;
    bad[pl.index_offset + 20] ^= 1;
    ExpectCliRejects(bad, "public index flip", 6);
    ExpectCliRejects(bad, "public index flip, --tensor a", 6, {"--tensor", "a"});
  }
  {
    Bytes bad = pub;
    bad[pi.entries[2].offset + 3] ^= 1;  // plain tensor b
    ExpectCliRejects(bad, "plain tensor flip", 6);
    ExpectCliRejects(bad, "plain tensor flip, --tensor b", 6, {"--tensor", "b"});
  }
  {
    Bytes bad = enc;
    bad[ei.entries[1].offset - 1] = 0x80;  // padding before a
    ExpectCliRejects(bad, "padding flip", 6);
  }
  ExpectCliRejects(Bytes(enc.begin(), enc.end() - 1), "truncated by one byte", 6);
  ExpectCliRejects(Bytes(enc.begin(), enc.begin() + static_cast<ptrdiff_t>(el.index_offset)), "index cut off", 6);
  ExpectCliRejects(Bytes(enc.begin(), enc.begin() + 2000), "truncated in the header", 4);
  Bytes trailing = enc;
  trailing.push_back(0);
  ExpectCliRejects(trailing, "one trailing zero byte", 6);
  ExpectCliRejects(trailing, "one trailing zero byte, --tensor c", 6, {"--tensor", "c"});
}

TEST_F(TensorCliTamper, TamperedEmptyTensorFailsDecryptTensor) {
  model_ = BuildSafetensors({{"a", "F32", {4}, TestData(16, 1)}, {"e", "F32", {0}, {}}});
  const Bytes file = Encrypt();
  const IndexEntry e = IndexOf(file).entries[2];
  ASSERT_EQ(e.name, "e");
  Bytes bad = file;
  bad[e.offset + e.stored_length - 1] ^= 1;  // its (only) tag
  ExpectCliRejects(bad, "empty tensor flip", 6);
  ExpectCliRejects(bad, "empty tensor flip, --tensor e", 6, {"--tensor", "e"});
}


// A plain tensor is authenticated by its digest. A change on disk after a first successful
// read must fail the next read: nothing may be remembered from the earlier check, and the
// bytes returned are the bytes that were hashed.
TEST_F(TensorTamper, PlainTensorChangedOnDiskAfterAReadFailsTheNextRead) {
  Bytes file = Encrypt(/*public_index=*/false, {"b"});
  MemorySource src(file);  // reads `file` as it is at the time of each read
  auto f = OpenTensors(src, providers_);
  ASSERT_TRUE(f.ok()) << f.error().message;
  auto entry = (*f)->Find("b");
  ASSERT_TRUE(entry.ok());
  const IndexEntry& e = (*f)->index().entries[*entry];
  ASSERT_FALSE(e.encrypted);
  Bytes whole(e.size);
  ASSERT_TRUE((*f)->ReadEntry(*entry, 0, whole).ok());
  Bytes part(4);
  ASSERT_TRUE((*f)->ReadEntry(*entry, 2, part).ok());

  file[e.offset + e.size - 1] ^= 0x01;  // the file changes under the open TensorFile
  Bytes again(e.size, 0xEE);
  Status st = (*f)->ReadEntry(*entry, 0, again);
  ASSERT_FALSE(st.ok()) << "a plain tensor changed after its first read was accepted";
  EXPECT_EQ(st.error().code, ErrorCode::kAuthFailed);
  EXPECT_TRUE(std::all_of(again.begin(), again.end(), [](uint8_t b) { return b == 0; }));
  Bytes part_again(4, 0xEE);
  EXPECT_FALSE((*f)->ReadEntry(*entry, 2, part_again).ok()) << "a partial read of the changed tensor succeeded";
  EXPECT_TRUE(std::all_of(part_again.begin(), part_again.end(), [](uint8_t b) { return b == 0; }));

  // Whole-file decrypt of the changed file fails too.
  MemorySink sink;
  EXPECT_FALSE((*f)->Restore(sink, {}).ok());
  file[e.offset + e.size - 1] ^= 0x01;
  ASSERT_TRUE((*f)->ReadEntry(*entry, 0, again).ok());
  EXPECT_TRUE(again == whole);
}


// Whole-file decrypt hashes a plain entry before writing any of it, then hashes the bytes
// again as it copies them: a change between the two reads fails the file, and the changed
// bytes are not written.
TEST_F(TensorTamper, PlainTensorChangedBetweenCheckAndCopyFailsRestore) {
  Bytes file = Encrypt(/*public_index=*/false, {"b"});
  uint64_t begin = 0, end = 0;
  {
    MemorySource src(file);
    auto f = OpenTensors(src, providers_);
    ASSERT_TRUE(f.ok()) << f.error().message;
    auto entry = (*f)->Find("b");
    ASSERT_TRUE(entry.ok());
    begin = (*f)->index().entries[*entry].offset;
    end = begin + (*f)->index().entries[*entry].size;
  }
  // Flips the tensor's last byte right after the first read of it (the digest check).
  class ChangingSource final : public PositionalSource {
   public:
    ChangingSource(Bytes& bytes, uint64_t begin, uint64_t end) : bytes_(bytes), begin_(begin), end_(end) {}
    uint64_t size() const override { return bytes_.size(); }
    Status ReadAt(uint64_t offset, MutableByteSpan buf) const override {
      HMOD_TRY(MemorySource(bytes_).ReadAt(offset, buf));
      if (!changed_ && offset < end_ && offset + buf.size() > begin_) {
        bytes_[end_ - 1] ^= 0x01;
        changed_ = true;
      }
      return OkStatus();
    }

   private:
    Bytes& bytes_;
    uint64_t begin_, end_;
    mutable bool changed_ = false;
  };
  ChangingSource src(file, begin, end);
  auto f = OpenTensors(src, providers_);
  ASSERT_TRUE(f.ok()) << f.error().message;
  MemorySink sink;
  Result<uint64_t> r = (*f)->Restore(sink, {});
  ASSERT_FALSE(r.ok()) << "a plain tensor that changed after its digest check was restored";
  EXPECT_EQ(r.error().code, ErrorCode::kAuthFailed) << r.error().message;
  const ModelLayout layout = LayoutOfModel(model_);
  const TensorInfo* b = nullptr;
  for (const auto& t : layout.tensors) {
    if (t.name == "b") b = &t;
  }
  ASSERT_NE(b, nullptr);
  EXPECT_LE(sink.bytes.size(), b->offset) << "bytes of the changed tensor were written";
  EXPECT_TRUE(std::equal(sink.bytes.begin(), sink.bytes.end(), model_.begin()));
}

}  // namespace
}  // namespace hmod::testing
