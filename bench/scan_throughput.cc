// scan_throughput: how fast the inspector scans real code, side by side with
// what a user would otherwise reach for, `objdump -d FILE | grep`.
//
//   build/bench/scan_throughput [DIR] [SAMPLE]
//
// It loads the executable segments of every ELF object under DIR (default
// /usr/lib/x86_64-linux-gnu) and times, in one run:
//   1. the byte search alone over all of them;
//   2. the full inspection (search + Capstone context + classification);
//   2b. the byte search against memchr over the same bytes (real code,
//      tiled), in a buffer that fits L2 (256 KiB) and one that does not
//      (128 MiB), for each available pre-filter (SSE2, AVX2);
//   3. on every SAMPLE-th object (default 40th): the inspection and
//      `objdump -d | grep -cE 'wrpkru|xrstor'` over the same files.
#include <dirent.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/hardware/platform.h"
#include "runtime/inspector/inspect.h"

using namespace cordon::inspector;
using Clock = std::chrono::steady_clock;

namespace {

void Walk(const std::string& dir, std::vector<std::string>* out) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    const std::string path = dir + "/" + name;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) Walk(path, out);
    if (S_ISREG(st.st_mode)) out->push_back(path);
  }
  closedir(d);
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct Loaded {
  std::string path;
  ElfFile file;
  size_t exec_bytes;
};

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "/usr/lib/x86_64-linux-gnu";
  const size_t sample = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 40;
  printf("platform: %s\n", cordon::hw::DescribePlatform().c_str());
  std::vector<std::string> paths;
  Walk(dir, &paths);
  std::vector<Loaded> corpus;
  size_t total = 0;
  for (const auto& p : paths) {
    auto f = ElfFile::Load(p);
    if (!f.ok()) continue;
    size_t n = 0;
    for (const auto& s : f->segments()) n += s.executable ? s.filesz : 0;
    if (n == 0) continue;
    total += n;
    corpus.push_back({p, std::move(*f), n});
  }
  std::string error;
  auto dis = Disassembler::Open(&error);
  if (!dis) {
    fprintf(stderr, "%s\n", error.c_str());
    return 2;
  }
  printf("corpus: %zu ELF objects under %s, %.1f MB of executable segments\n", corpus.size(), dir.c_str(),
         static_cast<double>(total) / 1e6);

  // 1. Byte search alone, best of three.
  double best = 1e9;
  size_t hits = 0;
  for (int round = 0; round < 3; ++round) {
    hits = 0;
    const auto t0 = Clock::now();
    for (const auto& l : corpus) {
      for (const auto& s : l.file.segments()) {
        if (s.executable) hits += FindPatterns(l.file.data() + s.offset, s.filesz).size();
      }
    }
    best = std::min(best, Seconds(t0, Clock::now()));
  }
  printf("byte search:          %8.1f MB/s  (%zu hits, %.3f s)\n", total / best / 1e6, hits, best);

  // 2b. Against memchr, on the same bytes: real code tiled to the size,
  // with 0xF1 (int1, rare in code) replaced so that memchr has to read it all.
  std::vector<uint8_t> code;
  for (const auto& l : corpus) {
    for (const auto& s : l.file.segments()) {
      if (s.executable && code.size() < (size_t{4} << 20))
        code.insert(code.end(), l.file.data() + s.offset, l.file.data() + s.offset + s.filesz);
    }
  }
  for (auto& b : code) b = b == 0xf1 ? 0xf0 : b;
  for (const size_t size : {size_t{256} << 10, size_t{128} << 20}) {
    std::vector<uint8_t> buf(size);
    for (size_t i = 0; i < size; i += code.size())
      memcpy(buf.data() + i, code.data(), std::min(code.size(), size - i));
    const size_t passes = std::max<size_t>(1, (size_t{2} << 30) / size);  // 2 GB a measurement
    auto rate = [&](auto fn) {
      double best_s = 1e9;
      for (int round = 0; round < 5; ++round) {
        const auto t = Clock::now();
        for (size_t p = 0; p < passes; ++p) {
          asm volatile("" : : "r"(buf.data()) : "memory");  // memchr may not be hoisted
          fn();
        }
        best_s = std::min(best_s, Seconds(t, Clock::now()));
      }
      return static_cast<double>(size) * passes / best_s / 1e9;
    };
    volatile size_t sink = 0;
    const double mc = rate([&] { sink = sink + (memchr(buf.data(), 0xf1, size) != nullptr); });
    const char* where = size <= (size_t{1} << 20) ? "L2  " : "DRAM";
    printf("%s %6zu KiB: memchr %6.1f GB/s", where, size >> 10, mc);
    for (const auto& entry : {std::pair{SearchPath::kSse2, "sse2"}, std::pair{SearchPath::kAvx2, "avx2"}}) {
      const SearchPath path = entry.first;
      const char* name = entry.second;
      if (!SearchPathAvailable(path)) continue;
      const double r = rate([&] { sink = sink + FindPatternsWith(path, buf.data(), size).size(); });
      printf("   %s %6.1f GB/s (%3.0f%%)", name, r, 100 * r / mc);
    }
    printf("\n");
  }

  // 2. Full inspection.
  auto t0 = Clock::now();
  size_t findings = 0;
  for (const auto& l : corpus) findings += InspectElf(l.file, l.path, *dis)->size();
  const double full = Seconds(t0, Clock::now());
  printf("full inspection:      %8.1f MB/s  (%zu findings, %.3f s)\n", total / full / 1e6, findings, full);

  // 3. The same sample, both ways.
  size_t sample_bytes = 0, ours = 0, theirs = 0;
  double ours_s = 0, theirs_s = 0;
  for (size_t i = 0; i < corpus.size(); i += sample) {
    const auto& l = corpus[i];
    sample_bytes += l.exec_bytes;
    t0 = Clock::now();
    ours += InspectElf(l.file, l.path, *dis)->size();
    ours_s += Seconds(t0, Clock::now());
    const std::string cmd =
        "objdump -d --no-show-raw-insn '" + l.path + "' 2>/dev/null | grep -cE 'wrpkru|xrstor'";
    t0 = Clock::now();
    FILE* p = popen(cmd.c_str(), "r");
    unsigned long count = 0;
    if (p != nullptr) {
      if (fscanf(p, "%lu", &count) != 1) count = 0;
      pclose(p);
    }
    theirs_s += Seconds(t0, Clock::now());
    theirs += count;
  }
  printf("sample (every %zu-th object, %.1f MB):\n", sample, static_cast<double>(sample_bytes) / 1e6);
  printf("  cordon inspection:  %8.1f MB/s  (%zu occurrences at every byte offset)\n",
         sample_bytes / ours_s / 1e6, ours);
  printf("  objdump -d | grep:  %8.1f MB/s  (%zu decoded instructions; misses unaligned ones)\n",
         sample_bytes / theirs_s / 1e6, theirs);
  printf("  ratio:              %8.1f x faster\n", theirs_s / ours_s);
  return 0;
}
