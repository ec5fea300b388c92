// cordon_lockdown()'s steps (see lockdown.h and docs/lockdown.md).
#include "runtime/policy/lockdown.h"

#include <dirent.h>
#include <linux/audit.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "cordon/cordon.h"
#include "runtime/core/check.h"
#include "runtime/inspector/enforce.h"
#include "runtime/policy/landlock.h"
#include "runtime/signals/signals.h"

// glibc 2.35+ registers every thread's rseq area and says where it is.
extern "C" {
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
}

namespace cordon::policy {
namespace {

constexpr uint32_t kRseqSig = 0x53053053;  // glibc's RSEQ_SIG on x86
constexpr int kRseqFlagUnregister = 1;
constexpr int kRseqCpuIdRegistrationFailed = -2;

// System call names for the violation message, looked up before the filter
// is loaded: the handler must not allocate (the violation may have come
// from inside malloc).
constexpr int kNamedCalls = 512;
const char* g_names[kNamedCalls];

// The fatal path of check.h: every signal blocked, every domain left, the
// process ended even if the message cannot be written (a full pipe on fd 2);
// no snprintf, which reads the locale through fs.
void ViolationHandler(int, siginfo_t* info, void*) {
  const int nr = info->si_syscall;
  const char* name = nr >= 0 && nr < kNamedCalls && g_names[nr] != nullptr ? g_names[nr] : "?";
  const auto at = reinterpret_cast<unsigned long long>(info->si_call_addr);
  internal::FatalMessage m;
  if (info->si_arch != AUDIT_ARCH_X86_64) {
    m.Add("lockdown violation: a 32-bit system call (int 0x80, number ")
        .Signed(nr)
        .Add(") at ")
        .Hex(at)
        .Add("; only x86-64 system calls are allowed; process stopped");
  } else if ((nr & 0x40000000) != 0) {
    m.Add("lockdown violation: an x32 system call (number ")
        .Hex(static_cast<unsigned>(nr))
        .Add(") at ")
        .Hex(at)
        .Add("; process stopped");
  } else {
    m.Add("lockdown violation: system call ")
        .Add(name)
        .Add(" (")
        .Signed(nr)
        .Add(") at ")
        .Hex(at)
        .Add(
            " is forbidden after cordon_lockdown(), with these arguments (docs/lockdown.md lists the rules); "
            "process stopped");
  }
  m.Die();
}

int Refuse(int status, const std::string& why) {
  fprintf(stderr, "cordon: cordon_lockdown() refused: %s\n", why.c_str());
  return status;
}

int Failed(const std::string& step) {
  fprintf(stderr,
          "cordon: cordon_lockdown() failed after it had started to change the process (%s); the process is "
          "only partly locked down and should exit\n",
          step.c_str());
  return CORDON_E_LOCKDOWN_FAILED;
}

int ThreadCount() {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir("/proc/self/task"), closedir);
  if (!dir) return -1;
  int n = 0;
  while (dirent* e = readdir(dir.get())) n += e->d_name[0] != '.';
  return n;
}

// The calling thread's rseq area, if glibc registered one.
int32_t* RseqCpuId() {
  if (&__rseq_offset == nullptr || &__rseq_size == nullptr || __rseq_size == 0) return nullptr;
  char* tp;
  asm("mov %%fs:0, %0" : "=r"(tp));
  return reinterpret_cast<int32_t*>(tp + __rseq_offset + 4);  // struct rseq's cpu_id
}

bool UnregisterRseq() {
  int32_t* cpu_id = RseqCpuId();
  if (cpu_id == nullptr || *cpu_id < 0) return true;  // not registered
  char* area = reinterpret_cast<char*>(cpu_id) - 4;
  // glibc registers 32 bytes (struct rseq_area); newer ones say __rseq_size.
  for (const unsigned len : {32u, __rseq_size}) {
    if (syscall(SYS_rseq, area, len, kRseqFlagUnregister, kRseqSig) == 0) {
      *cpu_id = kRseqCpuIdRegistrationFailed;  // glibc's sched_getcpu() then asks the kernel
      return true;
    }
  }
  return false;
}

}  // namespace

int Lockdown(const LockdownPlan& plan, bool* changed) {
  *changed = false;
  // ---- Checks: nothing changes until all pass ----
  // Landlock restricts only the calling thread (and the threads it starts),
  // and rseq can only be unregistered by its own thread.
  const int threads = ThreadCount();
  if (threads != 1) {
    return Refuse(CORDON_E_THREADS, threads < 0 ? "cannot count this process's threads"
                                                : std::to_string(threads) +
                                                      " threads are running; call cordon_lockdown() before "
                                                      "starting any thread");
  }
  if ((personality(0xffffffff) & READ_IMPLIES_EXEC) != 0) {
    return Refuse(CORDON_E_LOCKDOWN_FAILED,
                  "the process runs with READ_IMPLIES_EXEC (an executable stack in some loaded object), so "
                  "every readable mapping is executable; rebuild it with -z noexecstack");
  }
  if (LandlockAbi() < 1) {
    return Refuse(CORDON_E_NO_LANDLOCK,
                  "this kernel has no Landlock, which Cordon needs to close /proc/<pid>/mem; use a kernel "
                  "with CONFIG_SECURITY_LANDLOCK=y and landlock in its lsm= list (Debian's 6.1 and later "
                  "have both)");
  }
  if (auto one = OnlyOneProcMount(); !one.ok()) return Refuse(CORDON_E_LOCKDOWN_FAILED, one.error());
  auto filter = BuildFilter(plan.filter);
  if (!filter.ok())
    return Refuse(CORDON_E_LOCKDOWN_FAILED, "cannot build the seccomp filter: " + filter.error());
  auto program = ExportBpf(*filter);
  if (!program.ok()) return Refuse(CORDON_E_LOCKDOWN_FAILED, "cannot export the seccomp filter: " + program.error());
  if (const std::string why = signals::CheckHandlersForLockdown(); !why.empty()) {
    return Refuse(CORDON_E_LOCKDOWN_FAILED, why);
  }
  // The kernel walks a thread's robust futex list at its exit, through
  // nodes in untrusted memory, with the PKRU the thread dies with (a
  // domain's, if it is killed inside one): no thread keeps one after the
  // lockdown, and the filter refuses new ones (seccomp_filter.cc).
  if (syscall(SYS_set_robust_list, nullptr, sizeof(robust_list_head)) != 0) {
    return Refuse(CORDON_E_LOCKDOWN_FAILED,
                  std::string("cannot unregister this thread's robust futex list: ") + strerror(errno));
  }
  if (!UnregisterRseq()) {
    return Refuse(CORDON_E_LOCKDOWN_FAILED,
                  "cannot unregister this thread's rseq area; start the program with "
                  "GLIBC_TUNABLES=glibc.pthread.rseq=0");
  }

  // ---- Changes ----
  // Code that set-up created since cordon_init() is inspected like the rest.
  std::vector<inspector::ReportEntry> report;
  if (const int s = inspector::EnforceOnProcess(plan.inspect_policy, &report); s != CORDON_OK) return s;
  std::string why;
  if (!inspector::PrivatizeExecutableMemory(&why)) return Refuse(CORDON_E_UNSAFE_CODE, why);
  // From here on a failure leaves the process partly locked.
  *changed = true;
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
    return Failed(std::string("PR_SET_DUMPABLE: ") + strerror(errno));
  if (plan.filter.violation == Violation::kKill) {
    for (int nr = 0; nr < kNamedCalls; ++nr) {
      if (g_names[nr] == nullptr) g_names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, nr);
    }
    struct sigaction sa {};
    sa.sa_sigaction = ViolationHandler;
    sa.sa_flags = SA_SIGINFO;
    sigfillset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, nullptr) != 0) return Failed(std::string("sigaction: ") + strerror(errno));
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return Failed(std::string("PR_SET_NO_NEW_PRIVS: ") + strerror(errno));
  }
  if (auto r = RestrictMemoryFiles(getpid()); !r.ok()) return Failed("Landlock: " + r.error());
  if (const int s = signals::TakeOverHandlers(); s != CORDON_OK) {
    return Failed(std::string("taking over the signal handlers: ") + cordon_strerror(s));
  }
  if (const int s = plan.load_filter(program->data(), program->size()); s != CORDON_OK) {
    return Failed(std::string("loading the seccomp filter: ") + cordon_strerror(s));
  }
  signals::WipePendingToken();
  inspector::RefuseDlopen();
  return CORDON_OK;
}

}  // namespace cordon::policy
