// hmodctl and per-tensor models as a user meets them: detection by content, --whole-file,
// inspect of public and encrypted indexes, encrypted_fraction, decrypt --tensor, malformed
// models, and per-tensor files on a pipe.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "support/tensor_fixture.h"

namespace hmod::testing {
namespace {

using nlohmann::json;

bool Has(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

class TensorCli : public ::testing::Test {
 protected:
  void SetUp() override { key_ = MakeKeyFile(dir_); }
  std::string Kek() const { return "file:" + key_; }

  // Writes `model` to dir/name, encrypts it to dir/name.hmod with `extra` flags.
  std::string EncryptFile(const Bytes& model, const std::string& name, const std::vector<std::string>& extra = {}) {
    const std::string in = dir_ / name, out = dir_ / (name + ".hmod");
    WriteFile(in, model);
    std::vector<std::string> args = {"encrypt", "-q", "--kek", Kek(), "-o", out, in};
    args.insert(args.end(), extra.begin(), extra.end());
    CliResult r = RunCli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return out;
  }

  json InspectJson(const std::vector<std::string>& args) {
    std::vector<std::string> all = {"inspect", "--json"};
    all.insert(all.end(), args.begin(), args.end());
    CliResult r = RunCli(all);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? json::parse(r.out) : json();
  }

  TempDir dir_;
  std::string key_;
};

TEST_F(TensorCli, ModelsAreDetectedByContentNotByName) {
  const Bytes st = EveryDtypeSafetensors(), gguf = MixedGguf(64);
  const struct {
    std::string name;
    const Bytes& model;
    const char* format;
  } cases[] = {{"weights.bin", st, "safetensors"}, {"model.dat", gguf, "gguf"}, {"noext", st, "safetensors"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    WriteFile(dir_ / c.name, c.model);
    CliResult e = RunCli({"encrypt", "--json", "--kek", Kek(), "-o", dir_ / (c.name + ".hmod"), dir_ / c.name});
    ASSERT_EQ(e.exit_code, 0) << e.err;
    const json j = json::parse(e.out);
    EXPECT_EQ(j["layout"], "tensors");
    EXPECT_EQ(j["model_format"], c.format);
    EXPECT_EQ(j["tensors"], LayoutOfModel(c.model).tensors.size());
    const json i = InspectJson({dir_ / (c.name + ".hmod")});
    EXPECT_EQ(i["layout"], "tensors");
    EXPECT_EQ(i["model"]["source_format"], c.format);
    EXPECT_EQ(i["model"]["index"], "encrypted");
    EXPECT_EQ(i["sizes"]["plaintext_bytes"], c.model.size());

    // --whole-file stores the same input as one opaque stream, and it still round trips.
    const std::string whole = dir_ / (c.name + ".whole.hmod");
    CliResult w = RunCli({"encrypt", "--json", "--whole-file", "--kek", Kek(), "-o", whole, dir_ / c.name});
    ASSERT_EQ(w.exit_code, 0) << w.err;
    const json wj = json::parse(w.out);
    EXPECT_EQ(wj["layout"], "stream");
    EXPECT_TRUE(wj["model_format"].is_null());
    EXPECT_EQ(InspectJson({whole})["layout"], "stream");
    CliResult d = RunCli({"decrypt", "-q", "--kek", Kek(), "-o", dir_ / (c.name + ".out"), whole});
    ASSERT_EQ(d.exit_code, 0) << d.err;
    EXPECT_TRUE(ReadFile(dir_ / (c.name + ".out")) == c.model);
  }

  // A .safetensors name on bytes that are not a model: stored whole.
  WriteFile(dir_ / "fake.safetensors", TestData(5000, 9));
  CliResult fake = RunCli({"encrypt", "--json", "--kek", Kek(), "-o", dir_ / "fake.hmod", dir_ / "fake.safetensors"});
  ASSERT_EQ(fake.exit_code, 0) << fake.err;
  EXPECT_EQ(json::parse(fake.out)["layout"], "stream");

  // A model on stdin cannot be read positionally: it is stored whole, and round trips.
  CliResult piped = RunCli({"encrypt", "--json", "--kek", Kek(), "-o", dir_ / "piped.hmod", "-"}, AsString(st));
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_EQ(json::parse(piped.out)["layout"], "stream");
  CliResult back = RunCli({"decrypt", "--kek", Kek(), "-o", "-", dir_ / "piped.hmod"});
  ASSERT_EQ(back.exit_code, 0) << back.err;
  EXPECT_EQ(back.out, AsString(st));
}

TEST_F(TensorCli, PerTensorFlagsNeedAModel) {
  WriteFile(dir_ / "m.safetensors", EveryDtypeSafetensors());
  WriteFile(dir_ / "blob", TestData(3000, 4));
  const std::vector<std::vector<std::string>> cases = {
      {"--whole-file", "--public-index", dir_ / "m.safetensors"},
      {"--whole-file", "--plaintext-tensors", "*", dir_ / "m.safetensors"},
      {"--public-index", dir_ / "blob"},
      {"--plaintext-tensors", "*.bias", dir_ / "blob"},
  };
  for (const auto& extra : cases) {
    std::vector<std::string> args = {"encrypt", "--kek", Kek(), "-o", dir_ / "out.hmod"};
    args.insert(args.end(), extra.begin(), extra.end());
    CliResult r = RunCli(args);
    EXPECT_EQ(r.exit_code, 2) << extra.back() << "\n" << r.err;
    EXPECT_TRUE(Has(r.err, "need a safetensors or GGUF input")) << r.err;
    EXPECT_FALSE(Exists(dir_ / "out.hmod"));
  }
  ExpectNoTempFiles(dir_, "refused flags");
}

TEST_F(TensorCli, InspectListsAPublicIndexWithoutAKey) {
  const Bytes model = MixedGguf(4096);
  const ModelLayout layout = LayoutOfModel(model);
  const std::string enc = EncryptFile(model, "m.gguf", {"--public-index", "--context", "model=m"});
  const json j = InspectJson({"--tensors", enc});
  EXPECT_EQ(j["authenticated"], false);
  EXPECT_EQ(j["model"]["index"], "public");
  EXPECT_EQ(j["model"]["source_format"], "gguf");
  EXPECT_EQ(j["model"]["tensor_count"], layout.tensors.size());
  ASSERT_EQ(j["tensors"].size(), layout.tensors.size());
  for (size_t i = 0; i < layout.tensors.size(); ++i) {
    const json& t = j["tensors"][i];
    EXPECT_EQ(t["name"], layout.tensors[i].name);
    EXPECT_EQ(t["dtype"], layout.tensors[i].dtype);
    EXPECT_EQ(t["shape"].get<std::vector<uint64_t>>(), layout.tensors[i].shape);
    EXPECT_EQ(t["bytes"], layout.tensors[i].size);
    EXPECT_EQ(t["encrypted"], true);
    EXPECT_EQ(t["offset"].get<uint64_t>() % 4096, 0u);
  }
  // Without --tensors: the count, no list.
  const json brief = InspectJson({enc});
  EXPECT_EQ(brief["model"]["tensor_count"], layout.tensors.size());
  EXPECT_FALSE(brief.contains("tensors"));
  // The human-readable listing names every tensor.
  CliResult text = RunCli({"inspect", "--tensors", enc});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  for (const auto& t : layout.tensors) EXPECT_TRUE(Has(text.out, t.name)) << t.name;
  EXPECT_TRUE(Has(text.out, "tensor index public"));
  // With the key the same list, authenticated.
  const json keyed = InspectJson({"--tensors", "--kek", Kek(), enc});
  EXPECT_EQ(keyed["authenticated"], true);
  EXPECT_EQ(keyed["tensors"], j["tensors"]);
}

TEST_F(TensorCli, EncryptedIndexNeedsTheKeyToListTensors) {
  const Bytes model = EveryDtypeSafetensors();
  const ModelLayout layout = LayoutOfModel(model);
  const std::string enc = EncryptFile(model, "m.safetensors");

  CliResult refused = RunCli({"inspect", "--tensors", enc});
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_TRUE(Has(refused.err, "the tensor index is encrypted")) << refused.err;
  EXPECT_TRUE(Has(refused.err, "--kek")) << refused.err;
  EXPECT_TRUE(refused.out.empty());
  CliResult refused_json = RunCli({"inspect", "--json", "--tensors", enc});
  EXPECT_EQ(refused_json.exit_code, 2);
  const json rj = json::parse(refused_json.out);
  EXPECT_EQ(rj["ok"], false);
  EXPECT_EQ(rj["error"]["code"], "usage");

  // Keyless inspect without --tensors works, but knows nothing of the tensors.
  const json bare = InspectJson({enc});
  EXPECT_EQ(bare["model"]["index"], "encrypted");
  EXPECT_FALSE(bare["model"].contains("tensor_count"));
  EXPECT_FALSE(bare.contains("tensors"));

  const json j = InspectJson({"--tensors", "--kek", Kek(), enc});
  EXPECT_EQ(j["authenticated"], true);
  EXPECT_EQ(j["model"]["tensor_count"], layout.tensors.size());
  EXPECT_EQ(j["model"]["encrypted_fraction"], 1.0);
  ASSERT_EQ(j["tensors"].size(), layout.tensors.size());
  for (size_t i = 0; i < layout.tensors.size(); ++i) {
    EXPECT_EQ(j["tensors"][i]["name"], layout.tensors[i].name);
    EXPECT_EQ(j["tensors"][i]["dtype"], layout.tensors[i].dtype);
    EXPECT_EQ(j["tensors"][i]["bytes"], layout.tensors[i].size);
  }
  // Another key cannot open it.
  const std::string other = MakeKeyFile(dir_, "other.key");
  CliResult wrong = RunCli({"inspect", "--tensors", "--kek", "file:" + other, enc});
  EXPECT_EQ(wrong.exit_code, 5) << wrong.err;
}

TEST_F(TensorCli, EncryptedFractionReflectsPlaintextTensors) {
  const Bytes model = EveryDtypeSafetensors();
  const ModelLayout layout = LayoutOfModel(model);
  uint64_t tensor_bytes = 0, bias_bytes = 0, f_bytes = 0;
  for (const auto& t : layout.tensors) {
    tensor_bytes += t.size;
    if (t.name.size() >= 4 && t.name.compare(t.name.size() - 4, 4, "bias") == 0) bias_bytes += t.size;
    if (t.name.rfind("model.t_F", 0) == 0) f_bytes += t.size;
  }
  ASSERT_GT(bias_bytes, 0u);
  ASSERT_GT(f_bytes, 0u);
  const double total = static_cast<double>(model.size());
  const double skeleton = total - static_cast<double>(tensor_bytes);

  // Encrypted index, two globs: the matching tensors are in clear.
  const std::string enc =
      EncryptFile(model, "a.safetensors", {"--plaintext-tensors", "*bias", "--plaintext-tensors", "model.t_F*"});
  const json j = InspectJson({"--tensors", "--kek", Kek(), enc});
  const double fraction = j["model"]["encrypted_fraction"].get<double>();
  EXPECT_LT(fraction, 1.0);
  EXPECT_NEAR(fraction, (total - static_cast<double>(bias_bytes + f_bytes)) / total, 1e-9);
  for (const auto& t : j["tensors"]) {
    const std::string name = t["name"];
    const bool plain = Has(name, "bias") || name.rfind("model.t_F", 0) == 0;
    EXPECT_EQ(t["encrypted"], !plain) << name;
  }
  CliResult text = RunCli({"inspect", "--tensors", "--kek", Kek(), enc});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(Has(text.out, "PLAINTEXT"));
  EXPECT_TRUE(Has(text.out, "% of the model's bytes encrypted"));

  // Public index: the skeleton is stored plain too, and it shows without a key.
  const std::string pub = EncryptFile(model, "b.safetensors", {"--public-index", "--plaintext-tensors", "*bias"});
  const json p = InspectJson({pub});
  EXPECT_NEAR(p["model"]["encrypted_fraction"].get<double>(),
              (total - skeleton - static_cast<double>(bias_bytes)) / total, 1e-9);
  EXPECT_LT(p["model"]["encrypted_fraction"].get<double>(), 1.0);
}

TEST_F(TensorCli, DecryptTensorWritesExactlyThatTensor) {
  struct Case {
    std::string name;
    Bytes model;
    std::vector<std::string> flags;
    std::vector<std::string> only;  // if set, just these tensors
  };
  const std::vector<Case> cases = {
      {"m.safetensors", EveryDtypeSafetensors(), {}, {}},
      {"p.safetensors",
       EveryDtypeSafetensors(),
       {"--public-index", "--plaintext-tensors", "*bias"},
       {"lm_head.bias", "model.scalar", "model.empty", "model.big.weight", "model.t_F4"}},
      {"m.gguf", MixedGguf(64), {"--suite", "chacha20-poly1305", "--plaintext-tensors", "blk.1.*"}, {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string enc = EncryptFile(c.model, c.name, c.flags);
    const ModelLayout layout = LayoutOfModel(c.model);
    for (const auto& t : layout.tensors) {
      if (!c.only.empty() && std::find(c.only.begin(), c.only.end(), t.name) == c.only.end()) continue;
      const std::string out = dir_ / (c.name + "." + t.name);
      CliResult r = RunCli({"decrypt", "--json", "--kek", Kek(), "--tensor", t.name, "-o", out, enc});
      ASSERT_EQ(r.exit_code, 0) << t.name << "\n" << r.err;
      EXPECT_EQ(json::parse(r.out)["plaintext_bytes"], t.size) << t.name;
      EXPECT_TRUE(ReadFile(out) == SliceOf(c.model, t.offset, t.size)) << t.name;
      struct stat st {};
      ASSERT_EQ(::stat(out.c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 0777, 0600u) << "tensor plaintext must be private";
    }
    // To stdout as well.
    CliResult s = RunCli({"decrypt", "--kek", Kek(), "--tensor", layout.tensors[3].name, "-o", "-", enc});
    ASSERT_EQ(s.exit_code, 0) << s.err;
    EXPECT_EQ(s.out, AsString(SliceOf(c.model, layout.tensors[3].offset, layout.tensors[3].size)));
  }
}

// A plain tensor larger than one read (4 MiB) comes out whole, and a flipped byte in it fails
// with nothing under the output name.
TEST_F(TensorCli, DecryptTensorOfALargeClearTensor) {
  const Bytes big = TestData(9 * 1024 * 1024 + 3, 51);
  const Bytes model = BuildSafetensors({{"clear.big", "U8", {big.size()}, big}, {"w", "F32", {4}, TestData(16, 52)}});
  const std::string enc = EncryptFile(model, "c.safetensors", {"--plaintext-tensors", "clear.*"});
  const std::string out = dir_ / "big.bin";
  CliResult r = RunCli({"decrypt", "-q", "--kek", Kek(), "--tensor", "clear.big", "-o", out, enc});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(out), big);
  std::remove(out.c_str());
  Bytes bytes = ReadFile(enc);
  auto at = std::search(bytes.begin(), bytes.end(), big.begin(), big.begin() + 4096);
  ASSERT_NE(at, bytes.end());
  at[5 * 1024 * 1024] ^= 1;
  WriteFile(enc, bytes);
  CliResult bad = RunCli({"decrypt", "-q", "--kek", Kek(), "--tensor", "clear.big", "-o", out, enc});
  EXPECT_EQ(bad.exit_code, 6) << bad.err;
  EXPECT_FALSE(Exists(out));
}

TEST_F(TensorCli, DecryptTensorThatDoesNotExistFails) {
  const std::string enc = EncryptFile(EveryDtypeSafetensors(), "m.safetensors");
  for (const std::string name : {"no.such.tensor", "model.t_f32", "model"}) {
    const std::string out = dir_ / "out.bin";
    CliResult r = RunCli({"decrypt", "--kek", Kek(), "--tensor", name, "-o", out, enc});
    EXPECT_EQ(r.exit_code, 2) << name << "\n" << r.err;
    EXPECT_TRUE(Has(r.err, "no tensor named '" + name + "'")) << r.err;
    EXPECT_TRUE(Has(r.err, "hmodctl: hint: ")) << r.err;
    EXPECT_FALSE(Exists(out)) << name;
    CliResult s = RunCli({"decrypt", "--kek", Kek(), "--tensor", name, "-o", "-", enc});
    EXPECT_EQ(s.exit_code, 2);
    EXPECT_TRUE(s.out.empty()) << "wrote " << s.out.size() << " bytes for a missing tensor";
  }
  ExpectNoTempFiles(dir_, "missing tensor");

  // --tensor on a whole-file .hmod.
  WriteFile(dir_ / "blob", TestData(100, 5));
  ASSERT_EQ(RunCli({"encrypt", "-q", "--kek", Kek(), "-o", dir_ / "blob.hmod", dir_ / "blob"}).exit_code, 0);
  CliResult whole = RunCli({"decrypt", "--kek", Kek(), "--tensor", "x", "-o", dir_ / "x.bin", dir_ / "blob.hmod"});
  EXPECT_EQ(whole.exit_code, 2) << whole.err;
  EXPECT_TRUE(Has(whole.err, "whole file")) << whole.err;
  EXPECT_FALSE(Exists(dir_ / "x.bin"));
}

TEST_F(TensorCli, ContextIsEnforcedForWholeAndSingleTensorDecrypt) {
  const std::string enc = EncryptFile(MixedGguf(0), "m.gguf", {"--context", "model=llama"});
  CliResult whole = RunCli({"decrypt", "--kek", Kek(), "--context", "model=mistral", "-o", dir_ / "o1", enc});
  EXPECT_EQ(whole.exit_code, 7) << whole.err;
  EXPECT_FALSE(Exists(dir_ / "o1"));
  CliResult one = RunCli({"decrypt", "--kek", Kek(), "--context", "model=mistral", "--tensor", "output_norm.weight",
                          "-o", dir_ / "o2", enc});
  EXPECT_EQ(one.exit_code, 7) << one.err;
  EXPECT_FALSE(Exists(dir_ / "o2"));
  CliResult ok = RunCli({"decrypt", "-q", "--kek", Kek(), "--context", "model=llama", "--tensor", "output_norm.weight",
                         "-o", dir_ / "o3", enc});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST_F(TensorCli, MalformedModelFailsEncryptWithAClearMessage) {
  // safetensors: tensor b [8, 24) overlaps tensor a [0, 16).
  const std::string overlapping =
      R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})";
  GgufWriter gguf;
  gguf.Header(3, 2, 0).TensorInfo("a", {16}, 0, 0).TensorInfo("b", {8}, 0, 32).PadTo(32).Zeros(96);
  const struct {
    std::string name;
    Bytes bytes;
    std::string message;
    const char* format;
  } cases[] = {
      {"bad.safetensors", FrameSafetensors(overlapping, TestData(24, 1)), "tensor 'b' [8, 24) overlaps tensor 'a' [0, 16)",
       "safetensors"},
      {"bad.bin", FrameSafetensors(R"({"t":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})", TestData(4, 2)),
       "F33", "safetensors"},
      {"bad.gguf", gguf.bytes(), "overlaps tensor 'a'", "gguf"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    WriteFile(dir_ / c.name, c.bytes);
    const std::string out = dir_ / (c.name + ".hmod");
    CliResult r = RunCli({"encrypt", "--kek", Kek(), "-o", out, dir_ / c.name});
    EXPECT_EQ(r.exit_code, 4) << r.err;
    EXPECT_TRUE(Has(r.err, "hmodctl: error: ")) << r.err;
    EXPECT_TRUE(Has(r.err, c.message)) << r.err;
    EXPECT_TRUE(Has(r.err, std::string("looks like a ") + c.format + " model")) << r.err;
    EXPECT_TRUE(Has(r.err, "--whole-file")) << "the hint names the way out\n" << r.err;
    EXPECT_FALSE(Exists(out)) << "output exists after a failed encrypt";
    ExpectNoTempFiles(dir_, c.name);

    CliResult j = RunCli({"encrypt", "--json", "--kek", Kek(), "-o", out, dir_ / c.name});
    EXPECT_EQ(j.exit_code, 4);
    const json doc = json::parse(j.out);
    EXPECT_EQ(doc["error"]["code"], "format");
    EXPECT_TRUE(Has(doc["error"]["message"].get<std::string>(), c.message));
    EXPECT_FALSE(Exists(out));

    // As opaque bytes it is fine.
    CliResult w = RunCli({"encrypt", "--json", "--whole-file", "--kek", Kek(), "-o", out, dir_ / c.name});
    ASSERT_EQ(w.exit_code, 0) << w.err;
    EXPECT_EQ(json::parse(w.out)["layout"], "stream");
  }
}

TEST_F(TensorCli, PerTensorFileOnAPipeFailsClearly) {
  const Bytes model = EveryDtypeSafetensors();
  const std::string enc = EncryptFile(model, "m.safetensors");
  const std::string bytes = AsString(ReadFile(enc));

  CliResult to_stdout = RunCli({"decrypt", "--kek", Kek(), "-o", "-", "-"}, bytes);
  EXPECT_EQ(to_stdout.exit_code, 4) << to_stdout.err;
  EXPECT_TRUE(Has(to_stdout.err, "must be read from a file, not a pipe")) << to_stdout.err;
  EXPECT_TRUE(Has(to_stdout.err, "save it to a file first")) << to_stdout.err;
  EXPECT_TRUE(to_stdout.out.empty()) << "released " << to_stdout.out.size() << " bytes";

  CliResult to_file = RunCli({"decrypt", "--json", "--kek", Kek(), "-o", dir_ / "out", "-"}, bytes);
  EXPECT_EQ(to_file.exit_code, 4);
  EXPECT_EQ(json::parse(to_file.out)["error"]["code"], "unsupported");
  EXPECT_FALSE(Exists(dir_ / "out"));
  ExpectNoTempFiles(dir_, "pipe");

  CliResult one = RunCli({"decrypt", "--kek", Kek(), "--tensor", "model.scalar", "-o", "-", "-"}, bytes);
  EXPECT_EQ(one.exit_code, 4) << one.err;
  EXPECT_TRUE(Has(one.err, "not a pipe")) << one.err;
  EXPECT_TRUE(one.out.empty());

  CliResult verify = RunCli({"verify", "--kek", Kek(), "-"}, bytes);
  EXPECT_EQ(verify.exit_code, 4) << verify.err;
  EXPECT_TRUE(Has(verify.err, "not a pipe")) << verify.err;

  // The header alone can still be inspected from a pipe.
  CliResult inspect = RunCli({"inspect", "--json", "-"}, bytes);
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  EXPECT_EQ(json::parse(inspect.out)["layout"], "tensors");
}

}  // namespace
}  // namespace hmod::testing
