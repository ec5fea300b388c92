// The lockdown's costs, timed before and after cordon_lockdown() in one
// process, so that both numbers come from the same run (under TCG too):
//  - the filter on a cheap system call (getppid) and on a memory call;
//  - a signal delivered to a handler: straight from the kernel before
//    lockdown, through the runtime's entry and checked sigreturn after, and
//    when it interrupts trusted code (the handler then runs outside it);
//  - a gate round trip, alone and while a timer sends signals;
//  - making 1 MiB of code executable: mmap, copy and mprotect as a program
//    without Cordon does it (before lockdown; refused after), against the
//    inspected path (cordon_code_load, then cordon_code_release) before and
//    after lockdown.
// The first "after" benchmark locks the process down; Google Benchmark runs
// them in this file's order.
#include <benchmark/benchmark.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cordon/cordon.h"
#include "runtime/hardware/platform.h"

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
volatile sig_atomic_t g_signals = 0;
void CountSignal(int) {
  g_signals = g_signals + 1;
}

cordon_entry g_echo, g_raise;
uint64_t Echo(uint64_t v, uint64_t, uint64_t, uint64_t, uint64_t) {
  return v;
}
// Trusted code that gets a signal: the runtime runs the handler outside
// the domain and then resumes here.
uint64_t RaiseInside(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return static_cast<uint64_t>(syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1));
}

void Raise(benchmark::State& state) {
  for (auto _ : state) raise(SIGUSR1);
  state.counters["handled"] = g_signals;
}

void BM_RaiseBeforeLockdown(benchmark::State& state) {
  Raise(state);
}
void BM_RaiseAfterLockdown(benchmark::State& state) {
  if (LockedDown(state)) Raise(state);
}
void BM_RaiseInsideTrustedCode(benchmark::State& state) {
  if (!LockedDown(state)) return;
  for (auto _ : state) benchmark::DoNotOptimize(cordon_call(g_raise, 0, 0, 0, 0, 0));
}

void GateRoundTrips(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(cordon_call(g_echo, 1, 0, 0, 0, 0));
}
void BM_GateRoundTripAfterLockdown(benchmark::State& state) {
  if (LockedDown(state)) GateRoundTrips(state);
}
// SIGALRM every state.range(0) microseconds while the thread goes in and out.
void BM_GateRoundTripUnderTimerSignals(benchmark::State& state) {
  if (!LockedDown(state)) return;
  struct sigaction sa {};
  sa.sa_handler = CountSignal;
  sa.sa_flags = SA_RESTART;
  if (cordon_sigaction(SIGALRM, &sa, nullptr) != CORDON_OK) state.SkipWithError("cordon_sigaction");
  const long us = static_cast<long>(state.range(0));
  const itimerval every{{0, us}, {0, us}};
  setitimer(ITIMER_REAL, &every, nullptr);
  const int before = g_signals;
  GateRoundTrips(state);
  const itimerval off{};
  setitimer(ITIMER_REAL, &off, nullptr);
  state.counters["signals"] = g_signals - before;
}

// 1 MiB of NOPs and a RET, as a JIT would have generated it.
const std::vector<uint8_t>& Code() {
  static const std::vector<uint8_t> code = [] {
    std::vector<uint8_t> c(size_t{1} << 20, 0x90);
    c.back() = 0xc3;
    return c;
  }();
  return code;
}

void BM_Exec1MiBWithoutCordon(benchmark::State& state) {
  const std::vector<uint8_t>& code = Code();
  for (auto _ : state) {
    void* p = mmap(nullptr, code.size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return state.SkipWithError("mmap");
    memcpy(p, code.data(), code.size());
    if (mprotect(p, code.size(), PROT_READ | PROT_EXEC) != 0) return state.SkipWithError("mprotect");
    reinterpret_cast<void (*)()>(static_cast<char*>(p) + code.size() - 1)();
    munmap(p, code.size());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * code.size()));
}

void InspectedExec(benchmark::State& state) {
  const std::vector<uint8_t>& code = Code();
  for (auto _ : state) {
    void* p = nullptr;
    if (const int s = cordon_code_load(code.data(), code.size(), &p); s != CORDON_OK) {
      return state.SkipWithError(cordon_strerror(s));
    }
    reinterpret_cast<void (*)()>(static_cast<char*>(p) + code.size() - 1)();
    (void)cordon_code_release(p);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * code.size()));
}
void BM_Exec1MiBInspectedBeforeLockdown(benchmark::State& state) {
  InspectedExec(state);
}
void BM_Exec1MiBInspectedAfterLockdown(benchmark::State& state) {
  if (LockedDown(state)) InspectedExec(state);
}

BENCHMARK(BM_GetppidBeforeLockdown);
BENCHMARK(BM_MadviseBeforeLockdown);
BENCHMARK(BM_RaiseBeforeLockdown);
BENCHMARK(BM_Exec1MiBWithoutCordon);
BENCHMARK(BM_Exec1MiBInspectedBeforeLockdown);
BENCHMARK(BM_GetppidAfterLockdown);
BENCHMARK(BM_MadviseAfterLockdown);
BENCHMARK(BM_RaiseAfterLockdown);
BENCHMARK(BM_RaiseInsideTrustedCode);
BENCHMARK(BM_GateRoundTripAfterLockdown);
BENCHMARK(BM_GateRoundTripUnderTimerSignals)->Arg(1000)->Arg(100);
BENCHMARK(BM_Exec1MiBInspectedAfterLockdown);

}  // namespace

int main(int argc, char** argv) {
  if (const int s = cordon_init(nullptr); s != CORDON_OK) {
    fprintf(stderr, "cordon_init: %s\n", cordon_strerror(s));
    return 1;
  }
  // A handler installed the ordinary way: the lockdown takes it over.
  signal(SIGUSR1, CountSignal);
  if (cordon_register(cordon_trusted_domain(), Echo, "echo", &g_echo) != CORDON_OK ||
      cordon_register(cordon_trusted_domain(), RaiseInside, "raise_inside", &g_raise) != CORDON_OK) {
    fprintf(stderr, "cordon_register failed\n");
    return 1;
  }
  benchmark::AddCustomContext("cordon_platform", cordon::hw::DescribePlatform());
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
