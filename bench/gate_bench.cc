// Gate benchmarks (Google Benchmark), side by side in one run: a gate round
// trip, a direct call, an mprotect-based domain switch and a pipe round trip
// to another process. Run in the PKU VM (`tools/cordon-vm build/bench/
// cordon_gate_bench`); under TCG each WRPKRU flushes the emulated TLB, so
// only the ratios within one run mean anything there.
#include <benchmark/benchmark.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "bench/pass_target.h"
#include "cordon/cordon.h"
#include "runtime/hardware/platform.h"
#include "runtime/gates/gate_config.h"

extern "C" uint64_t icount_target(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);

namespace {

cordon_entry g_entry;

void BM_DirectCall(benchmark::State& state) {
  auto* volatile fn = &icount_target;  // an indirect call, like the gate's
  for (auto _ : state) benchmark::DoNotOptimize(fn(1, 2, 3, 4, 5));
}
BENCHMARK(BM_DirectCall);

void BM_GateRoundTrip(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(cordon_call(g_entry, 1, 2, 3, 4, 5));
}
BENCHMARK(BM_GateRoundTrip);

// The gate the pass plugin generates for a CORDON_TRUSTED function doing the
// same nothing, called through a pointer like the others.
void BM_PassGateRoundTrip(benchmark::State& state) {
  PassTargetFn volatile fn = &pass_target;
  for (auto _ : state) benchmark::DoNotOptimize(fn(1, 2, 3, 4, 5));
}
BENCHMARK(BM_PassGateRoundTrip);

// What a runtime without PKU would do: open the protected page, call, close.
void BM_MprotectSwitch(benchmark::State& state) {
  void* page = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  for (auto _ : state) {
    mprotect(page, 4096, PROT_READ | PROT_WRITE);
    benchmark::DoNotOptimize(icount_target(1, 2, 3, 4, 5));
    mprotect(page, 4096, PROT_NONE);
  }
  munmap(page, 4096);
}
BENCHMARK(BM_MprotectSwitch);

// Process isolation: 8 bytes to a server process and back.
void BM_PipeRoundTrip(benchmark::State& state) {
  int to_server[2], from_server[2];
  if (pipe(to_server) != 0 || pipe(from_server) != 0) abort();
  const pid_t pid = fork();
  if (pid == 0) {
    close(to_server[1]);  // or its read never sees end-of-file
    close(from_server[0]);
    uint64_t v;
    while (read(to_server[0], &v, sizeof v) == sizeof v) {
      v += 1;
      if (write(from_server[1], &v, sizeof v) != sizeof v) break;
    }
    _exit(0);
  }
  close(to_server[0]);
  close(from_server[1]);
  uint64_t v = 0;
  for (auto _ : state) {
    if (write(to_server[1], &v, sizeof v) != sizeof v || read(from_server[0], &v, sizeof v) != sizeof v)
      abort();
  }
  close(to_server[1]);
  close(from_server[0]);
  waitpid(pid, nullptr, 0);
}
BENCHMARK(BM_PipeRoundTrip);

}  // namespace

int main(int argc, char** argv) {
  const int s = cordon_init(nullptr);
  if (s != CORDON_OK) {
    fprintf(stderr, "cordon: %s\n", cordon_strerror(s));
    return 2;
  }
  if (cordon_register(cordon_trusted_domain(), icount_target, "nop", &g_entry) != CORDON_OK) return 2;
  benchmark::AddCustomContext("cordon_platform", cordon::hw::DescribePlatform());
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
