// Virtual domains (include/cordon/cordon.h, "Virtual domains"): what a call
// costs on a key hit and on a miss (evict, then call: the domain's data of
// 1, 16 and 256 touched pages moves from the parking key to a slot key), an
// eviction storm (round robin over 16 domains, more than the slot keys), and
// cordon_domain_set_rights with 0 to 8 threads running inside the domain
// against mprotect of the same pages with as many threads reading them.
//
//   virtual_domains [--icount] [--even-under-tcg] [benchmark flags]
//
// Two kinds of figures, as in the rest of bench/ (bench/README.md):
//  - times, by Google Benchmark, natively on a PKU host, as ratios to the
//    physical domain's call of the same run;
//  - exact counts per scenario, by single-stepping a traced child (as
//    gate_icount does): user-mode instructions, WRPKRU, and the system calls
//    made, pkey_mprotect and mprotect apart. Under QEMU's TCG (the PKU VM)
//    only these mean anything: each WRPKRU flushes the emulated TLB and the
//    kernel's work is emulated too, so there it prints the counts and skips
//    the times (--even-under-tcg runs them anyway, to check the harness).
//    --icount prints the counts natively too.
// Exit status: 0, or 2 when it cannot run (no PKU, cordon_init refused).
#include <benchmark/benchmark.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "cordon/cordon.h"
#include "runtime/hardware/platform.h"

extern "C" {
extern const char __executable_start[];
uint64_t icount_target(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
// Markers (icount_target.S), each a lone ret: the tracer counts every
// instruction executed after icount_begin(n) returns and before the call
// that enters icount_end().
void icount_begin(int scenario);
void icount_end();
}

namespace {

constexpr size_t kPage = 4096;
constexpr int kStormDomains = 16;
constexpr int kMaxSpinners = 8;
constexpr int kRightsPages = 16;

// Inside a domain: allocates pages of its heap and touches each, so that
// the kernel has page-table entries to retag when the domain moves.
uint64_t TouchPages(uint64_t pages, uint64_t, uint64_t, uint64_t, uint64_t) {
  void* p = nullptr;
  if (cordon_domain_alloc(cordon_current_domain(), kPage, pages * kPage, &p) != CORDON_OK) return 0;
  auto* b = static_cast<volatile uint8_t*>(p);
  for (uint64_t i = 0; i < pages; ++i) b[i * kPage] = 1;
  return reinterpret_cast<uint64_t>(p);
}

// Inside a domain: reads one word of each page until *stop, after counting
// itself in *inside: the thread keeps the pages in its CPU's TLB, which a
// change of rights must shoot down.
uint64_t SpinRead(uint64_t addr, uint64_t pages, uint64_t inside, uint64_t stop, uint64_t) {
  auto* b = reinterpret_cast<const volatile uint8_t*>(addr);
  reinterpret_cast<std::atomic<int>*>(inside)->fetch_add(1);
  const auto* s = reinterpret_cast<const std::atomic<int>*>(stop);
  uint64_t sum = 0;
  while (s->load(std::memory_order_relaxed) == 0) {
    for (uint64_t i = 0; i < pages; ++i) sum += b[i * kPage];
  }
  return sum;
}

struct Domain {
  cordon_domain_t d = 0;
  cordon_entry nop{}, touch{}, spin{};
  uintptr_t data = 0;  // the touched pages
};

struct Bench {
  Domain phys;                  // a physical user domain: the reference call
  Domain hit;                   // virtual, pinned: every call hits
  Domain miss[3];               // virtual, 1, 16 and 256 touched pages
  Domain storm[kStormDomains];  // virtual, round robin
  Domain rights;                // virtual, pinned, kRightsPages touched pages
  void* plain = nullptr;        // kRightsPages ordinary pages, for mprotect
};
Bench g;
constexpr int kMissPages[3] = {1, 16, 256};

bool Make(Domain* d, bool is_virtual, const char* name, uint64_t pages) {
  const int s = is_virtual ? cordon_domain_create_virtual(name, &d->d) : cordon_domain_create(name, &d->d);
  if (s != CORDON_OK) {
    fprintf(stderr, "virtual_domains: cannot create %s: %s\n", name, cordon_strerror(s));
    return false;
  }
  if (cordon_register(d->d, icount_target, "nop", &d->nop) != CORDON_OK ||
      cordon_register(d->d, TouchPages, "touch", &d->touch) != CORDON_OK ||
      cordon_register(d->d, SpinRead, "spin", &d->spin) != CORDON_OK)
    return false;
  if (pages > 0) {
    d->data = cordon_call(d->touch, pages, 0, 0, 0, 0);
    if (d->data == 0) return false;
  }
  return true;
}

int SetUp() {
  cordon_options o;
  cordon_options_init(&o);
  o.max_threads = 32;
  o.heap_size = size_t{4} << 20;
  o.virtual_heap_size = size_t{2} << 20;  // 256 pages and the heap's own
  if (const int s = cordon_init(&o); s != CORDON_OK) {
    fprintf(stderr, "virtual_domains: cordon_init: %s\n", cordon_strerror(s));
    return 2;
  }
  bool ok = Make(&g.phys, false, "phys", 1) && Make(&g.hit, true, "hit", 1) &&
            Make(&g.rights, true, "rights", kRightsPages);
  for (int i = 0; ok && i < 3; ++i) ok = Make(&g.miss[i], true, "miss", kMissPages[i]);
  for (int i = 0; ok && i < kStormDomains; ++i) ok = Make(&g.storm[i], true, "storm", 1);
  if (!ok) return 2;
  if (cordon_domain_pin(g.hit.d) != CORDON_OK || cordon_domain_pin(g.rights.d) != CORDON_OK) {
    fprintf(stderr, "virtual_domains: cannot pin\n");
    return 2;
  }
  g.plain = mmap(nullptr, kRightsPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (g.plain == MAP_FAILED) return 2;
  memset(g.plain, 1, kRightsPages * kPage);
  return 0;
}

void Evict(const Domain& d) {
  const int s = cordon_domain_evict(d.d);
  if (s != CORDON_OK) {
    fprintf(stderr, "virtual_domains: evict: %s\n", cordon_strerror(s));
    abort();
  }
}

// Threads running inside a domain (SpinRead over its pages), or reading
// ordinary pages when domain is null, for as long as the object lives.
class Spinners {
 public:
  Spinners(const Domain* domain, const void* pages, int n) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this, domain, pages] {
        if (domain != nullptr) {
          (void)cordon_call(domain->spin, reinterpret_cast<uint64_t>(pages), kRightsPages,
                            reinterpret_cast<uint64_t>(&inside_), reinterpret_cast<uint64_t>(&stop_), 0);
        } else {
          (void)SpinRead(reinterpret_cast<uint64_t>(pages), kRightsPages,
                         reinterpret_cast<uint64_t>(&inside_), reinterpret_cast<uint64_t>(&stop_), 0);
        }
      });
    }
    while (inside_.load() < n) std::this_thread::yield();
  }
  ~Spinners() {
    stop_ = 1;
    for (auto& t : threads_) t.join();
  }

 private:
  std::atomic<int> inside_{0}, stop_{0};
  std::vector<std::thread> threads_;
};

// ---- Google Benchmark ----

void BM_PhysicalCall(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(cordon_call(g.phys.nop, 1, 2, 3, 4, 5));
}
BENCHMARK(BM_PhysicalCall);

void BM_VirtualCallHit(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(cordon_call(g.hit.nop, 1, 2, 3, 4, 5));
}
BENCHMARK(BM_VirtualCallHit);

// Evict, then call: the call loads the domain into the free slot.
void BM_VirtualCallMiss(benchmark::State& state) {
  const Domain& d = g.miss[state.range(0)];
  for (auto _ : state) {
    Evict(d);
    benchmark::DoNotOptimize(cordon_call(d.nop, 1, 2, 3, 4, 5));
  }
  state.SetLabel(std::to_string(kMissPages[state.range(0)]) + " touched pages");
}
BENCHMARK(BM_VirtualCallMiss)->Arg(0)->Arg(1)->Arg(2);

// Round robin over more domains than slot keys: every call evicts the
// least recently used domain and loads the next.
void BM_EvictionStorm(benchmark::State& state) {
  int i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(cordon_call(g.storm[i].nop, 1, 2, 3, 4, 5));
    i = (i + 1) % kStormDomains;
  }
  state.SetLabel(std::to_string(kStormDomains) + " domains");
}
BENCHMARK(BM_EvictionStorm);

// One revocation and one grant (READ, then READ_WRITE) with N threads inside.
void BM_SetRights(benchmark::State& state) {
  Spinners spin(&g.rights, reinterpret_cast<const void*>(g.rights.data), static_cast<int>(state.range(0)));
  for (auto _ : state) {
    if (cordon_domain_set_rights(g.rights.d, CORDON_RIGHTS_READ) != CORDON_OK ||
        cordon_domain_set_rights(g.rights.d, CORDON_RIGHTS_READ_WRITE) != CORDON_OK)
      abort();
  }
  state.SetLabel(std::to_string(state.range(0)) + " threads inside");
}
BENCHMARK(BM_SetRights)->DenseRange(0, kMaxSpinners, 1)->UseRealTime();

// The same pages' worth of ordinary memory, mprotect READ then READ|WRITE,
// with N threads reading it.
void BM_Mprotect(benchmark::State& state) {
  Spinners spin(nullptr, g.plain, static_cast<int>(state.range(0)));
  for (auto _ : state) {
    if (mprotect(g.plain, kRightsPages * kPage, PROT_READ) != 0 ||
        mprotect(g.plain, kRightsPages * kPage, PROT_READ | PROT_WRITE) != 0)
      abort();
  }
  state.SetLabel(std::to_string(state.range(0)) + " threads reading");
}
BENCHMARK(BM_Mprotect)->DenseRange(0, kMaxSpinners, 1)->UseRealTime();

// ---- Exact counts (ptrace single-step) ----

const unsigned char kWrpkruBytes[3] = {0x0f, 0x01, 0xef};  // as data, not code
const unsigned char kSyscallBytes[2] = {0x0f, 0x05};

const char* const kScenarios[] = {
    "call, physical domain (reference)",
    "call, virtual domain, key hit",
    "evict, 1 touched page",
    "call that loads it, 1 touched page",
    "evict, 16 touched pages",
    "call that loads it, 16 touched pages",
    "evict, 256 touched pages",
    "call that loads it, 256 touched pages",
    "call in a storm (evicts the LRU domain, loads)",
    "set_rights READ + READ_WRITE, no thread inside",
    "set_rights READ + READ_WRITE, 2 threads inside",
    "mprotect READ + READ|WRITE, same pages",
};
constexpr int kScenarioCount = sizeof kScenarios / sizeof kScenarios[0];

// The traced child: set up, stop, then each scenario once between markers
// (after a warm-up run of the same, so that no first-use path is counted).
int TracedChild() {
  if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) return 10;
  if (SetUp() != 0) return 11;
  for (int i = 0; i < kStormDomains; ++i) (void)cordon_call(g.storm[i].nop, 0, 0, 0, 0, 0);
  (void)cordon_call(g.phys.nop, 0, 0, 0, 0, 0);
  (void)cordon_call(g.hit.nop, 0, 0, 0, 0, 0);
  raise(SIGSTOP);

  icount_begin(0);
  (void)cordon_call(g.phys.nop, 1, 2, 3, 4, 5);
  icount_end();
  icount_begin(1);
  (void)cordon_call(g.hit.nop, 1, 2, 3, 4, 5);
  icount_end();
  for (int m = 0; m < 3; ++m) {
    (void)cordon_call(g.miss[m].nop, 0, 0, 0, 0, 0);  // resident, in a free slot or not
    icount_begin(2 + 2 * m);
    Evict(g.miss[m]);
    icount_end();
    icount_begin(3 + 2 * m);
    (void)cordon_call(g.miss[m].nop, 1, 2, 3, 4, 5);
    icount_end();
  }
  for (int i = 0; i < kStormDomains; ++i) (void)cordon_call(g.storm[i].nop, 0, 0, 0, 0, 0);
  icount_begin(8);
  (void)cordon_call(g.storm[0].nop, 1, 2, 3, 4, 5);  // the least recently used: parked
  icount_end();
  icount_begin(9);
  (void)cordon_domain_set_rights(g.rights.d, CORDON_RIGHTS_READ);
  (void)cordon_domain_set_rights(g.rights.d, CORDON_RIGHTS_READ_WRITE);
  icount_end();
  {
    Spinners spin(&g.rights, reinterpret_cast<const void*>(g.rights.data), 2);
    icount_begin(10);
    (void)cordon_domain_set_rights(g.rights.d, CORDON_RIGHTS_READ);
    (void)cordon_domain_set_rights(g.rights.d, CORDON_RIGHTS_READ_WRITE);
    icount_end();
  }
  icount_begin(11);
  (void)mprotect(g.plain, kRightsPages * kPage, PROT_READ);
  (void)mprotect(g.plain, kRightsPages * kPage, PROT_READ | PROT_WRITE);
  icount_end();
  return 0;
}

struct Count {
  long total = 0, wrpkru = 0, syscalls = 0, pkey_mprotect = 0, mprotect = 0, rep = 0;
};

// The length of a rep-prefixed string instruction (F3, an optional REX
// prefix, movs/stos/lods/cmps/scas) at the start of text, or 0.
int RepStringLength(long text) {
  unsigned char b[8];
  memcpy(b, &text, sizeof b);
  if (b[0] != 0xf3) return 0;
  int at = 1;
  if ((b[at] & 0xf0) == 0x40) ++at;
  switch (b[at]) {
    case 0xa4:
    case 0xa5:
    case 0xa6:
    case 0xa7:
    case 0xaa:
    case 0xab:
    case 0xac:
    case 0xad:
    case 0xae:
    case 0xaf:
      return at + 1;
    default:
      return 0;
  }
}

// Runs the stopped child until it reaches addr (an INT3 there, restored).
bool RunToBreakpoint(pid_t pid, uintptr_t addr) {
  errno = 0;
  const long saved = ptrace(PTRACE_PEEKTEXT, pid, reinterpret_cast<void*>(addr), nullptr);
  if (errno != 0) return false;
  const long trap = (saved & ~0xffL) | 0xcc;
  if (ptrace(PTRACE_POKETEXT, pid, reinterpret_cast<void*>(addr), reinterpret_cast<void*>(trap)) != 0)
    return false;
  int status = 0;
  for (;;) {
    if (ptrace(PTRACE_CONT, pid, nullptr, nullptr) != 0) return false;
    if (waitpid(pid, &status, 0) < 0 || !WIFSTOPPED(status)) return false;
    user_regs_struct regs;
    ptrace(PTRACE_GETREGS, pid, nullptr, &regs);
    if (WSTOPSIG(status) == SIGTRAP && regs.rip == addr + 1) {
      regs.rip = addr;
      ptrace(PTRACE_SETREGS, pid, nullptr, &regs);
      break;
    }
  }
  return ptrace(PTRACE_POKETEXT, pid, reinterpret_cast<void*>(addr), reinterpret_cast<void*>(saved)) == 0;
}

int CountInstructions() {
  fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) _exit(TracedChild());
  int status;
  waitpid(pid, &status, 0);
  // Signals before the child's SIGSTOP (cordon_init() probes the signal
  // frame with one) are passed on.
  while (WIFSTOPPED(status) && WSTOPSIG(status) != SIGSTOP) {
    ptrace(PTRACE_CONT, pid, nullptr, reinterpret_cast<void*>(static_cast<long>(WSTOPSIG(status))));
    waitpid(pid, &status, 0);
  }
  if (!WIFSTOPPED(status)) {
    fprintf(stderr, "virtual_domains: the traced child did not reach its measurements (status %#x)\n",
            status);
    return 2;
  }
  const auto begin = reinterpret_cast<uintptr_t>(&icount_begin);
  const auto end = reinterpret_cast<uintptr_t>(&icount_end);
  Count counts[kScenarioCount];
  int scenario = -1;
  long steps_here = 0;  // since the last marker
  while (ptrace(PTRACE_SINGLESTEP, pid, nullptr, nullptr) == 0) {
    if (++steps_here % 500000 == 0) {  // a loop that waits for time to pass, stepped
      user_regs_struct r;
      ptrace(PTRACE_GETREGS, pid, nullptr, &r);
      fprintf(stderr, "virtual_domains: %ld steps since the last marker (scenario %d), at %#llx (+%#llx)\n",
              steps_here, scenario, static_cast<unsigned long long>(r.rip),
              static_cast<unsigned long long>(r.rip - reinterpret_cast<uintptr_t>(__executable_start)));
    }
    if (waitpid(pid, &status, 0) < 0 || WIFEXITED(status) || WIFSIGNALED(status)) break;
    if (WSTOPSIG(status) != SIGTRAP) {  // a signal of its own: deliver it
      ptrace(PTRACE_SINGLESTEP, pid, nullptr, reinterpret_cast<void*>(static_cast<long>(WSTOPSIG(status))));
      if (waitpid(pid, &status, 0) < 0 || WIFEXITED(status) || WIFSIGNALED(status)) break;
    }
    user_regs_struct regs;
    ptrace(PTRACE_GETREGS, pid, nullptr, &regs);
    const uintptr_t rip = regs.rip;
    if (rip == begin) {  // about to run the marker's ret: count from the next step
      scenario = regs.rdi < kScenarioCount ? static_cast<int>(regs.rdi) : -1;
      steps_here = 0;
      continue;
    }
    if (rip == end) {  // the call into the marker was the last counted step
      if (scenario >= 0) counts[scenario].total -= 1;
      scenario = -1;
      steps_here = 0;
      continue;
    }
    errno = 0;
    const long text = ptrace(PTRACE_PEEKTEXT, pid, reinterpret_cast<void*>(rip), nullptr);
    if (errno != 0) continue;
    Count spare;  // steps outside every scenario count nowhere
    Count& c = scenario >= 0 ? counts[scenario] : spare;
    c.total += 1;
    if (memcmp(&text, kWrpkruBytes, sizeof kWrpkruBytes) == 0) c.wrpkru += 1;
    // A rep string instruction (the runtime's stack clean is a rep stosb
    // over a whole trusted stack) traps after every iteration: run it to
    // its end under a breakpoint on the next instruction, and count it once.
    if (const int len = RepStringLength(text); len > 0) {
      c.rep += 1;
      if (!RunToBreakpoint(pid, rip + static_cast<uintptr_t>(len))) break;
      continue;
    }
    if (memcmp(&text, kSyscallBytes, sizeof kSyscallBytes) == 0) {
      c.syscalls += 1;
      if (regs.rax == SYS_pkey_mprotect) c.pkey_mprotect += 1;
      if (regs.rax == SYS_mprotect) c.mprotect += 1;
    }
  }
  waitpid(pid, &status, 0);
  printf("Exact user-mode counts per scenario (ptrace single-step of one run):\n");
  printf("%-50s %8s %7s %9s %14s %9s %4s\n", "scenario", "instr", "WRPKRU", "syscalls", "pkey_mprotect",
         "mprotect", "rep");
  for (int i = 0; i < kScenarioCount; ++i) {
    printf("%-50s %8ld %7ld %9ld %14ld %9ld %4ld\n", kScenarios[i], counts[i].total, counts[i].wrpkru,
           counts[i].syscalls, counts[i].pkey_mprotect, counts[i].mprotect, counts[i].rep);
  }
  printf(
      "(instructions in user mode only, a rep string instruction counted once ('rep': how many ran;\n"
      " a miss cleans the thread's trusted stack with one); the kernel's share of a miss or a\n"
      " revocation, retagging the pages and shooting down other CPUs' TLB entries, is what the\n"
      " times measure natively.)\n");
  return counts[1].total > 0 && counts[3].pkey_mprotect > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  printf("platform: %s\n", cordon::hw::DescribePlatform().c_str());
  bool icount = false, even_under_tcg = false;
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--icount") == 0)
      icount = true;
    else if (strcmp(argv[i], "--even-under-tcg") == 0)
      even_under_tcg = true;
    else
      rest.push_back(argv[i]);
  }
  const bool tcg = cordon::hw::UnderTcg();
  if (icount || tcg) {
    const int r = CountInstructions();
    if (r != 0 || (tcg && !even_under_tcg)) {
      if (tcg && !even_under_tcg)
        printf(
            "under QEMU's TCG each WRPKRU flushes the emulated TLB and the kernel is emulated: times here\n"
            "say nothing about hardware (--even-under-tcg runs the timed benchmarks anyway).\n");
      return r;
    }
  }
  if (const int s = SetUp(); s != 0) return s;
  benchmark::AddCustomContext("cordon_platform", cordon::hw::DescribePlatform());
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
