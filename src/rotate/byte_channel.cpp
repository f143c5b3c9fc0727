#include "rotate/byte_channel.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

namespace hmod::rotate {
namespace {
void Wipe(Bytes& b) {
  if (!b.empty()) sodium_memzero(b.data(), b.size());
}
}  // namespace

ByteChannel::~ByteChannel() {
  for (auto& b : queue_) Wipe(b);
}

Status ByteChannel::Write(ByteSpan data) {
  if (data.empty()) return OkStatus();
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return abandoned_ || queue_.size() < max_buffers_; });
  if (abandoned_) return MakeError(ErrorCode::kIo, "the re-encryption stopped");
  queue_.emplace_back(data.begin(), data.end());
  cv_.notify_all();
  return OkStatus();
}

void ByteChannel::Close(Status status) {
  std::lock_guard lock(mu_);
  closed_ = std::move(status);
  cv_.notify_all();
}

void ByteChannel::Abandon() {
  std::lock_guard lock(mu_);
  abandoned_ = true;
  cv_.notify_all();
}

Result<size_t> ByteChannel::Read(MutableByteSpan buf) {
  size_t done = 0;
  std::unique_lock lock(mu_);
  while (done < buf.size()) {
    cv_.wait(lock, [&] { return !queue_.empty() || closed_.has_value(); });
    if (closed_ && !closed_->ok()) return closed_->error();  // the decryption failed
    if (queue_.empty()) break;                              // clean end
    Bytes& head = queue_.front();
    const size_t n = std::min(buf.size() - done, head.size() - head_used_);
    std::memcpy(buf.data() + done, head.data() + head_used_, n);
    done += n;
    head_used_ += n;
    if (head_used_ == head.size()) {
      Wipe(head);
      queue_.pop_front();
      head_used_ = 0;
      cv_.notify_all();
    }
  }
  return done;
}

}  // namespace hmod::rotate
