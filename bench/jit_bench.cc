// The JIT sample (samples/jit/) publishing its code two ways, one binary
// each, from this one source:
//  - jit_mprotect_bench: plain W^X without Cordon (no cordon_init): mmap
//    read-write, copy, mprotect read+execute; and in place, mprotect
//    read-write, copy, mprotect read+execute again (the flip a JIT does to
//    patch its code, which a second thread can race);
//  - cordon_jit_bench (CORDON_JIT_BENCH_CORDON): Cordon's code region,
//    reserve + publish + release, and publish over the same block, before
//    and after cordon_lockdown(). It cannot run the baseline: the lockdown
//    refuses mprotect(PROT_EXEC), and the runtime's own code-region
//    figures come from its inspected path only.
// Both publish 4 KiB, 64 KiB and 1 MiB of the JIT's real output, and time
// the compiled Sierpinski program (the same bytes either way). The baseline
// also times the compiler and the reference interpreter.
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "samples/jit/bf.h"

#ifdef CORDON_JIT_BENCH_CORDON
#include "cordon/cordon.h"
#include "runtime/hardware/platform.h"
#endif

namespace {

const std::string& Sierpinski() {
  static const std::string src = bf::SierpinskiProgram(63, 32, 20);
  return src;
}

bf::Code CompileOrDie(const std::string& src) {
  bf::Program p;
  bf::Code code;
  std::string error;
  if (!bf::Parse(src, &p, &error) || !bf::Compile(p, bf::Constants::kSplit, &code, &error)) {
    fprintf(stderr, "compile: %s\n", error.c_str());
    abort();
  }
  return code;
}

// n bytes of the JIT's output: the Sierpinski code, repeated.
std::vector<uint8_t> CodeOfSize(size_t n) {
  static const bf::Code one = CompileOrDie(bf::SierpinskiProgram(63, 32, 1));
  std::vector<uint8_t> c;
  c.reserve(n);
  while (c.size() < n)
    c.insert(c.end(), one.bytes.begin(), one.bytes.begin() + std::min(one.bytes.size(), n - c.size()));
  return c;
}

bf::Tape& TheTape() {
  static bf::Tape tape;
  return tape;
}

// The program's tape use is its first few hundred cells.
constexpr size_t kCellsUsed = 4096;

void RunCompiled(benchmark::State& state, void* fn, size_t expected_size) {
  bf::Tape& tape = TheTape();
  for (auto _ : state) {
    tape.Clear(kCellsUsed);
    bf::Io io;
    io.output.reserve(expected_size);
    reinterpret_cast<bf::CompiledFn>(fn)(tape.cells(), &io, &bf::Io::Out, &bf::Io::In);
    if (io.output.size() != expected_size) return state.SkipWithError("wrong output size");
    benchmark::DoNotOptimize(io.output.data());
  }
}

#ifndef CORDON_JIT_BENCH_CORDON

void BM_PublishMprotect(benchmark::State& state) {
  const std::vector<uint8_t> code = CodeOfSize(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    void* p = mmap(nullptr, code.size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return state.SkipWithError("mmap");
    memcpy(p, code.data(), code.size());
    if (mprotect(p, code.size(), PROT_READ | PROT_EXEC) != 0) return state.SkipWithError("mprotect");
    benchmark::DoNotOptimize(*static_cast<volatile uint8_t*>(p));
    munmap(p, code.size());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * code.size()));
}

void BM_RepublishMprotect(benchmark::State& state) {
  const std::vector<uint8_t> code = CodeOfSize(static_cast<size_t>(state.range(0)));
  void* p = mmap(nullptr, code.size(), PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return state.SkipWithError("mmap");
  for (auto _ : state) {
    if (mprotect(p, code.size(), PROT_READ | PROT_WRITE) != 0) return state.SkipWithError("mprotect");
    memcpy(p, code.data(), code.size());
    if (mprotect(p, code.size(), PROT_READ | PROT_EXEC) != 0) return state.SkipWithError("mprotect");
    benchmark::DoNotOptimize(*static_cast<volatile uint8_t*>(p));
  }
  munmap(p, code.size());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * code.size()));
}

void BM_RunMprotect(benchmark::State& state) {
  static const bf::Code code = CompileOrDie(Sierpinski());
  bf::MappedCode mapped;
  if (!mapped.Map(code.bytes.data(), code.bytes.size())) return state.SkipWithError("map");
  RunCompiled(state, mapped.entry(), 20 * 32 * 64);
}

void BM_Compile(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(CompileOrDie(Sierpinski()).bytes.size());
  state.counters["code_bytes"] = static_cast<double>(CompileOrDie(Sierpinski()).bytes.size());
}

void BM_Interpret(benchmark::State& state) {
  for (auto _ : state) {
    std::string out, error;
    if (!bf::Interpret(Sierpinski(), "", &out, &error)) return state.SkipWithError(error.c_str());
    benchmark::DoNotOptimize(out.data());
  }
}

BENCHMARK(BM_PublishMprotect)->Arg(4096)->Arg(65536)->Arg(1 << 20);
BENCHMARK(BM_RepublishMprotect)->Arg(4096)->Arg(65536)->Arg(1 << 20);
BENCHMARK(BM_RunMprotect);
BENCHMARK(BM_Compile);
BENCHMARK(BM_Interpret)->Unit(benchmark::kMillisecond);

#else  // CORDON_JIT_BENCH_CORDON

bool LockedDown(benchmark::State& state) {
  static const int status = cordon_lockdown();
  if (status != CORDON_OK) state.SkipWithError(cordon_strerror(status));
  return status == CORDON_OK;
}

void Publish(benchmark::State& state) {
  const std::vector<uint8_t> code = CodeOfSize(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    void* block = nullptr;
    if (cordon_code_reserve(code.size(), &block) != CORDON_OK) return state.SkipWithError("reserve");
    if (const int s = cordon_code_publish(block, code.data(), code.size()); s != CORDON_OK) {
      return state.SkipWithError(cordon_strerror(s));
    }
    benchmark::DoNotOptimize(*static_cast<volatile uint8_t*>(block));
    cordon_code_release(block);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * code.size()));
}

void Republish(benchmark::State& state) {
  const std::vector<uint8_t> code = CodeOfSize(static_cast<size_t>(state.range(0)));
  void* block = nullptr;
  if (cordon_code_reserve(code.size(), &block) != CORDON_OK) return state.SkipWithError("reserve");
  for (auto _ : state) {
    if (const int s = cordon_code_publish(block, code.data(), code.size()); s != CORDON_OK) {
      return state.SkipWithError(cordon_strerror(s));
    }
    benchmark::DoNotOptimize(*static_cast<volatile uint8_t*>(block));
  }
  cordon_code_release(block);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * code.size()));
}

void RunPublished(benchmark::State& state) {
  static const bf::Code code = CompileOrDie(Sierpinski());
  void* fn = nullptr;
  if (cordon_code_load(code.bytes.data(), code.bytes.size(), &fn) != CORDON_OK) {
    return state.SkipWithError("cordon_code_load");
  }
  RunCompiled(state, fn, 20 * 32 * 64);
  cordon_code_release(fn);
}

void BM_PublishCodeRegionBeforeLockdown(benchmark::State& state) {
  Publish(state);
}
void BM_RepublishCodeRegionBeforeLockdown(benchmark::State& state) {
  Republish(state);
}
void BM_RunCodeRegionBeforeLockdown(benchmark::State& state) {
  RunPublished(state);
}
void BM_PublishCodeRegionAfterLockdown(benchmark::State& state) {
  if (LockedDown(state)) Publish(state);
}
void BM_RepublishCodeRegionAfterLockdown(benchmark::State& state) {
  if (LockedDown(state)) Republish(state);
}
void BM_RunCodeRegionAfterLockdown(benchmark::State& state) {
  if (LockedDown(state)) RunPublished(state);
}

BENCHMARK(BM_PublishCodeRegionBeforeLockdown)->Arg(4096)->Arg(65536)->Arg(1 << 20);
BENCHMARK(BM_RepublishCodeRegionBeforeLockdown)->Arg(4096)->Arg(65536)->Arg(1 << 20);
BENCHMARK(BM_RunCodeRegionBeforeLockdown);
BENCHMARK(BM_PublishCodeRegionAfterLockdown)->Arg(4096)->Arg(65536)->Arg(1 << 20);
BENCHMARK(BM_RepublishCodeRegionAfterLockdown)->Arg(4096)->Arg(65536)->Arg(1 << 20);
BENCHMARK(BM_RunCodeRegionAfterLockdown);

#endif

}  // namespace

int main(int argc, char** argv) {
  if (!TheTape().ok()) return 1;
#ifdef CORDON_JIT_BENCH_CORDON
  if (const int s = cordon_init(nullptr); s != CORDON_OK) {
    fprintf(stderr, "cordon_init: %s\n", cordon_strerror(s));
    return 1;
  }
  benchmark::AddCustomContext("cordon_platform", cordon::hw::DescribePlatform());
#endif
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
