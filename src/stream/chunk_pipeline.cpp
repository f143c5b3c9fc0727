// Streaming encryption and decryption of chunked messages in constant memory.
//
// Three roles overlap: the calling thread reads (the producer fills batches in order),
// worker threads seal or open batches, and one writer thread writes finished batches in
// order. A ring of slots bounds memory: at most kSlots batches are in flight. A batch is
// written only once every chunk in it (up to the first failure) is authenticated.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "stream/aligned_buffer.h"
#include "stream/batch_pipeline.h"

namespace hmod {
namespace detail {
namespace {

// Batch buffers are recycled per calling thread: fresh buffers for every run cost more in
// page faults than the crypto of a small message.
using Buffer = AlignedBytes;

thread_local std::vector<Buffer> t_spare_buffers;

Buffer TakeBuffer() {
  if (t_spare_buffers.empty()) return NewAlignedBytes(kBatchBufferBytes);
  auto b = std::move(t_spare_buffers.back());
  t_spare_buffers.pop_back();
  return b;
}

void ReturnBuffer(Buffer b) {
  if (b && t_spare_buffers.size() < 24) t_spare_buffers.push_back(std::move(b));
}

enum class SlotState { kFree, kFilled, kWorking, kDone };

struct Slot {
  SlotState state = SlotState::kFree;
  uint64_t seq = 0;  // position in output order
  Batch batch;
  // Uninitialised on purpose: zero-filling would dominate small files.
  Buffer in, out;
  size_t out_bytes = 0;  // bytes of `out` that are good (the prefix before a failure)
  std::optional<Error> error;
};

// Transforms one batch with `cipher` (and `reseal` for kReseal). On failure, out_bytes
// covers only the chunks before the failure.
void ProcessBatch(ChunkCipher& cipher, ChunkCipher* reseal, Slot& slot) {
  const Batch& b = slot.batch;
  const bool seal = b.kind == BatchKind::kSeal;
  const size_t in_unit = seal ? kChunkBytes : kChunkCiphertextBytes;
  size_t in_pos = 0, out_pos = 0;
  for (size_t i = 0; i < b.chunks; ++i) {
    const size_t n = std::min(in_unit, b.in_bytes - in_pos);
    ByteSpan src(b.in + in_pos, n);
    Status st = OkStatus();
    size_t m = 0;
    if (seal) {
      m = n + kAeadTagBytes;
      st = cipher.Seal(b.first_chunk + i, src, MutableByteSpan(slot.out.get() + out_pos, m));
    } else if (n < kAeadTagBytes) {
      st = MakeError(ErrorCode::kAuthFailed, "message truncated: final chunk shorter than a tag");
    } else {
      m = n - kAeadTagBytes;
      uint8_t* plain = slot.out.get() + out_pos;
      st = cipher.Open(b.first_chunk + i, src, MutableByteSpan(plain, m));
      if (st.ok() && b.kind == BatchKind::kReseal) {
        // Sealed in place: the new chunk takes exactly the old one's room.
        st = reseal->Seal(b.first_chunk + i, ByteSpan(plain, m), MutableByteSpan(plain, n));
        m = n;
      }
    }
    if (!st.ok()) {
      Error e = st.error();
      if (e.code == ErrorCode::kAuthFailed && !seal) {
        e.message = "authentication failed at chunk " + std::to_string(b.first_chunk + i) +
                    ": the file was tampered with, corrupted or truncated";
      }
      slot.error = std::move(e);
      break;
    }
    in_pos += n;
    out_pos += m;
  }
  slot.out_bytes = out_pos;
}

// The ciphers of one batch, made once per message a worker meets (a per-tensor file is
// many messages).
class CipherCache {
 public:
  // The cipher for `keys`, or the error making it failed with.
  Result<ChunkCipher*> For(const std::shared_ptr<const ChunkKeys>& keys, int which) {
    Entry& e = entries_[which];
    if (!e.cipher || e.keys != keys) {
      e.keys = keys;
      e.cipher.emplace(ChunkCipher::Create(*keys));
    }
    if (!e.cipher->ok()) return e.cipher->error();
    return &**e.cipher;
  }

 private:
  struct Entry {
    std::shared_ptr<const ChunkKeys> keys;
    std::optional<Result<ChunkCipher>> cipher;
  };
  Entry entries_[2];
};

// Processes `slot` with ciphers from `cache`; a cipher that cannot be made fails the batch.
void ProcessWithCache(CipherCache& cache, Slot& slot) {
  auto cipher = cache.For(slot.batch.keys, 0);
  Result<ChunkCipher*> reseal = static_cast<ChunkCipher*>(nullptr);
  if (cipher.ok() && slot.batch.kind == BatchKind::kReseal) reseal = cache.For(slot.batch.reseal_keys, 1);
  if (!cipher.ok() || !reseal.ok()) {
    slot.error = !cipher.ok() ? cipher.error() : reseal.error();
    slot.out_bytes = 0;
    return;
  }
  ProcessBatch(**cipher, *reseal, slot);
}

class Engine {
 public:
  Engine(BatchProducer& producer, ByteSink& out, const StreamOptions& options)
      : producer_(producer), out_(out), options_(options) {
    const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    workers_ = options.threads ? options.threads : hw;
    slots_.resize(2 * workers_ + 4);
  }

  ~Engine() {
    for (auto& s : slots_) {
      ReturnBuffer(std::move(s.in));
      ReturnBuffer(std::move(s.out));
    }
  }

  Status Run() {
    // Small inputs never start a thread: if the second batch does not exist (or fails),
    // the first is processed and written right here.
    HMOD_ASSIGN_OR_RETURN(bool more, Fill(slots_[0]));
    if (!more) return OkStatus();
    auto second = Fill(slots_[1]);
    if (!second.ok() || !*second) {
      Slot& s = slots_[0];
      if (s.batch.kind != BatchKind::kCopy) {
        CipherCache cache;
        ProcessWithCache(cache, s);
      }
      HMOD_TRY(WriteSlot(s));
      if (!second.ok()) return second.error();
      return OkStatus();
    }
    Publish(slots_[0], 0);
    Publish(slots_[1], 1);

    std::vector<std::thread> threads;
    threads.reserve(workers_);
    for (unsigned i = 0; i < workers_; ++i) threads.emplace_back([this] { Work(); });
    std::thread writer([this] { WriteLoop(); });

    uint64_t seq = 2;
    std::optional<Error> producer_error;
    while (true) {
      Slot& s = slots_[seq % slots_.size()];
      {
        std::unique_lock lock(mu_);
        free_cv_.wait(lock, [&] { return failed_ || s.state == SlotState::kFree; });
        if (failed_) break;
      }
      auto r = Fill(s);
      if (!r.ok()) {
        producer_error = r.error();
        break;
      }
      if (!*r) break;
      Publish(s, seq);
      ++seq;
    }
    {
      std::lock_guard lock(mu_);
      end_seq_ = seq;
      producer_done_ = true;
    }
    done_cv_.notify_all();
    writer.join();
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : threads) t.join();
    if (first_error_) return *first_error_;
    if (producer_error) return *producer_error;
    return OkStatus();
  }

 private:
  Result<bool> Fill(Slot& s) {
    if (!s.in) s.in = TakeBuffer();
    Bytes prefix = std::move(s.batch.prefix);  // keep its capacity
    prefix.clear();
    s.batch = Batch{};
    s.batch.prefix = std::move(prefix);
    s.batch.in = s.in.get();
    s.error.reset();
    s.out_bytes = 0;
    HMOD_ASSIGN_OR_RETURN(bool more, producer_.Next(s.batch));
    if (!more) return false;
    const Batch& b = s.batch;
    if (b.in_bytes > kBatchBufferBytes || b.chunks > kBatchMaxChunks) {
      return MakeError(ErrorCode::kCrypto, "internal: oversized batch");
    }
    if (b.kind != BatchKind::kCopy) {
      if (!b.keys || (b.kind == BatchKind::kReseal && !b.reseal_keys)) {
        return MakeError(ErrorCode::kCrypto, "internal: batch without keys");
      }
      if (b.first_chunk + b.chunks > kMaxChunks) {
        return MakeError(ErrorCode::kLimit, "message exceeds 2^38 chunks");
      }
      if (!s.out) s.out = TakeBuffer();
    }
    return true;
  }

  void Publish(Slot& s, uint64_t seq) {
    {
      std::lock_guard lock(mu_);
      s.seq = seq;
      s.state = s.batch.kind == BatchKind::kCopy ? SlotState::kDone : SlotState::kFilled;
    }
    if (s.batch.kind == BatchKind::kCopy) {
      done_cv_.notify_all();
    } else {
      work_cv_.notify_one();
    }
  }

  // Writes the good part of a finished batch; returns the batch's error after that.
  Status WriteSlot(Slot& s) {
    const Batch& b = s.batch;
    if (!b.prefix.empty()) HMOD_TRY(out_.Write(b.prefix));
    if (b.kind == BatchKind::kCopy) {
      if (b.in_bytes) HMOD_TRY(out_.Write(ByteSpan(b.in, b.in_bytes)));
    } else {
      size_t from = 0, to = s.out_bytes;
      if (b.kind == BatchKind::kOpen) {
        from = std::min(b.out_skip, s.out_bytes);
        to = from + std::min(b.out_limit, s.out_bytes - from);
      }
      if (to > from) HMOD_TRY(out_.Write(ByteSpan(s.out.get() + from, to - from)));
    }
    if (s.error) return *s.error;
    if (b.report_progress && options_.progress) options_.progress(b.progress);
    return OkStatus();
  }

  void WriteLoop() {
    for (uint64_t seq = 0;; ++seq) {
      Slot& s = slots_[seq % slots_.size()];
      {
        std::unique_lock lock(mu_);
        done_cv_.wait(lock, [&] {
          return s.state == SlotState::kDone || (producer_done_ && seq == end_seq_);
        });
        if (s.state != SlotState::kDone) return;  // everything produced has been written
      }
      if (!first_error_) {
        Status st = WriteSlot(s);
        if (!st.ok()) {
          std::lock_guard lock(mu_);
          first_error_ = st.error();
          failed_ = true;
        }
      }
      {
        std::lock_guard lock(mu_);
        s.state = SlotState::kFree;
      }
      free_cv_.notify_one();
    }
  }

  void Work() {
    CipherCache cache;
    while (true) {
      Slot* job = nullptr;
      {
        std::unique_lock lock(mu_);
        work_cv_.wait(lock, [&] {
          if (stop_) return true;
          for (auto& s : slots_) {
            if (s.state == SlotState::kFilled) return true;
          }
          return false;
        });
        // The filled slot that is next in output order, so the writer is not held up.
        for (auto& s : slots_) {
          if (s.state == SlotState::kFilled && (!job || s.seq < job->seq)) job = &s;
        }
        if (!job) return;  // stop_ and nothing left
        job->state = SlotState::kWorking;
      }
      if (failed_.load(std::memory_order_relaxed)) {
        // Output has stopped: nothing of this batch will be written.
        job->out_bytes = 0;
      } else {
        ProcessWithCache(cache, *job);
      }
      {
        std::lock_guard lock(mu_);
        job->state = SlotState::kDone;
      }
      done_cv_.notify_all();
    }
  }

  BatchProducer& producer_;
  ByteSink& out_;
  const StreamOptions& options_;
  unsigned workers_ = 1;
  std::vector<Slot> slots_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_, free_cv_;
  bool stop_ = false;
  bool producer_done_ = false;
  uint64_t end_seq_ = 0;
  std::atomic<bool> failed_{false};
  std::optional<Error> first_error_;
};

}  // namespace

Status RunBatches(BatchProducer& producer, ByteSink& out, const StreamOptions& options) {
  Engine engine(producer, out, options);
  return engine.Run();
}

}  // namespace detail

namespace {

using detail::Batch;
using detail::BatchKind;
using detail::kBatchCipherBytes;
using detail::kBatchPlainBytes;

// Plaintext from a ByteSource, cut into seal batches.
class StreamSealer final : public detail::BatchProducer {
 public:
  StreamSealer(const ChunkKeys& keys, ByteSource& in) : keys_(detail::Borrow(keys)), in_(in) {}
  Result<bool> Next(Batch& b) override {
    if (done_) return false;
    HMOD_ASSIGN_OR_RETURN(size_t n, in_.Read(MutableByteSpan(b.in, kBatchPlainBytes)));
    b.kind = BatchKind::kSeal;
    b.keys = keys_;
    b.first_chunk = next_chunk_;
    b.in_bytes = n;
    done_ = n < kBatchPlainBytes;
    b.chunks = detail::SealChunks(n, done_);
    next_chunk_ += b.chunks;
    consumed_ += n;
    b.report_progress = true;
    b.progress = consumed_;
    return true;
  }

 private:
  std::shared_ptr<const ChunkKeys> keys_;
  ByteSource& in_;
  uint64_t next_chunk_ = 0, consumed_ = 0;
  bool done_ = false;
};

// Ciphertext chunks from a ByteSource, cut into open batches. The message ends at the
// end of the source; it must end with a short final chunk.
class StreamOpener final : public detail::BatchProducer {
 public:
  // With `reseal`, every chunk is sealed again under it instead of written as plaintext.
  StreamOpener(const ChunkKeys& keys, ByteSource& in, const ChunkKeys* reseal = nullptr)
      : keys_(detail::Borrow(keys)), reseal_(reseal ? detail::Borrow(*reseal) : nullptr), in_(in) {}
  Result<bool> Next(Batch& b) override {
    if (truncated_) {
      truncated_ = false;
      done_ = true;
      return MakeError(ErrorCode::kAuthFailed, "message truncated: it ends without its short final chunk");
    }
    if (done_) return false;
    HMOD_ASSIGN_OR_RETURN(size_t n, in_.Read(MutableByteSpan(b.in, kBatchCipherBytes)));
    b.kind = reseal_ ? BatchKind::kReseal : BatchKind::kOpen;
    b.keys = keys_;
    b.reseal_keys = reseal_;
    b.first_chunk = next_chunk_;
    b.in_bytes = n;
    if (n == kBatchCipherBytes) {
      b.chunks = detail::kBatchChunks;
    } else {
      // The final chunk is the remainder; a remainder of 0 means the message ended on a
      // full chunk, i.e. the short final chunk is missing: every chunk present is
      // released, then the truncation is reported.
      b.chunks = n / kChunkCiphertextBytes + (n % kChunkCiphertextBytes ? 1 : 0);
      done_ = true;
      if (n % kChunkCiphertextBytes == 0) {
        if (n == 0) {
          return MakeError(ErrorCode::kAuthFailed, "message truncated: it ends without its short final chunk");
        }
        truncated_ = true;
        done_ = false;
      }
    }
    next_chunk_ += b.chunks;
    consumed_ += n;
    // Plaintext if it all authenticates (a short tail chunk fails in the worker).
    const uint64_t tags = uint64_t{b.chunks} * kAeadTagBytes;
    plaintext_ += n >= tags ? n - tags : 0;
    b.report_progress = true;
    b.progress = consumed_;
    return true;
  }
  uint64_t plaintext() const { return plaintext_; }

 private:
  std::shared_ptr<const ChunkKeys> keys_, reseal_;
  ByteSource& in_;
  uint64_t next_chunk_ = 0, consumed_ = 0, plaintext_ = 0;
  bool done_ = false, truncated_ = false;
};

}  // namespace

Status EncryptChunkedStream(const ChunkKeys& keys, ByteSource& in, ByteSink& out,
                            const StreamOptions& options) {
  HMOD_TRY(out.Write(keys.stream_header()));
  StreamSealer producer(keys, in);
  return detail::RunBatches(producer, out, options);
}

Result<uint64_t> DecryptChunkedStream(const ChunkKeys& keys, ByteSource& in, ByteSink& out,
                                      const StreamOptions& options) {
  StreamOpener producer(keys, in);
  HMOD_TRY(detail::RunBatches(producer, out, options));
  return producer.plaintext();
}

Result<uint64_t> ResealChunkedStream(const ChunkKeys& old_keys, const ChunkKeys& new_keys, ByteSource& in,
                                     ByteSink& out, const StreamOptions& options) {
  HMOD_TRY(out.Write(new_keys.stream_header()));
  StreamOpener producer(old_keys, in, &new_keys);
  HMOD_TRY(detail::RunBatches(producer, out, options));
  return producer.plaintext();
}

}  // namespace hmod
