// hmodctl rotate: re-wrap (default) or re-encrypt many .hmod files (docs/ROTATION.md).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "cli/rotate_legacy.h"
#include "cli/rotate_targets.h"
#include "hmod/rotate.h"
#include "hmod/signature.h"
#include "keys/locked_provider.h"

namespace hmod::cli {
namespace {

struct RotateCliOptions {
  std::vector<std::string> paths;
  std::vector<std::string> keks, add, remove, to;
  bool reencrypt = false;
  bool dry_run = false;
  std::string sign_key;
  bool from_legacy = false;
  bool keep_legacy = false;
  std::string legacy_key;
  std::string legacy_aad;
  std::string state;
  unsigned jobs = 0;
  unsigned threads = 0;
  TargetOptions targets;
  KeyOptions keys;
  OutputOptions out;
};

// What one file ended as, for the report.
struct FileReport {
  std::string path;
  std::optional<RotateResult> result;
  std::optional<Error> error;
};

// --state FILE: the file ids a re-encryption produced, one hex id per line, appended and
// fsynced as each file is committed, so that a re-run skips what an interrupted run did.
class RotationState {
 public:
  static Result<std::unique_ptr<RotationState>> Open(const std::string& path) {
    auto st = std::unique_ptr<RotationState>(new RotationState);
    if (path.empty()) return st;
    {
      std::ifstream in(path);
      std::string line;
      while (std::getline(in, line)) {
        if (line.size() == 2 * kFileIdBytes) st->done_.insert(line);
      }
    }
    st->fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (st->fd_ < 0) return MakeError(ErrorCode::kIo, "cannot open the --state file " + path + ": " + std::strerror(errno));
    return st;
  }
  ~RotationState() {
    if (fd_ >= 0) ::close(fd_);
  }
  const std::set<std::string>* done() const { return fd_ >= 0 ? &done_ : nullptr; }
  void Record(const std::string& file_id) {
    if (fd_ < 0) return;
    std::lock_guard lock(mu_);
    const std::string line = file_id + "\n";
    // Best effort: losing a line only means that file is re-encrypted again on a re-run.
    if (::write(fd_, line.data(), line.size()) == static_cast<ssize_t>(line.size())) ::fdatasync(fd_);
  }

 private:
  RotationState() = default;
  std::set<std::string> done_;
  std::mutex mu_;
  int fd_ = -1;
};

// One worker's key providers. Providers are built once per worker so that network and
// token sessions run in parallel; a provider that cannot be built twice (pass:fd=N reads
// its descriptor once) makes the workers share the first set, one call at a time.
struct WorkerKeys {
  ProviderList open, add;
  std::vector<std::string> remove;  // "provider:key-id" or a bare key id
};

Result<WorkerKeys> BuildWorkerKeys(const RotateCliOptions& o) {
  WorkerKeys k;
  std::vector<std::string> open_uris = o.keks;
  for (const auto& spec : o.remove) {
    // A --remove-kek URI that still resolves (its key file exists) both names the record to
    // drop and can open the file: "rotate --remove-kek file:old --add-kek file:new" just works.
    auto p = ProviderFromUri(spec);
    if (p.ok()) {
      k.remove.push_back((*p)->provider_id() + ":" + (*p)->key_id());
      open_uris.push_back(spec);
    } else {
      k.remove.push_back(spec);
    }
  }
  if (open_uris.empty() && !o.from_legacy) {
    return MakeError(ErrorCode::kUsage, "no key to open the files with",
                     "pass --kek URI (a KEK that opens them now), or --remove-kek URI of the old key");
  }
  if (!open_uris.empty()) {
    HMOD_ASSIGN_OR_RETURN(k.open, BuildProviders(open_uris, o.keys, "", true));
  }
  const auto& new_uris = o.to.empty() ? o.add : o.to;
  if (!new_uris.empty()) {
    HMOD_ASSIGN_OR_RETURN(k.add, BuildProviders(new_uris, o.keys, "", false));
  }
  return k;
}


// A one-line "n/total" counter on stderr when it is a terminal.
class FileProgress {
 public:
  FileProgress(size_t total, bool quiet) : total_(total), on_(!quiet && ::isatty(STDERR_FILENO) && total > 1) {}
  void Done(size_t failed) {
    if (!on_) return;
    std::lock_guard lock(mu_);
    ++done_;
    std::fprintf(stderr, "\rrotating: %zu/%zu files (%zu failed) ", done_, total_, failed);
    if (done_ == total_) std::fputs("\n", stderr);
  }

 private:
  std::mutex mu_;
  size_t total_, done_ = 0;
  bool on_;
};

std::string Plan(const RotateResult& r) {
  std::string added, removed;
  for (const auto& k : r.keys_after) {
    if (std::find(r.keys_before.begin(), r.keys_before.end(), k) == r.keys_before.end()) added += " +" + k;
  }
  for (const auto& k : r.keys_before) {
    if (std::find(r.keys_after.begin(), r.keys_after.end(), k) == r.keys_after.end()) removed += " -" + k;
  }
  return added + removed;
}

nlohmann::json FileJson(const FileReport& f) {
  nlohmann::json j = {{"path", f.path}};
  if (f.error) {
    j["result"] = "failed";
    j["error"] = {{"code", ErrorCodeName(f.error->code)}, {"message", f.error->message}};
    if (!f.error->hint.empty()) j["error"]["hint"] = f.error->hint;
    return j;
  }
  const RotateResult& r = *f.result;
  j["result"] = RotateOutcomeName(r.outcome);
  j["reason"] = r.reason;
  if (!r.method.empty()) j["method"] = r.method;
  if (!r.opened_by.empty()) j["opened_by"] = r.opened_by;
  if (!r.file_id.empty()) j["file_id"] = r.file_id;
  j["keys_before"] = r.keys_before;
  j["keys_after"] = r.keys_after;
  j["bytes_written"] = r.bytes_written;
  if (r.recovered) j["recovered_interrupted_rotation"] = true;
  return j;
}

int RunRotate(RotateCliOptions& o) {
  auto fail = [&](const Error& e) { return ReportError(e, o.out); };
  if (!o.to.empty() && (!o.add.empty() || !o.remove.empty())) {
    return fail(MakeError(ErrorCode::kUsage, "--to-kek replaces the whole key set and excludes --add-kek and --remove-kek"));
  }
  if (o.from_legacy && o.to.empty() && o.add.empty()) {
    return fail(MakeError(ErrorCode::kUsage, "--from-legacy needs the KEKs of the new .hmod files",
                          "give them with --to-kek URI (repeatable)"));
  }
  if (o.from_legacy && (o.reencrypt || !o.remove.empty())) {
    return fail(MakeError(ErrorCode::kUsage, "--from-legacy makes new files: --reencrypt and --remove-kek do not apply"));
  }
  LegacyRotateOptions legacy;
  legacy.keys.key_file = o.legacy_key;
  if (!o.legacy_aad.empty()) legacy.keys.aad = Bytes(o.legacy_aad.begin(), o.legacy_aad.end());
  legacy.keep_legacy = o.keep_legacy;
  legacy.dry_run = o.dry_run;
  legacy.stream.threads = o.threads;
  o.targets.include_legacy = o.from_legacy;
  if (o.to.empty() && o.add.empty() && o.remove.empty() && !o.reencrypt) {
    return fail(MakeError(ErrorCode::kUsage, "nothing to change",
                          "give --add-kek, --remove-kek or --to-kek (re-wrap), and/or --reencrypt"));
  }
  if (o.paths.empty() && o.targets.manifest.empty()) {
    return fail(MakeError(ErrorCode::kUsage, "no file to rotate", "give files, directories with -r, or --manifest FILE"));
  }
  std::optional<SigningKey> signer;
  if (!o.sign_key.empty()) {
    auto k = LoadSigningKey(o.sign_key);
    if (!k.ok()) return fail(k.error());
    signer = std::move(*k);
  }
  auto files = CollectTargets(o.paths, o.targets);
  if (!files.ok()) return fail(files.error());
  auto state = RotationState::Open(o.dry_run ? "" : o.state);
  if (!state.ok()) return fail(state.error());

  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const size_t jobs = std::max<size_t>(1, std::min<size_t>(o.jobs ? o.jobs : cores, files->size()));
  // Each worker uses its own providers (parallel network and token sessions), behind its own
  // uncontended lock; a worker that cannot build them borrows worker 0's, behind its lock.
  std::vector<WorkerKeys> owned;
  owned.reserve(jobs);
  std::vector<std::mutex> locks(jobs);
  std::vector<std::pair<WorkerKeys*, std::mutex*>> view;
  for (size_t w = 0; w < jobs; ++w) {
    auto k = BuildWorkerKeys(o);
    if (k.ok()) {
      owned.push_back(std::move(*k));
      view.emplace_back(&owned.back(), &locks[owned.size() - 1]);
    } else if (w == 0) {
      return fail(k.error());
    } else {
      view.emplace_back(&owned[0], &locks[0]);
    }
  }

  std::vector<FileReport> reports(files->size());
  std::atomic<size_t> next{0}, failed{0};
  FileProgress progress(files->size(), o.out.quiet || o.out.json);
  auto work = [&](size_t w) {
    WorkerKeys& keys = *view[w].first;
    std::mutex& lock = *view[w].second;
    for (size_t i = next++; i < files->size(); i = next++) {
      RotateRequest request;
      request.mode = o.reencrypt ? RotateMode::kReencrypt : RotateMode::kRewrap;
      request.change.replace = !o.to.empty();
      request.change.add = LockEach(keys.add, lock);
      request.change.remove = keys.remove;
      request.open = LockEach(keys.open, lock);
      request.sign_key = signer ? &*signer : nullptr;
      request.dry_run = o.dry_run;
      request.stream.threads = o.threads;
      request.done_file_ids = (*state)->done();
      FileReport& rep = reports[i];
      rep.path = (*files)[i];
      auto r = o.from_legacy ? RotateLegacyFile(rep.path, request.change.add, legacy) : RotateFile(rep.path, request);
      if (r.ok()) {
        if (o.reencrypt && r->outcome == RotateOutcome::kRotated) (*state)->Record(r->file_id);
        rep.result = std::move(*r);
      } else {
        rep.error = r.error();
        ++failed;
      }
      progress.Done(failed);
    }
  };
  std::vector<std::thread> pool;
  for (size_t w = 1; w < jobs; ++w) pool.emplace_back(work, w);
  work(0);
  for (auto& t : pool) t.join();

  size_t counts[3] = {0, 0, 0};  // by RotateOutcome
  int exit_code = kExitOk;
  for (const auto& r : reports) {
    if (r.result) ++counts[static_cast<int>(r.result->outcome)];
    if (r.error && exit_code == kExitOk) exit_code = ExitCodeFor(r.error->code);
  }
  if (o.out.json) {
    nlohmann::json j = {{"ok", failed == 0}, {"dry_run", o.dry_run},
                        {"mode", o.reencrypt ? "re-encrypt" : "re-wrap"}, {"files", nlohmann::json::array()}};
    for (const auto& r : reports) j["files"].push_back(FileJson(r));
    j["summary"] = {{"rotated", counts[0]}, {"skipped", counts[1]}, {"would_rotate", counts[2]},
                    {"failed", failed.load()}};
    if (exit_code != kExitOk) j["exit_code"] = exit_code;
    PrintJson(j);
    return exit_code;
  }
  for (const auto& r : reports) {
    if (r.error) {
      std::fprintf(stderr, "hmodctl: error: %s: %s\n", r.path.c_str(), r.error->message.c_str());
      if (!r.error->hint.empty()) std::fprintf(stderr, "hmodctl: hint: %s\n", r.error->hint.c_str());
      continue;
    }
    if (o.out.quiet) continue;
    const RotateResult& res = *r.result;
    std::printf("%-12s %-15s %s%s\n", RotateOutcomeName(res.outcome), res.method.empty() ? "-" : res.method.c_str(),
                r.path.c_str(), res.outcome == RotateOutcome::kSkipped ? (" (" + res.reason + ")").c_str()
                                                                       : Plan(res).c_str());
  }
  if (!o.out.quiet) {
    std::printf("%s%zu rotated, %zu skipped, %zu failed, %zu files\n", o.dry_run ? "dry run: " : "",
                o.dry_run ? counts[2] : counts[0], counts[1], failed.load(), reports.size());
  }
  return exit_code;
}

}  // namespace

void SetupRotate(CLI::App& sub, std::function<int()>& run) {
  auto o = std::make_shared<RotateCliOptions>();
  sub.description(
      "Change who can open .hmod files, without ever leaving a file unopenable.\n"
      "\n"
      "RE-WRAP (default): the data key stays; it is unwrapped with a current KEK and wrapped\n"
      "for the new set. Only the header is rewritten (one 4 KiB page, in place); not one payload\n"
      "byte changes, so rotating a 100 GiB model takes milliseconds. Use it when a KEK is\n"
      "retired, a team member leaves, or keys move to a KMS. Anyone who kept a copy of the\n"
      "DATA key can still read the file.\n"
      "\n"
      "RE-ENCRYPT (--reencrypt): a new data key and file id; every payload byte is decrypted\n"
      "and encrypted again (streaming, no plaintext on disk), keeping the encryption context,\n"
      "the per-tensor layout and which tensors are in clear. Use it when the data key itself\n"
      "may have leaked. It costs a decrypt plus an encrypt of the file.\n"
      "\n"
      "Safe to interrupt: every file is always in its old or its new state, and a re-run skips\n"
      "files already done (re-wrap) and cleans up after a killed run. Removing the last key\n"
      "that opens a file is refused.\n"
      "\n"
      "Examples:\n"
      "  hmodctl rotate --remove-kek file:old.key --add-kek file:new.key model.hmod\n"
      "  hmodctl rotate -r --kek file:old.key --to-kek aws-kms:alias/models --jobs 4 /srv/models\n"
      "  hmodctl rotate --reencrypt --kek file:team.key model.hmod\n"
      "  hmodctl rotate --dry-run -r --remove-kek 3f9a...c1 --add-kek file:new.key /srv/models\n"
      "  hmodctl rotate --manifest paths.txt --shard $JOB_COMPLETION_INDEX/16 --kek ... --add-kek ...\n"
      "  hmodctl rotate --from-legacy -r --legacy-key raw.key --to-kek file:team.key /srv/old-models");
  sub.add_option("paths", o->paths, "Files, or directories with -r")->type_name("PATH...");
  sub.add_option("--kek", o->keks, "A KEK that opens the files now (repeatable)")->type_name("URI")
      ->allow_extra_args(false);
  sub.add_option("--add-kek", o->add, "Also wrap the data key for this KEK (repeatable)")->type_name("URI")
      ->allow_extra_args(false);
  sub.add_option("--remove-kek", o->remove,
                 "Drop the wrapped key of this KEK: a URI, a key id, or provider:key-id as 'inspect' shows (repeatable)")
      ->type_name("URI|KEY-ID")
      ->allow_extra_args(false);
  sub.add_option("--to-kek", o->to, "Replace the whole set: exactly these KEKs afterwards (repeatable)")->type_name("URI")
      ->allow_extra_args(false);
  sub.add_flag("--reencrypt", o->reencrypt, "New data key; re-encrypt every payload byte (see above)");
  sub.add_option("--sign-key", o->sign_key, "Re-sign signed per-tensor files with this Ed25519 key")->type_name("FILE");
  sub.add_flag("-r,--recursive", o->targets.recursive, "Rotate every .hmod file under the directories given");
  sub.add_option("-j,--jobs", o->jobs, "Files rotated in parallel (default: one per core)")->type_name("N");
  sub.add_option("--threads", o->threads, "Crypto threads per re-encrypted file (default: one per core)")->type_name("N");
  sub.add_option("--state", o->state,
                 "Re-encrypt: record the new file ids in FILE, and skip files already listed there "
                 "(resume an interrupted run by giving the same FILE)")
      ->type_name("FILE");
  sub.add_flag("-n,--dry-run", o->dry_run, "Open every file and print the plan; write nothing");
  sub.add_option("--manifest", o->targets.manifest, "Read the paths to rotate from FILE, one per line")->type_name("FILE");
  sub.add_option("--shard", o->targets.shard,
                 "With --manifest: only lines I, I+N, I+2N... (0-based), for Kubernetes Indexed Jobs, Slurm arrays")
      ->type_name("I/N");
  sub.add_flag("--from-legacy", o->from_legacy,
               "Convert legacy ENCMODEL/ENVMODEL files to .hmod (per tensor for models) wrapped for --to-kek; "
               "the recorded SHA-256 is checked before the legacy file is removed (docs/LEGACY.md)");
  sub.add_option("--legacy-key", o->legacy_key, "ENCMODEL: the raw AES-256 key file (mode 0600)")->type_name("FILE");
  sub.add_option("--legacy-aad", o->legacy_aad, "ENCMODEL: the associated data the files were encrypted with")
      ->type_name("STRING");
  sub.add_flag("--keep-legacy", o->keep_legacy, "With --from-legacy: keep the legacy files after conversion");
  AddKeyOptions(sub, o->keys, true);
  AddOutputOptions(sub, o->out);
  run = [o] { return RunRotate(*o); };
}

}  // namespace hmod::cli
