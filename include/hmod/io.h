// Byte sources and sinks over file descriptors, positional reads, and atomic output files.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "hmod/crypto.h"
#include "hmod/result.h"

namespace hmod {
namespace detail {
class WriteBehind;
}

// A sequential reader. Read() fills `buf` completely unless the end is reached first;
// it returns the number of bytes read (0 only at the end).
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual Result<size_t> Read(MutableByteSpan buf) = 0;
};

// A reader at absolute offsets, safe to call from several threads at once.
class PositionalSource {
 public:
  virtual ~PositionalSource() = default;
  virtual uint64_t size() const = 0;
  // Reads exactly buf.size() bytes at `offset`; kIo/kFormat if they are not all there.
  virtual Status ReadAt(uint64_t offset, MutableByteSpan buf) const = 0;
  // The same, for small scattered reads ahead of a sequential pass: where it can, it leaves
  // no newly read page in the page cache (see InputFile).
  virtual Status ReadAtUncached(uint64_t offset, MutableByteSpan buf) const { return ReadAt(offset, buf); }
};

// A sequential writer.
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual Status Write(ByteSpan data) = 0;
};

// Reads from an fd it does not own (stdin, or an InputFile's fd).
class FdSource final : public ByteSource {
 public:
  explicit FdSource(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  Result<size_t> Read(MutableByteSpan buf) override;

 private:
  int fd_;
  std::string name_;
};

// Writes to an fd it does not own (stdout). Handles short writes and EINTR.
class FdSink final : public ByteSink {
 public:
  explicit FdSink(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  Status Write(ByteSpan data) override;

 private:
  int fd_;
  std::string name_;
};

// Discards everything (verify).
class NullSink final : public ByteSink {
 public:
  Status Write(ByteSpan) override { return OkStatus(); }
};

// Collects into memory (tests, small payloads).
class MemorySink final : public ByteSink {
 public:
  Status Write(ByteSpan data) override {
    bytes.insert(bytes.end(), data.begin(), data.end());
    return OkStatus();
  }
  Bytes bytes;
};

class MemorySource final : public ByteSource, public PositionalSource {
 public:
  explicit MemorySource(ByteSpan data) : data_(data) {}
  Result<size_t> Read(MutableByteSpan buf) override;
  uint64_t size() const override { return data_.size(); }
  Status ReadAt(uint64_t offset, MutableByteSpan buf) const override;

 private:
  ByteSpan data_;
  size_t pos_ = 0;
};

// A regular file (or pipe) opened for reading. Owns its fd.
class InputFile final : public ByteSource, public PositionalSource {
 public:
  // "-" means standard input.
  static Result<std::unique_ptr<InputFile>> Open(const std::string& path);
  ~InputFile() override;

  Result<size_t> Read(MutableByteSpan buf) override;
  uint64_t size() const override { return size_; }
  Status ReadAt(uint64_t offset, MutableByteSpan buf) const override;
  // Small reads scattered over a cold file make the kernel cache those pages as single
  // pages, and the sequential pass that follows then builds no large folios around them:
  // re-reading the cached file took 2x as long (0.18 s vs 0.09 s per GiB here). Pages read
  // with RWF_DONTCACHE (Linux 6.14+) are dropped again; elsewhere this is ReadAt.
  Status ReadAtUncached(uint64_t offset, MutableByteSpan buf) const override;

  bool is_regular() const { return regular_; }
  const std::string& path() const { return path_; }
  int fd() const { return fd_; }
  // Device and inode, to refuse writing onto our own input.
  uint64_t dev() const { return dev_; }
  uint64_t ino() const { return ino_; }

 private:
  InputFile() = default;
  int fd_ = -1;
  bool owned_ = false;
  bool regular_ = false;
  uint64_t size_ = 0, dev_ = 0, ino_ = 0;
  std::string path_;
};

// An output file written under a temporary name in the target directory, fsynced and
// renamed over `path` only by Commit(). If destroyed, interrupted (SIGINT/SIGTERM/SIGHUP)
// or never committed, the temporary file is removed and `path` is left as it was.
class AtomicFile final : public ByteSink {
 public:
  // Fails with kIo if `path` exists and !overwrite.
  static Result<std::unique_ptr<AtomicFile>> Create(const std::string& path, unsigned mode,
                                                    bool overwrite);
  ~AtomicFile() override;

  Status Write(ByteSpan data) override;
  // Preallocates `bytes` on disk: a size hint (an upper bound is fine; failures are
  // ignored). Commit() releases whatever was not written.
  void Reserve(uint64_t bytes);
  Status Commit();
  const std::string& temp_path() const { return temp_path_; }

 private:
  AtomicFile();
  ssize_t WriteSome(ByteSpan data);  // at offset written_
  int fd_ = -1;
  bool uncached_ = true;  // RWF_DONTCACHE until the kernel says it has none
  uint64_t written_ = 0, reserved_ = 0;
  std::unique_ptr<detail::WriteBehind> write_behind_;  // after fd_: stopped before it closes
  std::string path_, temp_path_;
  bool committed_ = false;
  bool overwrite_ = false;
  int cleanup_slot_ = -1;
};

// True if `path` names the same file as `in` (same device and inode).
bool IsSameFile(const InputFile& in, const std::string& path);

// Refuses (kKeyFile) a key file whose mode grants any access to group or others.
Status CheckPrivateFileMode(const std::string& path);
// Reads a small file (at most `max_bytes`) whole, e.g. a key file.
Result<Bytes> ReadSmallFile(const std::string& path, size_t max_bytes);
// Creates `path` with mode 0600, refusing to overwrite, writes `data` atomically.
Status WriteNewPrivateFile(const std::string& path, ByteSpan data);

}  // namespace hmod
