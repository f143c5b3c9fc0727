// Streaming encryption and decryption of chunked messages in constant memory.
//
// The calling thread does all I/O, in order; worker threads seal or open batches of
// chunks. A ring of slots bounds memory: at most kSlots batches are in flight. A batch
// is written only once every chunk in it (up to the first failure) is authenticated.
#include <algorithm>
#include <memory>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "hmod/chunked_stream.h"

namespace hmod {
namespace {

constexpr size_t kBatchChunks = 32;  // 512 KiB of plaintext per batch

enum class SlotState { kFree, kFilled, kWorking, kDone };

struct Slot {
  SlotState state = SlotState::kFree;
  uint64_t first_chunk = 0;
  size_t chunks = 0;         // number of chunks in this batch
  bool final = false;        // the last chunk of the batch is the message's final chunk
  // Uninitialised on purpose: zero-filling 1 MiB per call would dominate small files.
  std::unique_ptr<uint8_t[]> in, out;
  size_t in_bytes = 0;       // valid bytes in `in`
  size_t out_bytes = 0;      // bytes of `out` to write (the good prefix on failure)
  std::optional<Error> error;
};

enum class Direction { kSeal, kOpen };

// Batch buffers are recycled per calling thread: a per-tensor file runs one pipeline per
// tensor, and fresh buffers each time cost more in page faults than the crypto itself.
constexpr size_t kBufferBytes = kBatchChunks * kChunkCiphertextBytes;  // fits either direction
thread_local std::vector<std::unique_ptr<uint8_t[]>> t_spare_buffers;

std::unique_ptr<uint8_t[]> TakeBuffer() {
  if (t_spare_buffers.empty()) return std::unique_ptr<uint8_t[]>(new uint8_t[kBufferBytes]);
  auto b = std::move(t_spare_buffers.back());
  t_spare_buffers.pop_back();
  return b;
}

void ReturnBuffer(std::unique_ptr<uint8_t[]> b) {
  if (b && t_spare_buffers.size() < 16) t_spare_buffers.push_back(std::move(b));
}

// Transforms one batch. On failure, out_bytes covers only the chunks before the failure.
void ProcessBatch(Direction dir, ChunkCipher& cipher, Slot& slot) {
  const size_t in_unit = dir == Direction::kSeal ? kChunkBytes : kChunkCiphertextBytes;
  const size_t out_unit = dir == Direction::kSeal ? kChunkCiphertextBytes : kChunkBytes;
  size_t in_pos = 0, out_pos = 0;
  for (size_t i = 0; i < slot.chunks; ++i) {
    const size_t n = std::min(in_unit, slot.in_bytes - in_pos);
    ByteSpan src(slot.in.get() + in_pos, n);
    Status st = OkStatus();
    size_t m = 0;
    if (dir == Direction::kSeal) {
      m = n + kAeadTagBytes;
      st = cipher.Seal(slot.first_chunk + i, src, MutableByteSpan(slot.out.get() + out_pos, m));
    } else if (n < kAeadTagBytes) {
      st = MakeError(ErrorCode::kAuthFailed, "message truncated: final chunk shorter than a tag");
    } else {
      m = n - kAeadTagBytes;
      st = cipher.Open(slot.first_chunk + i, src, MutableByteSpan(slot.out.get() + out_pos, m));
    }
    if (!st.ok()) {
      Error e = st.error();
      if (e.code == ErrorCode::kAuthFailed && dir == Direction::kOpen) {
        e.message = "authentication failed at chunk " + std::to_string(slot.first_chunk + i) +
                    ": the file was tampered with, corrupted or truncated";
      }
      slot.error = std::move(e);
      break;
    }
    in_pos += n;
    out_pos += m;
  }
  slot.out_bytes = out_pos;
  (void)out_unit;
}

class Pipeline {
 public:
  Pipeline(Direction dir, const ChunkKeys& keys, ByteSource& in, ByteSink& out,
           const StreamOptions& options)
      : dir_(dir), keys_(keys), in_(in), out_(out), options_(options) {
    unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    workers_ = options.threads ? options.threads : hw;
    slots_.resize(2 * workers_ + 2);
    in_unit_ = dir == Direction::kSeal ? kChunkBytes : kChunkCiphertextBytes;
    out_unit_ = dir == Direction::kSeal ? kChunkCiphertextBytes : kChunkBytes;
  }

  ~Pipeline() {
    for (auto& s : slots_) {
      ReturnBuffer(std::move(s.in));
      ReturnBuffer(std::move(s.out));
    }
  }

  // Returns plaintext bytes processed.
  Result<uint64_t> Run() {
    HMOD_ASSIGN_OR_RETURN(ChunkCipher main_cipher, ChunkCipher::Create(keys_));
    uint64_t next_chunk = 0, read_seq = 0, write_seq = 0, plaintext = 0, consumed = 0;
    bool reading_done = false;
    std::vector<std::thread> threads;
    std::optional<Error> failure;

    while (true) {
      // Fill every free slot we can without blocking on workers.
      while (!reading_done && !failure) {
        Slot& s = slots_[read_seq % slots_.size()];
        {
          std::unique_lock lock(mu_);
          if (s.state != SlotState::kFree) break;
        }
        auto filled = Fill(s, next_chunk);
        if (!filled.ok()) {
          failure = filled.error();
          break;
        }
        consumed += s.in_bytes;
        next_chunk += s.chunks;
        reading_done = s.final;
        if (s.chunks == 0) break;  // nothing to do (decrypt found EOF at a batch boundary)
        ++read_seq;
        // Small inputs never start a thread: the first batch was also the last.
        if (reading_done && threads.empty() && read_seq == 1) {
          ProcessBatch(dir_, main_cipher, s);
          s.state = SlotState::kDone;
          break;
        }
        if (threads.empty()) {
          for (unsigned i = 0; i < workers_; ++i) threads.emplace_back([this] { Work(); });
        }
        {
          std::lock_guard lock(mu_);
          s.state = SlotState::kFilled;
        }
        work_cv_.notify_one();
      }
      if (write_seq == read_seq) break;  // everything read has been written
      // Write the next batch in order once it is done.
      Slot& w = slots_[write_seq % slots_.size()];
      {
        std::unique_lock lock(mu_);
        done_cv_.wait(lock, [&] { return w.state == SlotState::kDone; });
      }
      if (!failure && w.out_bytes > 0) {
        Status st = out_.Write(ByteSpan(w.out.get(), w.out_bytes));
        if (!st.ok()) failure = st.error();
      }
      if (!failure && w.error) failure = w.error;
      if (!failure) {
        plaintext += dir_ == Direction::kSeal ? w.in_bytes : w.out_bytes;
        if (options_.progress) options_.progress(consumed);
      }
      {
        std::lock_guard lock(mu_);
        w.state = SlotState::kFree;
        w.error.reset();
      }
      ++write_seq;
      if (failure) {
        // Stop reading; drain what is in flight without writing it.
        reading_done = true;
      }
    }
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : threads) t.join();
    if (failure) return *failure;
    if (dir_ == Direction::kOpen && !saw_final_) {
      return MakeError(ErrorCode::kAuthFailed,
                       "message truncated: it ends without its short final chunk");
    }
    return plaintext;
  }

 private:
  // Reads the next batch into `s`. Sets s.final when this batch holds the final chunk.
  Status Fill(Slot& s, uint64_t first_chunk) {
    const size_t cap = kBatchChunks * in_unit_;
    if (!s.in) s.in = TakeBuffer();
    if (!s.out) s.out = TakeBuffer();
    HMOD_ASSIGN_OR_RETURN(size_t n, in_.Read(MutableByteSpan(s.in.get(), cap)));
    s.in_bytes = n;
    s.first_chunk = first_chunk;
    s.error.reset();
    s.out_bytes = 0;
    if (n == cap) {
      s.chunks = kBatchChunks;
      s.final = false;
    } else if (dir_ == Direction::kSeal) {
      // Full chunks, then the final chunk, which is shorter than kChunkBytes (maybe empty).
      s.chunks = n / kChunkBytes + 1;
      s.final = true;
    } else {
      // Ciphertext: the final chunk is the remainder; a remainder of 0 means the message
      // ended on a full chunk, i.e. the short final chunk is missing.
      s.chunks = n / kChunkCiphertextBytes + (n % kChunkCiphertextBytes ? 1 : 0);
      s.final = true;
      saw_final_ = n % kChunkCiphertextBytes != 0;
    }
    if (first_chunk + s.chunks > kMaxChunks) {
      return MakeError(ErrorCode::kLimit, "message exceeds 2^38 chunks");
    }
    return OkStatus();
  }

  void Work() {
    auto cipher = ChunkCipher::Create(keys_);
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
        // Take the filled slot with the lowest chunk index, so output is not held up.
        for (auto& s : slots_) {
          if (s.state == SlotState::kFilled && (!job || s.first_chunk < job->first_chunk)) job = &s;
        }
        if (!job) return;  // stop_ and nothing left
        job->state = SlotState::kWorking;
      }
      if (cipher.ok()) {
        ProcessBatch(dir_, *cipher, *job);
      } else {
        job->error = cipher.error();
        job->out_bytes = 0;
      }
      {
        std::lock_guard lock(mu_);
        job->state = SlotState::kDone;
      }
      done_cv_.notify_all();
    }
  }

  Direction dir_;
  const ChunkKeys& keys_;
  ByteSource& in_;
  ByteSink& out_;
  const StreamOptions& options_;
  unsigned workers_ = 1;
  size_t in_unit_ = 0, out_unit_ = 0;
  std::vector<Slot> slots_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  bool stop_ = false;
  bool saw_final_ = false;
};

}  // namespace

Status EncryptChunkedStream(const ChunkKeys& keys, ByteSource& in, ByteSink& out,
                            const StreamOptions& options) {
  HMOD_TRY(out.Write(keys.stream_header()));
  Pipeline p(Direction::kSeal, keys, in, out, options);
  HMOD_TRY(p.Run());
  return OkStatus();
}

Result<uint64_t> DecryptChunkedStream(const ChunkKeys& keys, ByteSource& in, ByteSink& out,
                                      const StreamOptions& options) {
  Pipeline p(Direction::kOpen, keys, in, out, options);
  return p.Run();
}

}  // namespace hmod
