// The lockdown's cost on a cheap system call: getppid() timed before and
// after cordon_lockdown() in one process, so that both numbers come from the
// same run (under TCG too). The "after" benchmark locks the process down the
// first time it runs; Google Benchmark runs them in this file's order.
#include <benchmark/benchmark.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "cordon/cordon.h"

namespace {

void Getppid(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(syscall(SYS_getppid));
}

// A memory call, which the filter also checks against the protected blocks.
// (On a mapped page: the executable's own pages are in the blocks around
// the gate config page.)
void Madvise(benchmark::State& state) {
  static void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  for (auto _ : state) benchmark::DoNotOptimize(madvise(page, 4096, MADV_NORMAL));
}

bool LockedDown(benchmark::State& state) {
  static const int status = cordon_lockdown();
  if (status != CORDON_OK) state.SkipWithError(cordon_strerror(status));
  return status == CORDON_OK;
}

void BM_GetppidBeforeLockdown(benchmark::State& state) {
  Getppid(state);
}
void BM_MadviseBeforeLockdown(benchmark::State& state) {
  Madvise(state);
}
void BM_GetppidAfterLockdown(benchmark::State& state) {
  if (LockedDown(state)) Getppid(state);
}
void BM_MadviseAfterLockdown(benchmark::State& state) {
  if (LockedDown(state)) Madvise(state);
}
BENCHMARK(BM_GetppidBeforeLockdown);
BENCHMARK(BM_MadviseBeforeLockdown);
BENCHMARK(BM_GetppidAfterLockdown);
BENCHMARK(BM_MadviseAfterLockdown);

}  // namespace

int main(int argc, char** argv) {
  if (const int s = cordon_init(nullptr); s != CORDON_OK) {
    fprintf(stderr, "cordon_init: %s\n", cordon_strerror(s));
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
