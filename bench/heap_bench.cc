// Trusted heap against the process's malloc (Google Benchmark). The
// allocator logic needs no PKU, so this runs anywhere; inside a domain, the
// same code runs on tagged memory with no extra cost per access.
//
// "System" is whatever malloc the process has: glibc's, or the one loaded
// with LD_PRELOAD (bench/heap_compare.sh runs it under glibc, jemalloc and
// mimalloc); the context line "malloc" says which. The trusted heap is set
// up as a domain's is: one thread slot per thread (a domain's slot is the
// thread's trusted stack; here a thread-local number stands in for it).
// Every benchmark runs on 1 and 2 threads.
#include <benchmark/benchmark.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "runtime/hardware/platform.h"
#include "runtime/heap/trusted_heap.h"

using cordon::heap::TrustedHeap;

namespace {

constexpr size_t kArena = size_t{64} << 20;

uint32_t ThreadSlot(uintptr_t) {
  static std::atomic<uint32_t> next{0};
  thread_local const uint32_t mine = next.fetch_add(1);
  return mine;
}

TrustedHeap* NewHeap(unsigned char** arena_out) {
  void* meta = mmap(nullptr, sizeof(TrustedHeap) + TrustedHeap::MetadataBytes(kArena), PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void* arena =
      mmap(nullptr, kArena, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (meta == MAP_FAILED || arena == MAP_FAILED) abort();
  auto* heap = new (meta) TrustedHeap(arena, kArena);
  if (!heap->EnableThreadSlots(&ThreadSlot, 0, 64)) abort();
  if (arena_out != nullptr) *arena_out = static_cast<unsigned char*>(arena);
  return heap;
}

TrustedHeap* Heap() {
  static TrustedHeap* heap = NewHeap(nullptr);
  return heap;
}

// Allocate-then-free pairs of one size.
void BM_TrustedHeapPair(benchmark::State& state) {
  TrustedHeap* h = Heap();
  const auto size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    auto r = h->Allocate(size);
    benchmark::DoNotOptimize(r.ptr);
    (void)h->Free(r.ptr);
  }
}
BENCHMARK(BM_TrustedHeapPair)->Arg(32)->Arg(512)->Arg(16384)->Threads(1)->Threads(2);

void BM_SystemMallocPair(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    void* p = malloc(size);
    benchmark::DoNotOptimize(p);
    free(p);
  }
}
BENCHMARK(BM_SystemMallocPair)->Arg(32)->Arg(512)->Arg(16384)->Threads(1)->Threads(2);

// calloc: the contract the trusted heap keeps (every block handed out is
// zero), so the like-for-like comparison for sizes where zeroing dominates.
void BM_SystemCallocPair(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    void* p = calloc(1, size);
    benchmark::DoNotOptimize(p);
    free(p);
  }
}
BENCHMARK(BM_SystemCallocPair)->Arg(32)->Arg(16384)->Threads(1)->Threads(2);

// A mixed working set: 1000 live blocks of random sizes (16 B to 4 KiB, so
// both slabs and page runs), churned; each thread has its own set.
template <typename Alloc, typename Free>
void Churn(benchmark::State& state, Alloc alloc, Free release) {
  std::mt19937 rng(7 + static_cast<unsigned>(state.thread_index()));
  std::vector<void*> live(1000, nullptr);
  for (auto _ : state) {
    const size_t i = rng() % live.size();
    release(live[i]);
    live[i] = alloc(16 + rng() % 4000);
    benchmark::DoNotOptimize(live[i]);
  }
  for (void* p : live) release(p);
}

void BM_TrustedHeapChurn(benchmark::State& state) {
  TrustedHeap* h = Heap();
  Churn(
      state, [&](size_t n) { return h->Allocate(n).ptr; }, [&](void* p) { (void)h->Free(p); });
}
BENCHMARK(BM_TrustedHeapChurn)->Threads(1)->Threads(2);

void BM_SystemMallocChurn(benchmark::State& state) {
  Churn(
      state, [](size_t n) { return malloc(n); }, [](void* p) { free(p); });
}
BENCHMARK(BM_SystemMallocChurn)->Threads(1)->Threads(2);

// What a 16 KiB allocate/free loop leaves resident in a fresh heap's arena
// (mincore), after 100000 iterations: the pages the loop reuses.
void BM_TrustedHeapResident16K(benchmark::State& state) {
  unsigned char* arena = nullptr;
  TrustedHeap* h = NewHeap(&arena);
  for (auto _ : state) {
    for (int i = 0; i < 100000; ++i) {
      auto r = h->Allocate(16384);
      memset(r.ptr, 1, 16384);
      (void)h->Free(r.ptr);
    }
  }
  std::vector<unsigned char> vec(kArena / 4096);
  size_t resident = 0;
  if (mincore(arena, kArena, vec.data()) == 0) {
    for (unsigned char v : vec) resident += v & 1;
  }
  state.counters["resident_KiB"] = static_cast<double>(resident * 4);
  state.counters["touched_KiB"] = static_cast<double>(h->PagesTouched() * 4);
  munmap(arena, kArena);
}
BENCHMARK(BM_TrustedHeapResident16K)->Iterations(1);

std::string MallocName() {
  const char* preload = getenv("LD_PRELOAD");
  if (preload == nullptr || preload[0] == '\0') return "glibc";
  std::string p = preload;
  if (p.find("jemalloc") != std::string::npos) return "jemalloc (LD_PRELOAD=" + p + ")";
  if (p.find("mimalloc") != std::string::npos) return "mimalloc (LD_PRELOAD=" + p + ")";
  return "LD_PRELOAD=" + p;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::AddCustomContext("cordon_platform", cordon::hw::DescribePlatform());
  benchmark::AddCustomContext("malloc", MallocName());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
