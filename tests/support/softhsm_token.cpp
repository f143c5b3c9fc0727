#include "support/softhsm_token.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

extern char** environ;

namespace hmod::testing {

ProcessResult RunProcess(const std::vector<std::string>& args, const std::map<std::string, std::string>& env) {
  ProcessResult result;
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) || ::pipe2(err_pipe, O_CLOEXEC)) {
    result.err = "pipe failed";
    return result;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);

  std::vector<std::string> argv_s = args;
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::map<std::string, std::string> merged;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    const auto eq = kv.find('=');
    if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : env) merged[k] = v;
  std::vector<std::string> env_s;
  for (const auto& [k, v] : merged) env_s.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    result.exit_code = 127;
    result.err = "cannot run " + args[0] + ": " + std::strerror(rc);
    return result;
  }
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buf[4096];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

SoftHsmToken::SoftHsmToken(std::string label) : label_(std::move(label)) {
  const std::string tokens = dir_ / "tokens";
  if (::mkdir(tokens.c_str(), 0700) != 0) {
    error_ = "cannot create " + tokens;
    return;
  }
  conf_ = dir_ / "softhsm2.conf";
  const std::string conf_text = "directories.tokendir = " + tokens +
                                "\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n";
  WriteFile(conf_, AsBytes(conf_text), 0600);

  ProcessResult init = RunProcess({"softhsm2-util", "--init-token", "--free", "--label", label_, "--pin",
                                   kSoftHsmUserPin, "--so-pin", kSoftHsmSoPin},
                                  env());
  if (init.exit_code == 127) {
    error_ = "softhsm2-util is not installed (" + init.err +
             "); the PKCS#11 tests need it: apt-get install softhsm2 (scripts/install-deps.sh)";
    return;
  }
  if (init.exit_code != 0) {
    error_ = "softhsm2-util --init-token failed (exit " + std::to_string(init.exit_code) + "): " + init.err + init.out;
    return;
  }
  // Slot ids change on init; the label is what finds the token.
  ProcessResult show = RunProcess({"softhsm2-util", "--show-slots"}, env());
  std::istringstream lines(show.out);
  std::string line, serial;
  while (std::getline(lines, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon), value = line.substr(colon + 1);
    key.erase(0, key.find_first_not_of(' '));
    value.erase(0, value.find_first_not_of(' '));
    while (!value.empty() && value.back() == ' ') value.pop_back();
    if (key == "Serial number") serial = value;
    if (key == "Label" && value == label_) serial_ = serial;
  }
  if (serial_.empty()) {
    error_ = "softhsm2-util --show-slots does not list a token labelled '" + label_ + "':\n" + show.out + show.err;
    return;
  }
  if (const char* old = std::getenv("SOFTHSM2_CONF")) {
    had_old_conf_ = true;
    old_conf_ = old;
  }
  ::setenv("SOFTHSM2_CONF", conf_.c_str(), 1);
}

SoftHsmToken::~SoftHsmToken() {
  if (!ok()) return;
  if (had_old_conf_) {
    ::setenv("SOFTHSM2_CONF", old_conf_.c_str(), 1);
  } else {
    ::unsetenv("SOFTHSM2_CONF");
  }
}

std::string SoftHsmToken::Uri(const std::string& object, const std::string& query) const {
  return "pkcs11:token=" + label_ + ";object=" + object + "?module-path=" + kSoftHsmModule +
         (query.empty() ? "" : "&" + query);
}

}  // namespace hmod::testing
