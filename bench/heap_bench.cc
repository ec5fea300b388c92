// Trusted heap against glibc malloc (Google Benchmark). The allocator logic
// needs no PKU, so this runs anywhere; inside a domain, the same code runs
// on tagged memory with no extra cost per access.
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <cstdlib>
#include <new>
#include <random>
#include <vector>

#include "runtime/hardware/platform.h"
#include "runtime/heap/trusted_heap.h"

using cordon::heap::TrustedHeap;

namespace {

constexpr size_t kArena = size_t{64} << 20;

TrustedHeap* MakeHeap() {
  static TrustedHeap* heap = [] {
    void* meta = mmap(nullptr, sizeof(TrustedHeap) + TrustedHeap::MetadataBytes(kArena),
                      PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void* arena =
        mmap(nullptr, kArena, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return new (meta) TrustedHeap(arena, kArena);
  }();
  return heap;
}

// Allocate-then-free pairs of one size.
void BM_TrustedHeapPair(benchmark::State& state) {
  TrustedHeap* h = MakeHeap();
  const auto size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    auto r = h->Allocate(size);
    benchmark::DoNotOptimize(r.ptr);
    (void)h->Free(r.ptr);
  }
}
BENCHMARK(BM_TrustedHeapPair)->Arg(32)->Arg(512)->Arg(16384);

void BM_GlibcMallocPair(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    void* p = malloc(size);
    benchmark::DoNotOptimize(p);
    free(p);
  }
}
BENCHMARK(BM_GlibcMallocPair)->Arg(32)->Arg(512)->Arg(16384);

// A mixed working set: 1000 live blocks of random sizes, churned.
template <typename Alloc, typename Free>
void Churn(benchmark::State& state, Alloc alloc, Free release) {
  std::mt19937 rng(7);
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
  TrustedHeap* h = MakeHeap();
  Churn(
      state, [&](size_t n) { return h->Allocate(n).ptr; }, [&](void* p) { (void)h->Free(p); });
}
BENCHMARK(BM_TrustedHeapChurn);

void BM_GlibcMallocChurn(benchmark::State& state) {
  Churn(
      state, [](size_t n) { return malloc(n); }, [](void* p) { free(p); });
}
BENCHMARK(BM_GlibcMallocChurn);

}  // namespace

int main(int argc, char** argv) {
  benchmark::AddCustomContext("cordon_platform", cordon::hw::DescribePlatform());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
