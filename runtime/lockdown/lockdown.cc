// cordon_lockdown()'s steps (see lockdown.h and docs/lockdown.md).
#include "runtime/lockdown/lockdown.h"

#include <dirent.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/futex.h>
#include <linux/securebits.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "cordon/cordon.h"
#include "runtime/audit/audit.h"
#include "runtime/base/check.h"
#include "runtime/enforce/enforce.h"
#include "runtime/inspector/process.h"
#include "runtime/lockdown/audit.h"
#include "runtime/lockdown/closed_files.h"
#include "runtime/lockdown/landlock.h"
#include "runtime/signals/signals.h"

// glibc 2.35+ registers every thread's rseq area and says where it is.
extern "C" {
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
}

namespace cordon::lockdown {
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
// no snprintf, which reads the locale through fs. With an audit stream the
// trusted domain records the call, writes the message and ends the process
// (audit::kOpDieSyscall); this goes on only if it could not be entered.
void ViolationHandler(int, siginfo_t* info, void* uc) {
  internal::FatalMessage m;
  if (audit::Enabled()) {
    (void)audit::Call(audit::kOpDieSyscall, reinterpret_cast<uint64_t>(info), reinterpret_cast<uint64_t>(uc));
  }
  const int nr = info->si_syscall;
  audit::ViolationMessage(m, *info, nr >= 0 && nr < kNamedCalls ? g_names[nr] : nullptr);
  m.Die();
}

Error Refuse(int status, const std::string& why) {
  return Error{"cordon_lockdown() refused: " + why, status};
}

Error Failed(const std::string& step) {
  return Error{"cordon_lockdown() failed after it had started to change the process (" + step +
                   "); the process is only partly locked down and should exit",
               CORDON_E_LOCKDOWN_FAILED};
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

void (*g_before_privatize)() = nullptr;

// Capabilities end with set-up: an effective capability would let untrusted
// code around every other rule (CAP_SYS_PTRACE, CAP_SYS_ADMIN, CAP_DAC_*,
// ...). Dropped for good: the bounding set (no execve could bring them back,
// though execve is refused anyway), the ambient set, and securebits locked
// so that uid 0 means nothing special any more; then capset to zero. The
// filter then refuses capset and every set*id call, and the process keeps
// its uids. Without CAP_SETPCAP the bounding set and securebits cannot
// change, but then there is nothing they would hold back: capset to zero is
// always allowed and is what counts.
Expected<bool> DropCapabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) return Error{std::string("capget: ") + strerror(errno)};
  const bool setpcap = (data[0].effective & (1u << CAP_SETPCAP)) != 0;
  if (setpcap) {
    for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; ++cap) {
      if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
        return Error{"PR_CAPBSET_DROP(" + std::to_string(cap) + "): " + strerror(errno)};
      }
    }
    const unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                               SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                               SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) != 0) {
      return Error{std::string("PR_SET_SECUREBITS: ") + strerror(errno)};
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return Error{std::string("PR_CAP_AMBIENT_CLEAR_ALL: ") + strerror(errno)};
  }
  __user_cap_data_struct none[2] = {};
  header = {_LINUX_CAPABILITY_VERSION_3, 0};
  if (syscall(SYS_capset, &header, none) != 0) return Error{std::string("capset: ") + strerror(errno)};
  // Read back: a system call faked by a filter installed before set-up
  // must not leave capabilities behind.
  header = {_LINUX_CAPABILITY_VERSION_3, 0};
  if (syscall(SYS_capget, &header, data) != 0) return Error{std::string("capget: ") + strerror(errno)};
  for (const auto& d : data) {
    if (d.effective != 0 || d.permitted != 0 || d.inheritable != 0) {
      return Error{"capabilities are still held after capset to zero"};
    }
  }
  return true;
}

}  // namespace

void SetBeforePrivatizeHookForTests(void (*hook)()) {
  g_before_privatize = hook;
}

SignalHandlerFn ViolationHandlerFn() {
  return ViolationHandler;
}

Expected<void> Lockdown(const LockdownPlan& plan, bool* changed) {
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
  // Descriptors opened before any rule existed keep working after the rules
  // (Landlock and seccomp check opens and calls, not what is already open),
  // and children forked during set-up are not confined.
  if (const std::string why = AuditDescriptors(plan.filter.audit_fd); !why.empty())
    return Refuse(CORDON_E_LOCKDOWN_FAILED, why);
  if (const std::string why = AuditChildren(); !why.empty()) return Refuse(CORDON_E_LOCKDOWN_FAILED, why);
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
  // Files a domain read its secrets from (cordon_lockdown_close_file).
  auto closed = ClosedFilesForLockdown();
  if (!closed.ok()) return Refuse(closed.status(), closed.error());
  // What runs with a domain's rights stays as it is (seccomp_filter.h): the
  // code and its read-only data, at the addresses they have now, which the
  // private copies below keep.
  FilterSpec spec = plan.filter;
  auto code = inspector::CodeAndItsReadOnlyData("self");
  if (!code.ok()) return Refuse(CORDON_E_LOCKDOWN_FAILED, "cannot list the code mappings: " + code.error());
  for (const inspector::Mapping& m : *code) spec.immutable_ranges.push_back({m.start, m.end});
  auto filter = BuildFilter(spec);
  if (!filter.ok())
    return Refuse(CORDON_E_LOCKDOWN_FAILED, "cannot build the seccomp filter: " + filter.error());
  auto program = ExportBpf(*filter, spec);
  if (!program.ok())
    return Refuse(CORDON_E_LOCKDOWN_FAILED, "cannot export the seccomp filter: " + program.error());
  if (const std::string why = signals::CheckHandlersForLockdown(); !why.empty()) {
    return Refuse(CORDON_E_LOCKDOWN_FAILED, why);
  }
  if (const std::string why = AuditSignalSources(signals::SignalsOnlyTheKernelMaySend()); !why.empty()) {
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
  // Tagged addresses (LAM) would let memory calls name trusted memory by
  // an address the filter does not recognise: none may be on (the filter
  // refuses turning them on). Kernels or CPUs without LAM say EINVAL, or
  // give an all-ones mask.
  {
    uint64_t untag = ~uint64_t{0};
    if (syscall(SYS_arch_prctl, 0x4001 /* ARCH_GET_UNTAG_MASK */, &untag) == 0 && untag != ~uint64_t{0}) {
      return Refuse(CORDON_E_LOCKDOWN_FAILED,
                    "tagged addresses (Linear Address Masking) are enabled in this process; the lockdown's "
                    "memory rules compare untagged addresses: start without ARCH_ENABLE_TAGGED_ADDR");
    }
  }
  // Syscall User Dispatch (prctl, refused from now on) is this thread's
  // only: threads do not inherit it. Off, so that no system call of the
  // runtime's becomes a SIGSYS (seccomp_filter.cc).
  if (prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0) != 0 && errno != EINVAL) {
    return Refuse(CORDON_E_LOCKDOWN_FAILED,
                  std::string("cannot turn off Syscall User Dispatch: ") + strerror(errno));
  }
  if (!UnregisterRseq()) {
    return Refuse(CORDON_E_LOCKDOWN_FAILED,
                  "cannot unregister this thread's rseq area; start the program with "
                  "GLIBC_TUNABLES=glibc.pthread.rseq=0");
  }

  // ---- Changes ----
  // Code that set-up created since cordon_init() is inspected like the rest.
  std::vector<enforce::ReportEntry> report;
  std::vector<std::pair<uint64_t, uint64_t>> thunk_pages;
  if (auto inspected = enforce::EnforceOnProcess(plan.inspect_policy, &report, &thunk_pages);
      !inspected.ok()) {
    return inspected.failure();
  }
  // What this inspection found, for the audit stream (set-up is still
  // open for its records: the lockdown's own record closes it).
  for (const enforce::ReportEntry& e : report) {
    (void)audit::RecordFinding(e.address, static_cast<int>(e.kind), static_cast<int>(e.verdict),
                               static_cast<int>(e.action), e.object.c_str(), e.symbol.c_str());
  }
  if (!thunk_pages.empty()) {
    // Relocation thunks this inspection mapped are code that runs with a
    // domain's rights too: they stay as they are like the code listed
    // above, so the filter is built again with them.
    for (const auto& [start, end] : thunk_pages) spec.immutable_ranges.push_back({start, end});
    filter = BuildFilter(spec);
    if (!filter.ok())
      return Failed("cannot build the seccomp filter with the relocation thunks: " + filter.error());
    program = ExportBpf(*filter, spec);
    if (!program.ok()) return Failed("cannot export the seccomp filter: " + program.error());
  }
  if (g_before_privatize != nullptr) g_before_privatize();
  // PLT entries of libraries linked without -z now jump through slots that
  // stay writable: straight to their targets from now on (inspector/plt.h).
  // Then the copies are scanned, not the files: what runs is what was
  // scanned.
  std::string why;
  if (!enforce::PinWritablePlts(&why)) return Refuse(CORDON_E_UNSAFE_CODE, "PLT pinning: " + why);
  if (!enforce::PrivatizeExecutableMemory(&why)) return Refuse(CORDON_E_UNSAFE_CODE, why);
  // From here on a failure leaves the process partly locked.
  *changed = true;
  // No entry can be registered from now on (Config().locked, below): the
  // tables become read-only, so that no write of trusted code can add one.
  if (plan.seal_entry_tables && !plan.seal_entry_tables(&why)) return Failed(why);
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
  if (auto r = RestrictMemoryFiles(getpid(), *closed); !r.ok()) return Failed("Landlock: " + r.error());
  // Read back: a landlock_restrict_self faked by a filter installed before
  // set-up must not leave a secret's file open.
  if (const std::string why = CheckFilesClosed(*closed); !why.empty()) return Failed(why);
  if (auto r = DropCapabilities(); !r.ok()) return Failed("dropping capabilities: " + r.error());
  // No core dump, ever: not dumpable (after the credential changes above,
  // which can reset it), and RLIMIT_CORE 1, not 0: the kernel writes no
  // file core below a page, and 1 is also its "no core" value for a pipe
  // helper (fs/coredump.c's recursion guard), which 0 does not stop. Without
  // CAP_SYS_RESOURCE the hard limit cannot be raised again.
  const rlimit one{1, 1};
  if (setrlimit(RLIMIT_CORE, &one) != 0) return Failed(std::string("RLIMIT_CORE: ") + strerror(errno));
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return Failed(std::string("PR_SET_DUMPABLE: ") + strerror(errno));
  }
  if (const int s = signals::TakeOverHandlers(); s != CORDON_OK) {
    return Failed(std::string("taking over the signal handlers: ") + cordon_strerror(s));
  }
  if (const int s = plan.load_filter(program->data(), program->size()); s != CORDON_OK) {
    return Failed(std::string("loading the seccomp filter: ") + cordon_strerror(s));
  }
  signals::WipePendingToken();
  enforce::RefuseDlopen();
  return {};
}

}  // namespace cordon::lockdown
