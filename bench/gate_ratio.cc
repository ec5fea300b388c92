// Gate costs in the hardware's own unit: each figure as a ratio to a bare
// WRPKRU pair measured in the same run, round by round (issue: speed targets
// are ratios, because absolute times drift 10-30% between runs while ratios
// hold). The pair runs in bench/wrpkru_reference, a process without Cordon,
// pinned to the same CPU and driven over a pipe between this program's own
// measurements; the scenarios run in a random order in each round. Prints
// min and median over the rounds.
//
//   gate_ratio [--even-under-tcg] [ROUNDS [ITERATIONS]]     defaults 15 and 200000
//
// Under QEMU's TCG (the PKU VM) each WRPKRU flushes the emulated TLB, so
// times there mean nothing: it says so and exits 0; gate_icount gives the
// exact instruction counts instead. --even-under-tcg measures anyway, to
// check the harness itself in the VM (the figures are then meaningless). Exit status: 0, or 2 when it cannot
// run (no PKU, cordon_init refused, the reference is missing).
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bench/pass_target.h"
#include "cordon/cordon.h"
#include "runtime/gates/gate_config.h"
#include "runtime/hardware/platform.h"

extern "C" uint64_t icount_target(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);

namespace {

double NowNs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

// The two costs that hardening added to the gates, measured alone in the
// same rounds: the TCB switch's WRFSBASE pair (entry and exit each write
// fs once, with the value this thread already has here), and one system
// call (the callback return's gettid owner check).
void WrfsbasePairs(long k) {
  uint64_t fs;
  __asm__ volatile("rdfsbase %0" : "=r"(fs));
  for (long i = 0; i < k; ++i) __asm__ volatile("wrfsbase %0\n\twrfsbase %0" : : "r"(fs) : "memory");
}

void Gettids(long k) {
  for (long i = 0; i < k; ++i) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(186L) : "rcx", "r11", "memory");
  }
}

uint64_t UntrustedNop(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return 0;
}

// Inside the trusted domain: n callbacks out and back.
uint64_t Callouts(uint64_t n, uint64_t, uint64_t, uint64_t, uint64_t) {
  uint64_t sum = 0;
  for (uint64_t i = 0; i < n; ++i) sum += cordon_call_untrusted(UntrustedNop, i, 0, 0, 0, 0);
  return sum;
}

struct Reference {
  FILE* to = nullptr;
  FILE* from = nullptr;
  pid_t pid = -1;
  double PairNs(long n) {
    fprintf(to, "%ld\n", n);
    fflush(to);
    double ns = 0;
    if (fscanf(from, "%lf", &ns) != 1) {
      fprintf(stderr, "gate_ratio: the WRPKRU reference process stopped answering\n");
      exit(2);
    }
    return ns;
  }
};

Reference StartReference(const std::string& path) {
  int in[2], out[2];
  if (pipe(in) != 0 || pipe(out) != 0) exit(2);
  Reference r;
  r.pid = fork();
  if (r.pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[1]);
    close(out[0]);
    execl(path.c_str(), path.c_str(), static_cast<char*>(nullptr));
    fprintf(stderr, "gate_ratio: cannot run %s: %s\n", path.c_str(), strerror(errno));
    _exit(2);
  }
  close(in[0]);
  close(out[1]);
  r.to = fdopen(in[1], "w");
  r.from = fdopen(out[0], "r");
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  printf("platform: %s\n", cordon::hw::DescribePlatform().c_str());
  const bool even_under_tcg = argc > 1 && strcmp(argv[1], "--even-under-tcg") == 0;
  if (even_under_tcg) {
    --argc;
    ++argv;
  }
  if (cordon::hw::UnderTcg() && !even_under_tcg) {
    printf(
        "under QEMU's TCG each WRPKRU flushes the emulated TLB: times here say nothing about hardware.\n"
        "The exact instruction counts are gate_icount's (tools/dev bench runs it).\n");
    return 0;
  }
  const int rounds = argc > 1 ? atoi(argv[1]) : 15;
  const long iterations = argc > 2 ? atol(argv[2]) : 200000;
  if (rounds < 1 || iterations < 1000) {
    fprintf(stderr, "usage: gate_ratio [ROUNDS >= 1 [ITERATIONS >= 1000]]\n");
    return 2;
  }
  // One CPU for this process and the reference, so that both see the same core.
  const int cpu = sched_getcpu();
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu < 0 ? 0 : cpu, &set);
  sched_setaffinity(0, sizeof set, &set);

  std::string self(PATH_MAX, '\0');
  const ssize_t n = readlink("/proc/self/exe", self.data(), self.size());
  if (n <= 0) return 2;
  self.resize(static_cast<size_t>(n));
  Reference ref = StartReference(self.substr(0, self.rfind('/')) + "/wrpkru_reference");
  if (ref.PairNs(1000) <= 0) return 2;

  if (const int s = cordon_init(nullptr); s != CORDON_OK) {
    fprintf(stderr, "gate_ratio: cordon_init: %s\n", cordon_strerror(s));
    return 2;
  }
  cordon_entry nop, callouts;
  if (cordon_register(cordon_trusted_domain(), icount_target, "nop", &nop) != CORDON_OK ||
      cordon_register(cordon_trusted_domain(), Callouts, "callouts", &callouts) != CORDON_OK) {
    return 2;
  }
  const auto gate = cordon::gates::GateFor(nop.domain);
  void* page = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  auto* volatile direct = &icount_target;
  PassTargetFn volatile pass = &pass_target;

  struct Scenario {
    const char* name;
    std::function<void(long)> run;
    long scale;  // iterations are divided by this (slow scenarios)
    std::vector<double> ratios, ns;
  };
  std::vector<Scenario> scenarios = {
      {"runtime gate, called directly",
       [&](long k) {
         for (long i = 0; i < k; ++i) (void)gate(1, 2, 3, 4, 5, nop.id);
       },
       1,
       {},
       {}},
      {"pass-generated gate (CORDON_TRUSTED)",
       [&](long k) {
         for (long i = 0; i < k; ++i) (void)pass(1, 2, 3, 4, 5);
       },
       1,
       {},
       {}},
      {"cordon_call",
       [&](long k) {
         for (long i = 0; i < k; ++i) (void)cordon_call(nop, 1, 2, 3, 4, 5);
       },
       1,
       {},
       {}},
      {"callback out (cordon_call_untrusted)",
       [&](long k) { (void)cordon_call(callouts, static_cast<uint64_t>(k), 0, 0, 0, 0); },
       1,
       {},
       {}},
      {"mprotect switch (RW, call, NONE)",
       [&](long k) {
         for (long i = 0; i < k; ++i) {
           mprotect(page, 4096, PROT_READ | PROT_WRITE);
           (void)direct(1, 2, 3, 4, 5);
           mprotect(page, 4096, PROT_NONE);
         }
       },
       50,
       {},
       {}},
      {"  part: a WRFSBASE pair (the TCB switch)", WrfsbasePairs, 1, {}, {}},
      {"  part: a system call (gettid)", Gettids, 10, {}, {}},
      {"direct call (no switch)",
       [&](long k) {
         for (long i = 0; i < k; ++i) (void)direct(1, 2, 3, 4, 5);
       },
       1,
       {},
       {}},
  };
  for (auto& s : scenarios) s.run(1000);  // warm: this thread's record is attached
  std::mt19937 rng(12345);
  std::vector<double> pairs;
  for (int r = 0; r < rounds; ++r) {
    const double before = ref.PairNs(iterations);
    std::vector<size_t> order(scenarios.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<double> ns(scenarios.size());
    for (size_t i : order) {
      const long k = iterations / scenarios[i].scale;
      const double t0 = NowNs();
      scenarios[i].run(k);
      ns[i] = (NowNs() - t0) / static_cast<double>(k);
    }
    const double pair = (before + ref.PairNs(iterations)) / 2;
    pairs.push_back(pair);
    for (size_t i = 0; i < scenarios.size(); ++i) {
      scenarios[i].ns.push_back(ns[i]);
      scenarios[i].ratios.push_back(ns[i] / pair);
    }
  }
  fclose(ref.to);
  waitpid(ref.pid, nullptr, 0);
  printf(
      "%d rounds of %ld iterations, pinned to CPU %d; ratio = time / a bare WRPKRU pair in the same round\n",
      rounds, iterations, cpu);
  printf("%-40s %10s %10s %12s\n", "scenario", "min", "median", "median ns");
  printf("%-40s %10s %10s %12.2f\n", "bare WRPKRU pair (the unit)", "1.00", "1.00", Median(pairs));
  for (const auto& s : scenarios) {
    printf("%-40s %9.2fx %9.2fx %12.2f\n", s.name, *std::min_element(s.ratios.begin(), s.ratios.end()),
           Median(s.ratios), Median(s.ns));
  }
  return 0;
}
