// hmodctl as a user meets it: exit codes, messages, JSON, files that must (not) exist.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/test_util.h"

namespace hmod::testing {
namespace {

using nlohmann::json;

std::string AsString(const Bytes& b) { return std::string(b.begin(), b.end()); }

class Cli : public ::testing::Test {
 protected:
  void SetUp() override { key_ = MakeKeyFile(dir_); }
  std::string Kek() const { return "file:" + key_; }
  TempDir dir_;
  std::string key_;
};

TEST_F(Cli, KeygenCreatesA0600FileAndRefusesToOverwrite) {
  struct stat st {};
  ASSERT_EQ(::stat(key_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const Bytes before = ReadFile(key_);
  CliResult again = RunCli({"keygen", "-o", key_});
  EXPECT_EQ(again.exit_code, 3);
  EXPECT_NE(again.err.find("already exists"), std::string::npos);
  EXPECT_TRUE(ReadFile(key_) == before);

  CliResult j = RunCli({"keygen", "--json", "-o", dir_ / "j.key"});
  ASSERT_EQ(j.exit_code, 0);
  auto doc = json::parse(j.out);
  EXPECT_EQ(doc["ok"], true);
  EXPECT_EQ(doc["fingerprint"].get<std::string>().size(), 32u);
  // The key bytes never appear in the output.
  EXPECT_EQ(j.out.find(AsString(ReadFile(dir_ / "j.key")).substr(200, 20)), std::string::npos);
}

TEST_F(Cli, KeyFileReadableByOthersIsRefused) {
  ASSERT_EQ(::chmod(key_.c_str(), 0644), 0);
  WriteFile(dir_ / "p", TestData(10, 1));
  CliResult r = RunCli({"encrypt", "--kek", Kek(), "-o", dir_ / "p.hmod", dir_ / "p"});
  EXPECT_EQ(r.exit_code, 8);
  EXPECT_NE(r.err.find("mode 0644"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("chmod 600"), std::string::npos) << r.err;
  EXPECT_FALSE(Exists(dir_ / "p.hmod"));
}

class CliRoundTrip : public Cli, public ::testing::WithParamInterface<std::tuple<size_t, std::string>> {};

TEST_P(CliRoundTrip, FileToFileAndStdinToStdout) {
  const auto [size, suite] = GetParam();
  const Bytes plain = TestData(size, size);
  WriteFile(dir_ / "p", plain);
  CliResult e = RunCli({"encrypt", "-q", "--kek", Kek(), "--suite", suite, "-o", dir_ / "p.hmod", dir_ / "p"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  CliResult d = RunCli({"decrypt", "-q", "--kek", Kek(), "-o", dir_ / "p.out", dir_ / "p.hmod"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_TRUE(ReadFile(dir_ / "p.out") == plain);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "p.out").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "plaintext output must be private";

  CliResult es = RunCli({"encrypt", "--kek", Kek(), "--suite", suite, "-o", "-", "-"}, AsString(plain));
  ASSERT_EQ(es.exit_code, 0) << es.err;
  CliResult ds = RunCli({"decrypt", "--kek", Kek(), "-o", "-", "-"}, es.out);
  ASSERT_EQ(ds.exit_code, 0) << ds.err;
  EXPECT_EQ(ds.out, AsString(plain));
}

INSTANTIATE_TEST_SUITE_P(
    Lengths, CliRoundTrip,
    ::testing::Combine(::testing::Values(0, 1, 16383, 16384, 16385, 32768, 3 * 1024 * 1024 + 7),
                       ::testing::Values("aes-256-gcm", "chacha20-poly1305")),
    [](const auto& info) {
      return std::to_string(std::get<0>(info.param)) + "_" +
             (std::get<1>(info.param) == "aes-256-gcm" ? "aes" : "chacha");
    });

TEST_F(Cli, InputEqualToOutputIsRefused) {
  WriteFile(dir_ / "p", TestData(100, 2));
  const Bytes before = ReadFile(dir_ / "p");
  for (const std::string& out : {dir_ / "p", dir_.path() + "/./p"}) {
    CliResult r = RunCli({"encrypt", "--kek", Kek(), "-f", "-o", out, dir_ / "p"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("same file"), std::string::npos);
    EXPECT_TRUE(ReadFile(dir_ / "p") == before);
  }
}

TEST_F(Cli, ExistingOutputNeedsForce) {
  WriteFile(dir_ / "p", TestData(100, 3));
  WriteFile(dir_ / "out", AsBytes("keep me"));
  CliResult r = RunCli({"encrypt", "--kek", Kek(), "-o", dir_ / "out", dir_ / "p"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(AsString(ReadFile(dir_ / "out")), "keep me");
  CliResult f = RunCli({"encrypt", "-q", "--kek", Kek(), "-f", "-o", dir_ / "out", dir_ / "p"});
  EXPECT_EQ(f.exit_code, 0) << f.err;
  EXPECT_NE(AsString(ReadFile(dir_ / "out")), "keep me");
}

// A device or a named pipe given as OUT is written as it is, like stdout: no temporary
// file beside /dev/null, no "already exists".
TEST_F(Cli, OutputToADeviceOrANamedPipe) {
  const Bytes plain = TestData(200000, 4);
  WriteFile(dir_ / "p", plain);
  CliResult e = RunCli({"encrypt", "-q", "--kek", Kek(), "-o", "/dev/null", dir_ / "p"});
  EXPECT_EQ(e.exit_code, 0) << e.err;
  struct stat st {};
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  ASSERT_EQ(RunCli({"encrypt", "-q", "--kek", Kek(), "-o", dir_ / "c", dir_ / "p"}).exit_code, 0);
  const std::string fifo = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  Bytes got;
  std::thread reader([&] { got = ReadFile(fifo); });
  CliResult d = RunCli({"decrypt", "-q", "--kek", Kek(), "-o", fifo, dir_ / "c"});
  reader.join();
  EXPECT_EQ(d.exit_code, 0) << d.err;
  EXPECT_TRUE(got == plain);
}

TEST_F(Cli, SeveralKeksEachOpenTheFileAndInspectListsThemWithoutAKey) {
  const std::string key2 = MakeKeyFile(dir_, "k2.key");
  WriteFile(dir_ / "p", TestData(5000, 4));
  ASSERT_EQ(RunCli({"encrypt", "-q", "--kek", Kek(), "--kek", "file:" + key2, "--context", "model=m",
                    "-o", dir_ / "p.hmod", dir_ / "p"}).exit_code, 0);
  for (const auto& k : {Kek(), "file:" + key2}) {
    CliResult v = RunCli({"verify", "--json", "--kek", k, dir_ / "p.hmod"});
    ASSERT_EQ(v.exit_code, 0) << v.err;
    auto doc = json::parse(v.out);
    EXPECT_EQ(doc["verified"], true);
    EXPECT_NE(doc["opened_by"].get<std::string>().find(k.substr(5)), std::string::npos);
  }
  CliResult i = RunCli({"inspect", "--json", dir_ / "p.hmod"});
  ASSERT_EQ(i.exit_code, 0) << i.err;
  auto doc = json::parse(i.out);
  EXPECT_EQ(doc["version"], 1);
  EXPECT_EQ(doc["context"]["model"], "m");
  EXPECT_EQ(doc["authenticated"], false);
  ASSERT_EQ(doc["wrapped_keys"].size(), 2u);
  EXPECT_EQ(doc["wrapped_keys"][0]["provider"], "file");
  EXPECT_EQ(doc["sizes"]["plaintext_bytes"], 5000);
  // The key ids are the keys' fingerprints, as keygen printed them.
  CliResult fp = RunCli({"keygen", "--json", "-o", dir_ / "k3.key"});
  EXPECT_EQ(json::parse(fp.out)["fingerprint"].get<std::string>().size(),
            doc["wrapped_keys"][1]["key_id"].get<std::string>().size());
}

TEST_F(Cli, WrongKeyWrongContextAndTamperingHaveDistinctExitCodes) {
  WriteFile(dir_ / "p", TestData(40000, 5));
  ASSERT_EQ(RunCli({"encrypt", "-q", "--kek", Kek(), "--context", "model=m", "-o", dir_ / "p.hmod",
                    dir_ / "p"}).exit_code, 0);
  const std::string other = MakeKeyFile(dir_, "other.key");
  CliResult nokey = RunCli({"decrypt", "--kek", "file:" + other, "-o", dir_ / "o1", dir_ / "p.hmod"});
  EXPECT_EQ(nokey.exit_code, 5);
  EXPECT_NE(nokey.err.find("no key provider could open this file"), std::string::npos);
  EXPECT_FALSE(Exists(dir_ / "o1"));

  CliResult ctx = RunCli({"decrypt", "--kek", Kek(), "--context", "model=x", "-o", dir_ / "o2", dir_ / "p.hmod"});
  EXPECT_EQ(ctx.exit_code, 7);
  EXPECT_FALSE(Exists(dir_ / "o2"));
  CliResult bare = RunCli({"verify", "--kek", Kek(), "--context", "version", dir_ / "p.hmod"});
  EXPECT_EQ(bare.exit_code, 7);

  Bytes bad = ReadFile(dir_ / "p.hmod");
  bad[bad.size() - 20] ^= 4;
  WriteFile(dir_ / "bad.hmod", bad);
  CliResult tampered = RunCli({"verify", "--json", "--kek", Kek(), dir_ / "bad.hmod"});
  EXPECT_EQ(tampered.exit_code, 6);
  EXPECT_NE(tampered.err.find("authentication failed"), std::string::npos);
  auto doc = json::parse(tampered.out);
  EXPECT_EQ(doc["ok"], false);
  EXPECT_EQ(doc["error"]["code"], "auth_failed");

  CliResult notmod = RunCli({"inspect", dir_ / "p"});
  EXPECT_EQ(notmod.exit_code, 4);
  EXPECT_NE(notmod.err.find("not an .hmod file"), std::string::npos);
}

TEST_F(Cli, PassphraseProvider) {
  WriteFile(dir_ / "p", TestData(20000, 6));
  const std::map<std::string, std::string> env = {{"HMOD_PASSPHRASE", "correct horse"}};
  ASSERT_EQ(RunCli({"encrypt", "-q", "--kek", "pass:", "-o", dir_ / "p.hmod", dir_ / "p"}, {}, env).exit_code, 0);
  CliResult ok = RunCli({"decrypt", "-q", "--kek", "pass:", "-o", dir_ / "o", dir_ / "p.hmod"}, {}, env);
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_TRUE(ReadFile(dir_ / "o") == ReadFile(dir_ / "p"));
  CliResult named = RunCli({"verify", "-q", "--kek", "pass:env=MY_PASS", dir_ / "p.hmod"}, {},
                           {{"MY_PASS", "correct horse"}});
  EXPECT_EQ(named.exit_code, 0) << named.err;
  CliResult wrong = RunCli({"verify", "--kek", "pass:", dir_ / "p.hmod"}, {}, {{"HMOD_PASSPHRASE", "wrong"}});
  EXPECT_EQ(wrong.exit_code, 6);
  EXPECT_NE(wrong.err.find("wrong passphrase"), std::string::npos) << wrong.err;
  CliResult argv = RunCli({"verify", "--kek", "pass:correct horse", dir_ / "p.hmod"});
  EXPECT_EQ(argv.exit_code, 2);
  EXPECT_NE(argv.err.find("never taken from the command line"), std::string::npos);
}

// Starts `hmodctl encrypt - -o OUT` reading from a pipe we hold open, waits for its temp
// file, then kills it with `sig`.
void KillMidRun(const TempDir& dir, const std::string& kek, int sig) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[0], 0);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  std::string out = dir / "out.hmod";
  std::vector<std::string> args = {HMOD_CLI_PATH, "encrypt", "-q", "--kek", kek, "-o", out, "-"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, HMOD_CLI_PATH, &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[0]);
  const Bytes chunk = TestData(1 << 20, 9);
  ASSERT_EQ(::write(fds[1], chunk.data(), chunk.size()), static_cast<ssize_t>(chunk.size()));
  bool temp_seen = false;
  for (int i = 0; i < 200 && !temp_seen; ++i) {
    for (const auto& n : dir.List()) temp_seen |= n.find(".hmod-tmp-") != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(temp_seen);
  ::kill(pid, sig);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(fds[1]);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_FALSE(Exists(out)) << "a killed run left a file under the final name";
}

TEST_F(Cli, InterruptedRunLeavesNoFiles) {
  for (int sig : {SIGTERM, SIGINT}) {
    KillMidRun(dir_, Kek(), sig);
    for (const auto& n : dir_.List()) EXPECT_EQ(n.find(".hmod-tmp-"), std::string::npos) << n;
  }
  // SIGKILL cannot be caught: a hidden temporary may remain, never the final name.
  KillMidRun(dir_, Kek(), SIGKILL);
}

TEST_F(Cli, HelpTeachesWithExamples) {
  for (const char* cmd : {"keygen", "encrypt", "decrypt", "verify", "inspect"}) {
    CliResult r = RunCli({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find("Example"), std::string::npos) << cmd;
  }
  CliResult none = RunCli({});
  EXPECT_EQ(none.exit_code, 2);
}

}  // namespace
}  // namespace hmod::testing
