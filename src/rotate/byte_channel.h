// A bounded in-memory pipe between two threads: one decrypts into it, the other encrypts from
// it, so a re-encryption streams in constant memory with no plaintext on disk.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include "hmod/io.h"

namespace hmod::rotate {

class ByteChannel {
 public:
  explicit ByteChannel(size_t max_buffers = 8) : max_buffers_(max_buffers) {}
  ~ByteChannel();

  // Producer side. Write fails once the consumer has given up.
  Status Write(ByteSpan data);
  // Ends the stream: with OkStatus the consumer sees end of input, else that error.
  void Close(Status status);

  // Consumer side: fills `buf` unless the stream ends first; 0 at a clean end.
  Result<size_t> Read(MutableByteSpan buf);
  // The consumer stops early (its own failure): the producer's next Write fails.
  void Abandon();

  class Sink final : public ByteSink {
   public:
    explicit Sink(ByteChannel& c) : c_(c) {}
    Status Write(ByteSpan data) override { return c_.Write(data); }
   private:
    ByteChannel& c_;
  };
  class Source final : public ByteSource {
   public:
    explicit Source(ByteChannel& c) : c_(c) {}
    Result<size_t> Read(MutableByteSpan buf) override { return c_.Read(buf); }
   private:
    ByteChannel& c_;
  };

 private:
  const size_t max_buffers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Bytes> queue_;     // plaintext: wiped when consumed
  size_t head_used_ = 0;        // bytes of queue_.front() already read
  std::optional<Status> closed_;
  bool abandoned_ = false;
};

}  // namespace hmod::rotate
