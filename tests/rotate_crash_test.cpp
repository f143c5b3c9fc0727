// Crash safety of hmodctl rotate: killed (SIGKILL) at fixed points and at random moments,
// every file stays openable by exactly one of its valid key sets, with its original bytes;
// the next run finishes the job and leaves no temporary file or journal behind.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "support/library_fixture.h"
#include "support/tensor_fixture.h"

extern char** environ;

namespace hmod::testing {
namespace {

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

bool Has(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

// Decrypts `path` with the key file `key` alone; nullopt if it does not open.
std::optional<Bytes> OpenWith(const std::string& key, const std::string& path) {
  ProviderList providers = FileProviders(key);
  auto in = InputFile::Open(path);
  if (!in.ok()) return std::nullopt;
  MemorySink out;
  auto r = DecryptContainer(**in, out, providers, {});
  if (!r.ok()) return std::nullopt;
  return out.bytes;
}

// Starts hmodctl with `args` (output discarded) and returns its pid.
pid_t Spawn(const std::vector<std::string>& args) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  std::vector<std::string> argv_s = {HMOD_CLI_PATH};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, HMOD_CLI_PATH, &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

class RotateCrash : public ::testing::Test {
 protected:
  void SetUp() override {
    old_key_ = MakeKeyFile(dir_, "old.key");
    new_key_ = MakeKeyFile(dir_, "new.key");
    ::mkdir((dir_ / "models").c_str(), 0755);
  }
  std::string Old() const { return "file:" + old_key_; }
  std::string New() const { return "file:" + new_key_; }
  std::string Models() const { return dir_ / "models"; }

  void AddFile(const std::string& name, const Bytes& plain, bool per_tensor) {
    const std::string in = dir_ / (name + ".src");
    WriteFile(in, plain);
    std::vector<std::string> args = {"encrypt", "-q", "--kek", Old(), "-o", Models() + "/" + name, in};
    if (!per_tensor) args.push_back("--whole-file");
    ASSERT_EQ(RunCli(args).exit_code, 0);
    plain_[Models() + "/" + name] = plain;
  }

  // Every file opens with exactly one of the two keys, to its original bytes.
  void ExpectEveryFileWhole(const std::string& when) {
    for (const auto& [path, plain] : plain_) {
      auto by_old = OpenWith(old_key_, path), by_new = OpenWith(new_key_, path);
      EXPECT_NE(by_old.has_value(), by_new.has_value()) << path << " " << when;
      const auto& got = by_old ? by_old : by_new;
      if (got) {
        EXPECT_EQ(*got, plain) << path << " " << when;
      }
    }
  }
  void ExpectNoLeftovers() {
    for (const auto& name : ListDir(Models())) {
      EXPECT_FALSE(Has(name, ".hmod-tmp-") || Has(name, ".hmod-rewrap")) << "left behind: " << name;
    }
  }

  TempDir dir_;
  std::string old_key_, new_key_;
  std::map<std::string, Bytes> plain_;
};

TEST_F(RotateCrash, KilledAtEachStepOfAnInPlaceRewrap) {
  AddFile("a.hmod", TestData(300000, 1), false);
  const std::string file = Models() + "/a.hmod";
  for (const char* point : {"journal-written", "header-written"}) {
    CliResult killed = RunCli({"rotate", "--remove-kek", Old(), "--add-kek", New(), file}, "",
                              {{"HMOD_TEST_CRASH_AT", point}});
    EXPECT_NE(killed.exit_code, 0) << point;
    ExpectEveryFileWhole(std::string("after a kill at ") + point);
    EXPECT_TRUE(Exists(Models() + "/.a.hmod.hmod-rewrap")) << "no journal after a kill at " << point;
    CliResult rerun = RunCli({"rotate", "--json", "--remove-kek", Old(), "--add-kek", New(), file});
    EXPECT_EQ(rerun.exit_code, 0) << rerun.err;
    ExpectNoLeftovers();
    EXPECT_TRUE(OpenWith(new_key_, file).has_value());
    EXPECT_FALSE(OpenWith(old_key_, file).has_value());
    // Back to the old key for the next round.
    ASSERT_EQ(RunCli({"rotate", "--remove-kek", New(), "--add-kek", Old(), file}).exit_code, 0);
  }
}

TEST_F(RotateCrash, ATornHeaderIsFinishedFromTheJournal) {
  AddFile("a.hmod", TestData(100000, 2), false);
  const std::string file = Models() + "/a.hmod";
  RunCli({"rotate", "--remove-kek", Old(), "--add-kek", New(), file}, "", {{"HMOD_TEST_CRASH_AT", "journal-written"}});
  ASSERT_TRUE(Exists(Models() + "/.a.hmod.hmod-rewrap"));
  // What power loss mid-write could leave: part of the page new, part old (here: garbage).
  Bytes bytes = ReadFile(file);
  for (size_t i = 100; i < 300; ++i) bytes[i] ^= 0x5a;
  WriteFile(file, bytes);
  EXPECT_FALSE(OpenWith(old_key_, file).has_value());
  CliResult rerun = RunCli({"rotate", "--json", "--remove-kek", Old(), "--add-kek", New(), file});
  EXPECT_EQ(rerun.exit_code, 0) << rerun.err;
  EXPECT_TRUE(Has(rerun.out, "\"recovered_interrupted_rotation\":true")) << rerun.out;
  auto opened = OpenWith(new_key_, file);
  ASSERT_TRUE(opened.has_value());
  EXPECT_EQ(*opened, plain_[file]);
  ExpectNoLeftovers();
}

TEST_F(RotateCrash, KilledBeforeTheRenameOfANewFile) {
  AddFile("t.hmod", EveryDtypeSafetensors(), true);
  const std::string file = Models() + "/t.hmod";
  CliResult killed = RunCli({"rotate", "--reencrypt", "--remove-kek", Old(), "--add-kek", New(), file}, "",
                            {{"HMOD_TEST_CRASH_AT", "new-file-written"}});
  EXPECT_NE(killed.exit_code, 0);
  ExpectEveryFileWhole("after a kill before the rename");
  bool temp_left = false;
  for (const auto& name : ListDir(Models())) temp_left |= Has(name, ".hmod-tmp-");
  EXPECT_TRUE(temp_left) << "the kill point was not reached";
  ASSERT_EQ(RunCli({"rotate", "--reencrypt", "--remove-kek", Old(), "--add-kek", New(), file}).exit_code, 0);
  ExpectNoLeftovers();
  ExpectEveryFileWhole("after the re-run");
  EXPECT_TRUE(OpenWith(new_key_, file).has_value());
}

TEST_F(RotateCrash, KilledAtRandomMomentsOverADirectory) {
  for (int i = 0; i < 16; ++i) AddFile(Numbered("s", i, ".hmod"), TestData(200000 + i * 999, 10 + i), false);
  for (int i = 0; i < 6; ++i) AddFile(Numbered("t", i, ".hmod"), MixedGguf(32), true);
  // Each round moves every file toward one key; rounds alternate the direction, every third
  // re-encrypts. A file is valid under {old} or {new}, whichever it reached.
  const int rounds = 14;
  for (int round = 0; round < rounds; ++round) {
    const bool to_new = round % 2 == 0;
    std::vector<std::string> args = {"rotate", "-q", "-r", "--jobs", "2"};
    if (round % 3 == 2) {
      args.insert(args.end(), {"--reencrypt", "--kek", Old(), "--kek", New(), "--to-kek", to_new ? New() : Old()});
    } else {
      args.insert(args.end(), {"--remove-kek", to_new ? Old() : New(), "--add-kek", to_new ? New() : Old()});
    }
    args.push_back(Models());
    const pid_t pid = Spawn(args);
    ASSERT_GT(pid, 0);
    std::this_thread::sleep_for(std::chrono::microseconds(2000 + (round * 7919) % 60000));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ExpectEveryFileWhole(Numbered("after the kill in round ", round));
  }
  // A run to the end finishes the job and cleans up after every kill.
  CliResult finish = RunCli({"rotate", "-q", "-r", "--remove-kek", Old(), "--add-kek", New(), Models()});
  EXPECT_EQ(finish.exit_code, 0) << finish.err;
  ExpectNoLeftovers();
  for (const auto& [path, plain] : plain_) {
    auto got = OpenWith(new_key_, path);
    ASSERT_TRUE(got.has_value()) << path;
    EXPECT_EQ(*got, plain);
    EXPECT_FALSE(OpenWith(old_key_, path).has_value()) << path;
  }
}

}  // namespace
}  // namespace hmod::testing
