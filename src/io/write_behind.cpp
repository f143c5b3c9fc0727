#include "io/write_behind.h"

#include <fcntl.h>

namespace hmod::detail {

void WriteBehind::Written(uint64_t written) {
  const uint64_t full = written - written % kWindow;
  if (full <= published_) return;
  published_ = full;
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  {
    std::unique_lock lock(mu_);
    target_ = full;
    progress_cv_.wait(lock, [&] { return target_ - flushed_ <= kMaxBehindWindows * kWindow; });
  }
  work_cv_.notify_one();
}

void WriteBehind::Stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_one();
  thread_.join();
}

void WriteBehind::Loop() {
  uint64_t next = 0;
  while (true) {
    uint64_t target;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || target_ > next; });
      if (target_ <= next) return;  // stopped with nothing left
      target = target_;
    }
    for (; next < target; next += kWindow) {
      {
        std::lock_guard lock(mu_);
        if (stop_) return;  // the fsync that follows does the rest
      }
      Flush(next);
      {
        std::lock_guard lock(mu_);
        flushed_ = next + kWindow;
      }
      progress_cv_.notify_one();
    }
  }
}

// Failures are ignored here: the fsync is what makes the file durable, and it reports
// every write error.
void WriteBehind::Flush(uint64_t start) {
  ::sync_file_range(fd_, static_cast<off_t>(start), kWindow, SYNC_FILE_RANGE_WRITE);
  if (start < kLagWindows * kWindow) return;
  const auto old = static_cast<off_t>(start - kLagWindows * kWindow);
  ::sync_file_range(fd_, old, kWindow,
                    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
  // Clean now: let the next windows reuse these pages.
  ::posix_fadvise(fd_, old, kWindow, POSIX_FADV_DONTNEED);
}

}  // namespace hmod::detail
