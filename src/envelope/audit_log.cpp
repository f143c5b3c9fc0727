// The audit log: JSON lines through spdlog's file sink, flushed per line.
#include "hmod/audit_log.h"

#include <fcntl.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

namespace hmod {

struct AuditLog::Impl {
  std::shared_ptr<spdlog::logger> logger;
};

Result<std::shared_ptr<AuditLog>> AuditLog::Open(const std::string& path) {
  // Create it private first: spdlog would create it with the umask's permissions.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return MakeError(ErrorCode::kIo, "cannot open audit log " + path + ": " + std::strerror(errno));
  ::close(fd);
  std::shared_ptr<AuditLog> log(new AuditLog());
  log->impl_ = std::make_unique<Impl>();
  try {
    auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, /*truncate=*/false);
    log->impl_->logger = std::make_shared<spdlog::logger>("hmod-audit", sink);
    log->impl_->logger->set_pattern("%v");
    log->impl_->logger->flush_on(spdlog::level::info);
  } catch (const spdlog::spdlog_ex& e) {
    return MakeError(ErrorCode::kIo, std::string("cannot open audit log: ") + e.what());
  }
  return log;
}

AuditLog::~AuditLog() = default;

void AuditLog::Record(const std::string& operation, const KeyProvider& provider, const std::string& file,
                      const EncryptionContext* context, const std::string& outcome) {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  nlohmann::json j = {{"time_unix_ms", ms},
                      {"operation", operation},
                      {"provider", provider.provider_id()},
                      {"key_id", provider.key_id()},
                      {"file", file},
                      {"outcome", outcome}};
  nlohmann::json ctx = nlohmann::json::object();
  if (context) {
    for (const auto& [k, v] : *context) ctx[k] = v;
  }
  j["context"] = ctx;
  impl_->logger->info(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

namespace {

class AuditedProvider final : public KeyProvider {
 public:
  AuditedProvider(std::unique_ptr<KeyProvider> inner, std::shared_ptr<AuditLog> log, std::string file)
      : inner_(std::move(inner)), log_(std::move(log)), file_(std::move(file)) {}
  std::string provider_id() const override { return inner_->provider_id(); }
  std::string key_id() const override { return inner_->key_id(); }
  std::string description() const override { return inner_->description(); }
  bool is_local() const override { return inner_->is_local(); }
  std::vector<WrappedKey> ExternalRecords() const override { return inner_->ExternalRecords(); }

  Result<WrappedKey> Wrap(const SecretBytes& data_key, const WrapContext& ctx) override {
    auto r = inner_->Wrap(data_key, ctx);
    log_->Record("wrap", *inner_, file_, ctx.context, r.ok() ? "ok" : ErrorCodeName(r.error().code));
    return r;
  }
  Result<SecretBytes> Unwrap(const WrappedKey& record, const WrapContext& ctx) override {
    auto r = inner_->Unwrap(record, ctx);
    // "Not mine" is not a use of this key: only attempts on its own records are logged.
    if (r.ok() || r.error().code != ErrorCode::kNoMatchingKey) {
      log_->Record("unwrap", *inner_, file_, ctx.context, r.ok() ? "ok" : ErrorCodeName(r.error().code));
    }
    return r;
  }

 private:
  std::unique_ptr<KeyProvider> inner_;
  std::shared_ptr<AuditLog> log_;
  std::string file_;
};

}  // namespace

void AuditProviders(ProviderList& providers, std::shared_ptr<AuditLog> log, const std::string& file) {
  for (auto& p : providers) p = std::make_unique<AuditedProvider>(std::move(p), log, file);
}

}  // namespace hmod
