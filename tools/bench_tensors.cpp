// bench_tensors: the in-process half of tools/bench-tensors.
//
//   bench_tensors make-model OUT N_TENSORS TENSOR_MIB
//       Writes a safetensors file of N_TENSORS F32 tensors ("layers.<i>.weight") of
//       TENSOR_MIB MiB each, filled with fast pseudo-random bytes.
//   bench_tensors read-one FILE KEK_URI TENSOR RUNS
//       Times ModelReader::Open + ReadTensor(TENSOR) into memory, RUNS times after one
//       warm-up, and prints one line of key=value pairs (seconds; medians).
//   bench_tensors decrypt FILE KEK_URI RUNS [THREADS]
//       Times the library's whole-file decrypt (DecryptContainer: a per-tensor file is
//       restored in source order) of FILE to a null sink, in process, RUNS times after one
//       warm-up; prints total_s (median) and min_s.
//
// Prints numbers; judging them is the script's job.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "hmod/container.h"
#include "hmod/io.h"
#include "hmod/model_reader.h"

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: bench_tensors make-model OUT N_TENSORS TENSOR_MIB\n"
               "       bench_tensors read-one FILE KEK_URI TENSOR RUNS\n"
               "       bench_tensors decrypt FILE KEK_URI RUNS [THREADS]\n");
  return 2;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int MakeModel(const std::string& out, uint64_t n, uint64_t mib) {
  const uint64_t bytes = mib << 20;
  const uint64_t cols = 1024, rows = bytes / 4 / cols;
  if (n == 0 || mib == 0 || rows * cols * 4 != bytes) return Usage();
  std::string json = "{\"__metadata__\":{\"format\":\"pt\",\"source\":\"hmodctl bench-tensors\"}";
  for (uint64_t i = 0; i < n; ++i) {
    json += ",\"layers." + std::to_string(i) + ".weight\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(rows) +
            "," + std::to_string(cols) + "],\"data_offsets\":[" + std::to_string(i * bytes) + "," +
            std::to_string((i + 1) * bytes) + "]}";
  }
  json += "}";
  json.append((8 - json.size() % 8) % 8, ' ');  // safetensors pads the header to 8 bytes
  FILE* f = std::fopen(out.c_str(), "wb");
  if (f == nullptr) {
    std::perror(out.c_str());
    return 1;
  }
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(json.size()) >> (8 * i));
  bool ok = std::fwrite(len, 1, 8, f) == 8 && std::fwrite(json.data(), 1, json.size(), f) == json.size();
  std::vector<uint64_t> block(bytes / 8);
  uint64_t x = 0x9E3779B97F4A7C15ull;  // xorshift64: incompressible enough, and fast
  for (uint64_t i = 0; ok && i < n; ++i) {
    for (auto& w : block) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      w = x;
    }
    ok = std::fwrite(block.data(), 1, bytes, f) == bytes;
  }
  if (std::fclose(f) != 0 || !ok) {
    std::fprintf(stderr, "bench_tensors: writing %s failed\n", out.c_str());
    return 1;
  }
  return 0;
}

int ReadOne(const std::string& path, const std::string& kek, const std::string& name, int runs) {
  using Clock = std::chrono::steady_clock;
  if (!hmod::InitCrypto().ok() || runs < 1) return Usage();
  std::vector<double> total, open, read;
  uint64_t sum = 0;
  for (int run = -1; run < runs; ++run) {  // run -1 warms up
    const auto t0 = Clock::now();
    auto provider = hmod::ProviderFromUri(kek);
    if (!provider.ok()) {
      std::fprintf(stderr, "bench_tensors: %s\n", provider.error().message.c_str());
      return 1;
    }
    hmod::ProviderList providers;
    providers.push_back(std::move(*provider));
    auto reader = hmod::ModelReader::Open(path, std::move(providers));
    if (!reader.ok()) {
      std::fprintf(stderr, "bench_tensors: %s\n", reader.error().message.c_str());
      return 1;
    }
    const auto t1 = Clock::now();
    auto desc = (*reader)->Find(name);
    if (!desc.ok()) {
      std::fprintf(stderr, "bench_tensors: %s\n", desc.error().message.c_str());
      return 1;
    }
    hmod::Bytes buf(desc->bytes);
    hmod::Status st = (*reader)->ReadTensor(name, buf);
    const auto t2 = Clock::now();
    if (!st.ok()) {
      std::fprintf(stderr, "bench_tensors: %s\n", st.error().message.c_str());
      return 1;
    }
    sum += buf[0] + buf[buf.size() - 1];  // keeps the read observable
    if (run < 0) continue;
    open.push_back(std::chrono::duration<double>(t1 - t0).count());
    read.push_back(std::chrono::duration<double>(t2 - t1).count());
    total.push_back(std::chrono::duration<double>(t2 - t0).count());
  }
  std::printf("total_s=%.6f open_s=%.6f read_s=%.6f runs=%d check=%llu\n", Median(total), Median(open), Median(read),
              runs, static_cast<unsigned long long>(sum));
  return 0;
}

int DecryptAll(const std::string& path, const std::string& kek, int runs, unsigned threads) {
  using Clock = std::chrono::steady_clock;
  if (!hmod::InitCrypto().ok() || runs < 1) return Usage();
  std::vector<double> total;
  uint64_t bytes = 0;
  for (int run = -1; run < runs; ++run) {  // run -1 warms up
    const auto t0 = Clock::now();
    auto provider = hmod::ProviderFromUri(kek);
    auto in = hmod::InputFile::Open(path);
    if (!provider.ok() || !in.ok()) {
      std::fprintf(stderr, "bench_tensors: %s\n",
                   (provider.ok() ? in.error() : provider.error()).message.c_str());
      return 1;
    }
    hmod::ProviderList providers;
    providers.push_back(std::move(*provider));
    hmod::NullSink sink;
    hmod::DecryptOptions options;
    options.stream.threads = threads;
    auto r = hmod::DecryptContainer(**in, sink, providers, options);
    const auto t1 = Clock::now();
    if (!r.ok()) {
      std::fprintf(stderr, "bench_tensors: %s\n", r.error().message.c_str());
      return 1;
    }
    bytes = r->plaintext_bytes;
    if (run >= 0) total.push_back(std::chrono::duration<double>(t1 - t0).count());
  }
  std::printf("total_s=%.6f min_s=%.6f runs=%d bytes=%llu\n", Median(total),
              *std::min_element(total.begin(), total.end()), runs, static_cast<unsigned long long>(bytes));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 4 && a[0] == "make-model") {
    return MakeModel(a[1], std::strtoull(a[2].c_str(), nullptr, 10), std::strtoull(a[3].c_str(), nullptr, 10));
  }
  if (a.size() == 5 && a[0] == "read-one") return ReadOne(a[1], a[2], a[3], std::atoi(a[4].c_str()));
  if ((a.size() == 4 || a.size() == 5) && a[0] == "decrypt") {
    return DecryptAll(a[1], a[2], std::atoi(a[3].c_str()),
                      a.size() == 5 ? static_cast<unsigned>(std::atoi(a[4].c_str())) : 0u);
  }
  return Usage();
}
