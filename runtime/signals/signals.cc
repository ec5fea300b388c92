// Signal handling after lockdown (signals.h, gates/gate.S, docs/signals.md).
//
// Three paths, all entered from gate.S:
//  - cordon_internal_signal_untrusted: a signal interrupted untrusted code.
//    Runs as untrusted code, on the kernel's frame, and calls the program's
//    handler there.
//  - cordon_internal_signal_in_domain: a signal interrupted domain code.
//    Runs inside the domain, below the kernel's frame on the trusted stack,
//    and builds a frame without trusted state on the untrusted stack for the
//    program's handler.
//  - cordon_internal_signal_return_frame: that handler (of the first kind)
//    returned. Runs inside domain 1 on this thread's signal-return buffer,
//    and copies the frame there with the untrusted PKRU forced into it.
#include "runtime/signals/signals.h"

#include <linux/audit.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/single_threaded.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <iterator>

#include "cordon/cordon.h"
#include "runtime/audit/audit.h"
#include "runtime/base/check.h"
#include "runtime/domains/domain.h"
#include "runtime/gates/gate_config.h"
#include "runtime/hardware/cpu.h"
#include "runtime/hardware/pkey.h"

extern "C" {
void cordon_signal_entry(int, siginfo_t*, void*);
void cordon_signal_restorer();
// The frame probe's code (below): no stack use at all.
long cordon_signal_sigaltstack(const stack_t* ss, uint64_t token0);
// gate.S: clone(2) with the token, inside domain 1; the child attaches and
// gets its alternate stack (cordon_internal_signal_thread_start), then
// starts the program's code from child_frame through cordon_signal_restorer.
long cordon_signal_clone(uint64_t flags, uint64_t child_frame, uint64_t ptid, uint64_t ctid, uint64_t tls);
// domains/domain.cc: claims a record of domain d for this thread.
uint32_t cordon_internal_attach_thread(uint32_t d);
void cordon_signal_probe_raise(uint64_t stack_top, uint64_t tgid, uint64_t tid);
void cordon_signal_probe_handler(int, siginfo_t*, void*);
#define CORDON_DECLARE_RESUME(d) void cordon_signal_resume_##d();
CORDON_DECLARE_RESUME(1)
CORDON_DECLARE_RESUME(2)
CORDON_DECLARE_RESUME(3)
CORDON_DECLARE_RESUME(4)
CORDON_DECLARE_RESUME(5)
CORDON_DECLARE_RESUME(6)
CORDON_DECLARE_RESUME(7)
CORDON_DECLARE_RESUME(8)
CORDON_DECLARE_RESUME(9)
CORDON_DECLARE_RESUME(10)
CORDON_DECLARE_RESUME(11)
CORDON_DECLARE_RESUME(12)
CORDON_DECLARE_RESUME(13)
CORDON_DECLARE_RESUME(14)
CORDON_DECLARE_RESUME(15)
}

// The filter's traps (kernels that write frames anywhere), further down.
namespace {
bool IsTrapped(const siginfo_t* info, long nr);
void EmulateSigprocmask(ucontext_t* uc);
void UnblockSigsys();
}  // namespace

namespace cordon::signals {
namespace {

using gates::Config;

constexpr size_t kPage = 4096;
constexpr int kMaxSignal = 64;
constexpr uint64_t kSaRestorer = 0x04000000;  // SA_RESTORER: the kernel's, not in glibc's headers
constexpr uint64_t kPkruBit = uint64_t{1} << 9;
constexpr size_t kReturnStack = 8192;  // the copy's stack, at the buffer's top
// A kernel signal frame below its XSAVE area: return address, ucontext,
// siginfo (arch/x86/include/asm/sigframe.h, struct rt_sigframe).
constexpr size_t kFrameHead = 8 + 304 + 128;
constexpr size_t kRedZone = 128;
constexpr int kSysSeccomp = 1;  // si_code of a SIGSYS from SECCOMP_RET_TRAP
constexpr int kProbeExit = 42;  // the frame probe's handler ran

// The kernel's x86-64 signal frame (arch/x86/include/asm/sigframe.h): the
// return address, struct ucontext (uc_flags, uc_link, uc_stack, then the
// machine context and an 8-byte signal mask), then the siginfo.
constexpr size_t kUcMcontext = 40;
constexpr size_t kUcSigmask = 296;
constexpr size_t kKernelUcontextSize = 304;
constexpr size_t kMcontextFpstate = 184;
// struct _fpx_sw_bytes in the FXSAVE area's software-reserved bytes.
constexpr size_t kSwMagic1 = 464, kSwExtendedSize = 468, kSwXfeatures = 472, kSwXstateSize = 480;
constexpr uint32_t kFpXstateMagic1 = 0x46505853u, kFpXstateMagic2 = 0x46505845u;
constexpr size_t kXstateBv = 512;        // XSAVE header: which components hold state
constexpr size_t kXsaveHeaderSize = 64;  // XSTATE_BV, XCOMP_BV, 48 reserved bytes
// The FXSAVE area's control words and their initial values (SDM vol. 1, 10.5.1).
constexpr size_t kFxFcw = 0, kFxMxcsr = 24, kFxMxcsrMask = 28;
constexpr uint16_t kInitFcw = 0x37f;
constexpr uint32_t kInitMxcsr = 0x1f80, kDefaultMxcsrMask = 0xffbf;

const uintptr_t kResume[CORDON_MAX_DOMAINS] = {
    0,
    reinterpret_cast<uintptr_t>(&cordon_signal_resume_1),
    reinterpret_cast<uintptr_t>(&cordon_signal_resume_2),
    reinterpret_cast<uintptr_t>(&cordon_signal_resume_3),
    reinterpret_cast<uintptr_t>(&cordon_signal_resume_4),
    reinterpret_cast<uintptr_t>(&cordon_signal_resume_5),
    reinterpret_cast<uintptr_t>(&cordon_signal_resume_6),
    reinterpret_cast<uintptr_t>(&cordon_signal_resume_7),
    reinterpret_cast<uintptr_t>(&cordon_signal_resume_8),
    reinterpret_cast<uintptr_t>(&cordon_signal_resume_9),
    reinterpret_cast<uintptr_t>(&cordon_signal_resume_10),
    reinterpret_cast<uintptr_t>(&cordon_signal_resume_11),
    reinterpret_cast<uintptr_t>(&cordon_signal_resume_12),
    reinterpret_cast<uintptr_t>(&cordon_signal_resume_13),
    reinterpret_cast<uintptr_t>(&cordon_signal_resume_14),
    reinterpret_cast<uintptr_t>(&cordon_signal_resume_15),
};

// The program's handlers. Untrusted memory on purpose: only untrusted code
// ever runs them, so a forged entry gains nothing.
struct Handler {
  std::atomic<uint64_t> fn;  // 0: none (SIG_DFL or SIG_IGN in the kernel)
  uint64_t mask;
  int flags;
};
Handler g_handlers[kMaxSignal + 1];

uint64_t g_pending_token[2];

// The kernel's struct sigaction for rt_sigaction.
struct KernelSigaction {
  uint64_t handler;
  uint64_t flags;
  uint64_t restorer;
  uint64_t mask;
};

// What the runtime builds on the untrusted stack for a handler of a signal
// that interrupted domain code (offsets used by cordon_signal_run_handler).
struct HandlerFrame {
  uint64_t ret;  // cordon_signal_resume_<d>
  uint64_t handler;
  uint64_t mask;
  uint64_t scratch;  // cordon_signal_run_handler: the signals to unblock
  siginfo_t info;
  ucontext_t uc;
};
static_assert(offsetof(HandlerFrame, mask) == 16);
static_assert(offsetof(HandlerFrame, info) == 32);
static_assert(offsetof(HandlerFrame, uc) == 160);

template <typename T>
T& At(void* base, size_t offset) {
  return *reinterpret_cast<T*>(static_cast<unsigned char*>(base) + offset);
}

uint64_t Bit(int sig) {
  return uint64_t{1} << (sig - 1);
}

bool ValidSignal(uint64_t sig) {
  return sig >= 1 && sig <= kMaxSignal && sig != SIGKILL && sig != SIGSTOP && sig != SIGSYS;
}
// The runtime also takes over SIGSYS (the lockdown's violation handler) on
// kernels that write frames anywhere: its frames must go to the alternate
// stack too, and the filter's traps of clone and rt_sigprocmask come as
// SIGSYS.
bool InstallableSignal(uint64_t sig) {
  return ValidSignal(sig) || (sig == SIGSYS && Config().signal_altstack != 0);
}

// 32 and 33: glibc's thread cancellation and setxid signals.
bool IsGlibcInternal(int sig) {
  return sig == 32 || sig == 33;
}

// On a kernel that writes each frame with the interrupted instruction's
// PKRU at its stack pointer (before 6.12: the probe below), a signal that
// arrives right after a gate's WRPKRU, with a stack pointer the caller
// aimed at trusted memory, has the kernel write that frame into trusted
// memory with the domain's rights. Any instruction boundary can be hit
// (the caller may jump straight to the WRPKRU), so no gate sequence can
// close that window; what closes it is that no handled signal can arrive
// there. After lockdown only the faults below have handlers: the kernel
// raises them at the faulting instruction itself, under that
// instruction's PKRU and stack pointer, and no instruction of a gate's
// windows can fault; the filter forbids sending them (and SIGSYS) by any
// means (lockdown/seccomp_filter.cc). SIGTRAP is not among them: untrusted
// code can set the trap flag before jumping to a WRPKRU.
constexpr int kFaultSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};
bool IsFaultSignal(int sig) {
  for (const int f : kFaultSignals) {
    if (f == sig) return true;
  }
  return false;
}
bool FramesFollowPkru() {
  return Config().signal_altstack == 0;
}

bool QueryKernel(int sig, KernelSigaction* out) {
  return syscall(SYS_rt_sigaction, sig, nullptr, out, 8) == 0;
}

// Sets a handler's mask, from the entry's (every signal blocked): by
// unblocking the rest, because SIG_UNBLOCK is the one form the lockdown's
// filter never traps (kernels that write frames anywhere, where SIGSYS
// also stays unblocked: EmulateSigprocmask).
void SetMask(uint64_t mask) {
  const uint64_t unblock = ~mask;
  syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &unblock, nullptr, 8);
}

// The mask a handler runs with.
uint64_t HandlerMask(uint64_t interrupted, const Handler& h, int sig) {
  uint64_t m = interrupted | h.mask | ((h.flags & SA_NODEFER) != 0 ? 0 : Bit(sig));
  if (Config().signal_altstack != 0) m &= ~Bit(SIGSYS);
  return m;
}

// ---- The frame probe at cordon_init() ----

struct Probe {
  uint32_t magic1, xstate_size;
  uint64_t xfeatures;
  uint32_t handler_pkru;
  uint32_t mxcsr_mask;
  bool seen;
};
Probe g_probe;

void ProbeHandler(int, siginfo_t*, void* ucv) {
  auto* uc = static_cast<ucontext_t*>(ucv);
  void* fp = uc->uc_mcontext.fpregs;
  g_probe.seen = true;
  g_probe.handler_pkru = hw::ReadPkru();
  if (fp == nullptr) return;
  g_probe.magic1 = At<uint32_t>(fp, kSwMagic1);
  g_probe.xstate_size = At<uint32_t>(fp, kSwXstateSize);
  g_probe.xfeatures = At<uint64_t>(fp, kSwXfeatures);
  g_probe.mxcsr_mask = At<uint32_t>(fp, kFxMxcsrMask);
}

// Delivers SIGURG to this thread once, with a temporary handler, and keeps
// what the kernel wrote into the frame's XSAVE software bytes.
bool ProbeFrame() {
  struct sigaction sa {
  }, old{};
  sa.sa_sigaction = ProbeHandler;
  sa.sa_flags = SA_SIGINFO;
  sigfillset(&sa.sa_mask);
  sigset_t only, saved;
  sigemptyset(&only);
  sigaddset(&only, SIGURG);
  if (sigaction(SIGURG, &sa, &old) != 0) return false;
  pthread_sigmask(SIG_UNBLOCK, &only, &saved);
  g_probe = {};
  syscall(SYS_tgkill, getpid(), gettid(), SIGURG);
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  sigaction(SIGURG, &old, nullptr);
  return g_probe.seen;
}

// Whether the kernel writes a signal frame where the interrupted thread
// could not write (6.12 and later: it builds every frame with PKRU 0), or
// under the interrupted PKRU (6.1: the write faults and the process dies).
// Probed, not read from the version: a child process takes a key it may
// not access, points its stack pointer at a page of that key and raises a
// signal. Its handler (which touches no stack) exits kProbeExit only if
// the kernel could write the frame there. 1: it could, 0: it could not,
// -1: the probe itself failed.
int ProbeFramesAnywhere() {
  const pid_t child = fork();
  if (child < 0) return -1;
  if (child == 0) {
    constexpr size_t kBytes = 64 * 1024;
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGSEGV, &dfl, nullptr);
    const long key = syscall(SYS_pkey_alloc, 0, PKEY_DISABLE_ACCESS);
    void* page = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (key < 0 || page == MAP_FAILED ||
        syscall(SYS_pkey_mprotect, page, kBytes, PROT_READ | PROT_WRITE, key) != 0)
      _exit(2);
    struct sigaction sa {};
    sa.sa_sigaction = cordon_signal_probe_handler;
    sa.sa_flags = SA_SIGINFO;
    sigfillset(&sa.sa_mask);
    if (sigaction(SIGURG, &sa, nullptr) != 0) _exit(2);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, SIGURG);
    sigprocmask(SIG_UNBLOCK, &only, nullptr);
    cordon_signal_probe_raise(reinterpret_cast<uint64_t>(page) + kBytes - 8192, getpid(), gettid());
    _exit(3);  // not reached
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == kProbeExit) return 1;
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) return 0;
  return -1;
}

// ---- Alternate signal stacks (kernels that write frames anywhere) ----

// The alternate stack of the domain-1 record slot of r: above the
// signal-return buffer.
unsigned char* AltstackLow(const gates::ThreadRecord* r) {
  const auto& c = Config();
  return reinterpret_cast<unsigned char*>(
             gates::SlotOfRecord(reinterpret_cast<uint64_t>(r), c.domains[domains::kTrustedDomain].stride)) +
         (SLOT_READONLY_PAGES + c.sigbuf_pages) * kPage;
}
size_t AltstackBytes() {
  return size_t{Config().altstack_pages} * kPage;
}

// Inside domain 1: points this thread's alternate stack at [low,
// low+size). on_it: the thread runs on that alternate stack now (with
// every signal blocked), where the kernel refuses the change unless the
// call is made with another stack pointer (gate.S).
bool SetAltstack(unsigned char* low, size_t size, bool on_it) {
  stack_t ss{};
  ss.ss_sp = low;
  ss.ss_size = size;
  if (on_it) return cordon_signal_sigaltstack(&ss, domains::TokenOf(domains::kTrustedDomain)[0]) == 0;
  return hw::SysWithToken(SYS_sigaltstack, reinterpret_cast<long>(&ss), 0, 0, 0,
                          domains::TokenOf(domains::kTrustedDomain)) == 0;
}

// ---- Handlers ----

int CallInstall(uint64_t sig, uint64_t mode, uint64_t flags) {
  const uint64_t r = domains::RunFor(
      domains::kTrustedDomain, domains::kBuiltinSignalAction, sig, mode,
      [&] { return InstallActionInside(domains::kTrustedDomain, sig, mode, flags); }, flags);
  return domains::StatusOf(r);
}

// Through the gate: this thread attaches to domain 1 (if it has not) and
// gets its record slot's alternate stack (InstallActionInside, mode 3).
int GiveThreadAltstack() {
  return CallInstall(0, 3, 0);
}

int Install(int sig, uint64_t fn, uint64_t mask, uint64_t flags) {
  const uint64_t kept = flags & (SA_RESTART | SA_NOCLDSTOP | SA_NOCLDWAIT);
  Handler& h = g_handlers[sig];
  if (fn == reinterpret_cast<uint64_t>(SIG_DFL) || fn == reinterpret_cast<uint64_t>(SIG_IGN)) {
    h.fn.store(0);
    // With an audit stream the runtime's entry goes on standing in for
    // the default action of SIGSEGV after the lockdown (TakeOverHandlers):
    // a key fault is recorded, then ends the process as the default would.
    if (sig == SIGSEGV && fn == reinterpret_cast<uint64_t>(SIG_DFL) && audit::Enabled() &&
        Config().locked != 0)
      return CallInstall(sig, 2, kept);
    return CallInstall(sig, fn, kept);  // SIG_DFL is 0 and SIG_IGN 1: the modes
  }
  // The handler is in place before the kernel can deliver to the entry.
  h.mask = mask;
  h.flags = static_cast<int>(flags);
  h.fn.store(fn);
  return CallInstall(sig, 2, kept);
}

// No snprintf: it reads the locale through fs, which untrusted code sets,
// and this runs inside the domain (check.h).
[[noreturn]] void DieFault(int d, const siginfo_t* info, const unsigned char* frame) {
  const auto rip = At<uint64_t>(const_cast<unsigned char*>(frame), 8 + kUcMcontext + 8 * REG_RIP);
  internal::FatalMessage()
      .Add("signal ")
      .Signed(info->si_signo)
      .Add(" (si_code ")
      .Signed(info->si_code)
      .Add(") at ")
      .Hex(rip)
      .Add(", in code of domain ")
      .Signed(d)
      .Add(": a fault in trusted code is never handed to a handler; process stopped")
      .Die();
}

bool IsFault(const siginfo_t* info) {
  switch (info->si_signo) {
    case SIGSEGV:
    case SIGBUS:
    case SIGILL:
    case SIGFPE:
    case SIGTRAP:
      return info->si_code > 0;  // sent by the kernel, not by kill() or sigqueue()
    default:
      return false;
  }
}

// The XSAVE area that rt_sigreturn restores from, rebuilt so that nothing
// the frame's owner wrote decides where PKRU comes from or what it is. The
// kernel XRSTORs straight from this memory, and XRSTOR itself reads the
// header: XCOMP_BV bit 63 would select the compacted layout (PKRU at another
// offset, on CPUs with XSAVEC), a clear XSTATE_BV bit 9 loads PKRU's initial
// value 0 (every key open; AMD's XSAVE leaves it clear when PKRU is 0), and
// wrong software bytes make the kernel restore the legacy area only and
// initialise the rest, PKRU included. So: the software bytes as the kernel
// wrote them at cordon_init(), the standard form (XCOMP_BV 0), reserved
// header bytes 0, XSTATE_BV limited to the frames' features and always with
// PKRU, the untrusted PKRU at its standard offset (CPUID 0xD), MXCSR within
// its mask (XRSTOR faults otherwise). Registers the frame held elsewhere
// are garbage to their owner, never a different PKRU. copied: whether fp
// holds the frame's area, or nothing (a frame without one gets the initial
// FPU state).
void RebuildXsaveArea(unsigned char* fp, bool copied) {
  const auto& c = Config();
  const uint32_t size = c.xstate_size;
  uint64_t bv = 0;
  if (copied) {
    bv = At<uint64_t>(fp, kXstateBv) & c.xfeatures;
  } else {
    memset(fp, 0, size);
    At<uint16_t>(fp, kFxFcw) = kInitFcw;
    At<uint32_t>(fp, kFxMxcsr) = kInitMxcsr;
  }
  At<uint32_t>(fp, kFxMxcsr) &= c.mxcsr_mask;
  memset(fp + kSwMagic1, 0, kXstateBv - kSwMagic1);
  At<uint32_t>(fp, kSwMagic1) = kFpXstateMagic1;
  At<uint32_t>(fp, kSwExtendedSize) = size + 4;
  At<uint64_t>(fp, kSwXfeatures) = c.xfeatures;
  At<uint32_t>(fp, kSwXstateSize) = size;
  memset(fp + kXstateBv, 0, kXsaveHeaderSize);  // XCOMP_BV 0: the standard form
  At<uint64_t>(fp, kXstateBv) = bv | kPkruBit;
  At<uint64_t>(fp, c.pkru_offset) = c.untrusted_pkru;  // the component is 8 bytes: PKRU, then 0
  At<uint32_t>(fp, size) = kFpXstateMagic2;
}

}  // namespace

namespace {
size_t ReturnBufferPages() {
  return (512 + hw::XsaveMaxSize() + 64 + kReturnStack + kPage - 1) / kPage;
}
// Room for one frame per domain (each domain's record holds at most one
// frame parked while a handler runs, see LandedInDomain) and the runtime's
// C++ below the newest frame.
size_t AltstackPages() {
  const size_t frame = kFrameHead + 64 + hw::XsaveMaxSize() + 4 + 64;
  return (CORDON_MAX_DOMAINS * (frame + 256) + 32 * 1024 + kPage - 1) / kPage;
}
}  // namespace

size_t BufferPages() {
  static const size_t pages = ReturnBufferPages() + AltstackPages();
  return pages;
}

int Prepare() {
  if (getrandom(g_pending_token, sizeof g_pending_token, 0) != sizeof g_pending_token)
    return CORDON_E_SYSCALL;
  if (!ProbeFrame()) return CORDON_E_SYSCALL;
  const unsigned pkru_offset = hw::XsavePkruOffset();
  // Without PKRU in signal frames the kernel would not keep the key
  // rights across a handler, and nothing here would hold.
  if (g_probe.magic1 != kFpXstateMagic1 || (g_probe.xfeatures & kPkruBit) == 0 || pkru_offset == 0 ||
      g_probe.xstate_size > hw::XsaveMaxSize() || pkru_offset + 4 > g_probe.xstate_size) {
    return CORDON_E_NO_PKU;
  }
  // Handlers start with the kernel's init_pkru (a boot parameter and a
  // sysfs file can change it); the signal entry relies on it being the
  // untrusted PKRU.
  if (g_probe.handler_pkru != hw::kDefaultPkru) return CORDON_E_NO_PKU;
  const int anywhere = ProbeFramesAnywhere();
  if (anywhere < 0) return CORDON_E_SYSCALL;
  const bool ok = gates::UpdateConfig([&](gates::GateConfig& c) {
    c.sigbuf_pages = static_cast<uint32_t>(ReturnBufferPages());
    c.altstack_pages = static_cast<uint32_t>(BufferPages() - ReturnBufferPages());
    c.xstate_size = g_probe.xstate_size;
    c.pkru_offset = pkru_offset;
    c.xfeatures = g_probe.xfeatures;
    c.mxcsr_mask = g_probe.mxcsr_mask != 0 ? g_probe.mxcsr_mask : kDefaultMxcsrMask;
    c.signal_altstack = anywhere == 1 ? 1 : 0;
    c.signal_block_all = ~uint64_t{0};
  });
  return ok ? CORDON_OK : CORDON_E_SYSCALL;
}

const uint64_t* PendingToken() {
  return g_pending_token;
}

void WipePendingToken() {
  explicit_bzero(g_pending_token, sizeof g_pending_token);
}

std::string CheckHandlersForLockdown() {
  // glibc installs its SIGSETXID handler when the first thread starts, and
  // that call would come after the lockdown: start (and join) one now.
  if (__libc_single_threaded) {
    pthread_t th;
    if (pthread_create(
            &th, nullptr, [](void*) -> void* { return nullptr; }, nullptr) != 0 ||
        pthread_join(th, nullptr) != 0) {
      return "cannot start a thread to let glibc install its internal signal handlers";
    }
  }
  for (int sig = 1; sig <= kMaxSignal; ++sig) {
    KernelSigaction k{};
    if (!ValidSignal(sig) || IsGlibcInternal(sig) || !QueryKernel(sig, &k) || k.handler <= 1) continue;
    if (FramesFollowPkru() && !IsFaultSignal(sig)) {
      const char* abbrev = sigabbrev_np(sig);
      return "signal " + std::to_string(sig) + " (" +
             (abbrev != nullptr ? std::string("SIG") + abbrev : "real-time") +
             ") has a handler, and on this kernel (signal frames written with the interrupted code's "
             "protection-key rights, Linux before 6.12) only SIGSEGV, SIGBUS, SIGILL and SIGFPE may "
             "have handlers after lockdown: any other signal can be sent at the instant a call gate "
             "has loaded a domain's rights, and its frame would then be written into trusted memory "
             "(docs/signals.md); remove the handler before cordon_lockdown(), or run on Linux 6.12 or "
             "later";
    }
    // cordon_sigaction()'s handlers run through the runtime's entry,
    // which itself asks for the runtime's alternate stack (6.12 and later).
    const bool runtimes = k.handler == reinterpret_cast<uint64_t>(&cordon_signal_entry);
    if ((k.flags & (runtimes ? SA_RESETHAND : SA_ONSTACK | SA_RESETHAND)) != 0) {
      return "the handler of signal " + std::to_string(sig) + " uses " +
             ((k.flags & SA_ONSTACK) != 0 ? "SA_ONSTACK" : "SA_RESETHAND") +
             ", which Cordon cannot honour after lockdown (an alternate stack would receive trusted "
             "registers; docs/signals.md); install it without that flag";
    }
  }
  return {};
}

int TakeOverHandlers() {
  if (Config().signal_altstack != 0) {
    // Before any handler has SA_ONSTACK: this thread (the only one, the
    // lockdown checks) gets its alternate stack, and a forked child's
    // thread gets one afresh.
    if (const int s = GiveThreadAltstack(); s != CORDON_OK) return s;
    if (pthread_atfork(nullptr, nullptr, [] {
          if (GiveThreadAltstack() != CORDON_OK)
            internal::Die(
                "cannot give the forked child's thread its alternate signal stack; process stopped");
        }) != 0) {
      return CORDON_E_SYSCALL;
    }
    // The filter's traps (threads, signal masks) come as SIGSYS, which the
    // runtime takes even without a violation handler (the errno mode), and
    // which must never be blocked (EmulateSigprocmask).
    KernelSigaction k{};
    if (!QueryKernel(SIGSYS, &k)) return CORDON_E_SYSCALL;
    if (k.handler <= 1) {
      if (const int s = CallInstall(SIGSYS, 2, 0); s != CORDON_OK) return s;
    }
    UnblockSigsys();
  }
  for (int sig = 1; sig <= kMaxSignal; ++sig) {
    KernelSigaction k{};
    if (!InstallableSignal(sig) || !QueryKernel(sig, &k) || k.handler <= 1) continue;
    if (k.handler == reinterpret_cast<uint64_t>(&cordon_signal_entry)) continue;
    // glibc's own (cancellation, setxid) cannot keep a handler there
    // (IsFaultSignal): their default action, which ends the process, is
    // what pthread_cancel() and a set*id call, both refused after
    // lockdown, then get.
    if (FramesFollowPkru() && IsGlibcInternal(sig)) {
      if (const int s = CallInstall(static_cast<uint64_t>(sig), 0, 0); s != CORDON_OK) return s;
      continue;
    }
    // glibc's own handlers (SIGSETXID asks for SA_ONSTACK) run on the
    // interrupted stack instead.
    const uint64_t flags = IsGlibcInternal(sig) ? k.flags & ~uint64_t{SA_ONSTACK} : k.flags;
    if (const int s = Install(sig, k.handler, k.mask, flags); s != CORDON_OK) return s;
  }
  // The audit stream records protection-key faults that the default
  // action would end the process for: the runtime's entry takes SIGSEGV
  // with no handler of the program's behind it (g_handlers says none).
  if (audit::Enabled()) {
    KernelSigaction k{};
    if (!QueryKernel(SIGSEGV, &k)) return CORDON_E_SYSCALL;
    if (k.handler == 0) {
      if (const int s = CallInstall(SIGSEGV, 2, 0); s != CORDON_OK) return s;
    }
  }
  return CORDON_OK;
}

std::vector<int> SignalsOnlyTheKernelMaySend() {
  if (!FramesFollowPkru()) return {};
  std::vector<int> out(std::begin(kFaultSignals), std::end(kFaultSignals));
  out.push_back(SIGSYS);
  return out;
}

int SetAction(int sig, const struct sigaction* act, struct sigaction* old) {
  if (!ValidSignal(static_cast<uint64_t>(sig)) || IsGlibcInternal(sig)) return CORDON_E_INVALID_ARGUMENT;
  if (act != nullptr && (act->sa_flags & (SA_ONSTACK | SA_RESETHAND)) != 0) return CORDON_E_INVALID_ARGUMENT;
  // Before lockdown the handler may be installed; cordon_lockdown() then
  // refuses, and says why (CheckHandlersForLockdown).
  if (act != nullptr && act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN && Config().locked != 0 &&
      FramesFollowPkru() && !IsFaultSignal(sig)) {
    return CORDON_E_LOCKED;
  }
  if (old != nullptr) {
    const Handler& h = g_handlers[sig];
    *old = {};
    if (const uint64_t fn = h.fn.load(); fn != 0) {
      old->sa_sigaction = reinterpret_cast<void (*)(int, siginfo_t*, void*)>(fn);
      old->sa_flags = h.flags;
      memcpy(&old->sa_mask, &h.mask, sizeof h.mask);
    } else {
      KernelSigaction k{};
      if (!QueryKernel(sig, &k)) return CORDON_E_SYSCALL;
      // The runtime's entry with no handler behind it stands in for SIG_DFL.
      const bool stand_in = k.handler == reinterpret_cast<uint64_t>(&cordon_signal_entry);
      old->sa_handler = stand_in ? SIG_DFL : reinterpret_cast<void (*)(int)>(k.handler);
      old->sa_flags = static_cast<int>(k.flags & ~kSaRestorer);
    }
  }
  if (act == nullptr) return CORDON_OK;
  uint64_t mask;
  memcpy(&mask, &act->sa_mask, sizeof mask);
  return Install(sig, reinterpret_cast<uint64_t>(act->sa_handler), mask,
                 static_cast<uint64_t>(act->sa_flags));
}

uint64_t InstallActionInside(int d, uint64_t sig, uint64_t mode, uint64_t flags) {
  if (mode == 3) {
    // This thread's alternate stack: its own domain-1 record slot's, and
    // only the record's owner may have it (two threads on one alternate
    // stack could overwrite each other's frames).
    if (d != domains::kTrustedDomain || Config().signal_altstack == 0)
      return domains::EncodeStatus(CORDON_E_INVALID_ARGUMENT);
    gates::ThreadRecord* r = domains::RecordForStack(domains::kTrustedDomain, __builtin_frame_address(0));
    if (r == nullptr || __atomic_load_n(&r->owner, __ATOMIC_ACQUIRE) != static_cast<uint32_t>(gettid()))
      return domains::EncodeStatus(CORDON_E_INVALID_ARGUMENT);
    return SetAltstack(AltstackLow(r), AltstackBytes(), false) ? 0 : domains::EncodeStatus(CORDON_E_SYSCALL);
  }
  if (!InstallableSignal(sig) || mode > 2) return domains::EncodeStatus(CORDON_E_INVALID_ARGUMENT);
  KernelSigaction k{};
  k.flags = flags & (SA_RESTART | SA_NOCLDSTOP | SA_NOCLDWAIT);
  k.handler = mode;  // SIG_DFL, SIG_IGN
  if (mode == 2) {
    // Every signal blocked while the runtime's entry decides; the program's
    // own mask is set before its handler runs.
    k.handler = reinterpret_cast<uint64_t>(&cordon_signal_entry);
    k.flags |= SA_SIGINFO | kSaRestorer;
    // Frames go to the runtime's alternate stack where the kernel writes
    // them wherever the stack pointer is (docs/signals.md).
    if (Config().signal_altstack != 0) k.flags |= SA_ONSTACK;
    k.restorer = reinterpret_cast<uint64_t>(&cordon_signal_restorer);
    k.mask = ~uint64_t{0};
  }
  const long rc = hw::SysWithToken(SYS_rt_sigaction, static_cast<long>(sig), reinterpret_cast<long>(&k), 0, 8,
                                   domains::TokenOf(d));
  if (rc == 0) return 0;
  return domains::EncodeStatus(rc == -EINVAL ? CORDON_E_INVALID_ARGUMENT : CORDON_E_SYSCALL);
}

}  // namespace cordon::signals

// ---- Called from gate.S ----

using namespace cordon;
using namespace cordon::signals;

// Untrusted, on the kernel's frame (the return address is the restorer).
// A frame whose saved PKRU is not the untrusted one can only come from a
// gate between its WRPKRU and its stack switch, where registers hold
// nothing trusted: it resumes at the gate's PKRU load, with untrusted PKRU,
// so that the gate enters afresh. Forcing untrusted PKRU is always safe;
// the restorer forces it again on a copy the handler cannot touch.
extern "C" void cordon_internal_signal_untrusted(int sig, siginfo_t* info, void* ucv) {
  auto* uc = static_cast<ucontext_t*>(ucv);
  const auto& c = Config();
  if (void* fp = uc->uc_mcontext.fpregs; fp != nullptr && At<uint32_t>(fp, kSwMagic1) == kFpXstateMagic1) {
    auto& bv = At<uint64_t>(fp, kXstateBv);
    auto& pkru = At<uint32_t>(fp, c.pkru_offset);
    const uint32_t saved = (bv & kPkruBit) != 0 ? pkru : 0;
    if (saved != c.untrusted_pkru) {
      auto& gregs = uc->uc_mcontext.gregs;
      const auto rip = static_cast<uintptr_t>(gregs[REG_RIP]);
      for (size_t i = 0; i < gates::RewindCount(); ++i) {
        const gates::Rewind w = gates::RewindAt(i);
        if (rip >= w.first && rip <= w.last) {
          gregs[REG_RIP] = static_cast<greg_t>(w.resume);
          gregs[REG_RCX] = 0;
          gregs[REG_RDX] = 0;
          break;
        }
      }
      pkru = c.untrusted_pkru;
      bv |= kPkruBit;
    }
  }
  if (sig < 1 || sig > kMaxSignal) return;
  if (c.signal_altstack != 0 && IsTrapped(info, SYS_rt_sigprocmask)) return EmulateSigprocmask(uc);
  // A system call the filter refused: the lockdown's handler, from the
  // read-only config page, whatever the handler table says.
  if (sig == SIGSYS && info->si_code == kSysSeccomp) {
    if (c.violation_handler == 0) {
      internal::Die(
          "lockdown violation: a refused system call reached no violation handler; process stopped");
    }
    reinterpret_cast<void (*)(int, siginfo_t*, void*)>(c.violation_handler)(sig, info, ucv);
    internal::Die("lockdown violation: the violation handler returned; process stopped");
  }
  const Handler& h = g_handlers[sig];
  const uint64_t fn = h.fn.load();
  // The audit stream: a protection-key fault is recorded before the
  // program's handler runs, or, without one, before the process dies of it
  // (the record's operation ends it, as the kernel's default would).
  if (IsFault(info) && audit::Enabled()) {
    if (sig == SIGSEGV && info->si_code == 4 /* SEGV_PKUERR */) {
      (void)audit::Call(audit::kOpFault, reinterpret_cast<uint64_t>(info), reinterpret_cast<uint64_t>(ucv),
                        fn != 0 ? 1 : 0);
    }
    // The runtime's entry stood in for SIG_DFL (TakeOverHandlers): the
    // default action again, and the fault, repeated, ends the process.
    if (fn == 0) {
      (void)CallInstall(static_cast<uint64_t>(sig), 0, 0);
      return;
    }
  }
  if (fn == 0) return;
  uint64_t interrupted;
  memcpy(&interrupted, &uc->uc_sigmask, sizeof interrupted);
  SetMask(HandlerMask(interrupted, h, sig));
  reinterpret_cast<void (*)(int, siginfo_t*, void*)>(fn)(sig, info, ucv);
}

namespace {

// The handler frame for a signal that interrupted domain d's code, built on
// the untrusted stack below caller_rsp (the stack pointer the gate was
// called with): real siginfo, a ucontext with the signal mask only.
// Returns its address, or 0 to resume the domain code at once.
uint64_t BuildHandlerFrame(int d, uint64_t caller_rsp, unsigned char* frame) {
  const auto* info = reinterpret_cast<const siginfo_t*>(frame + 8 + kKernelUcontextSize);
  if (IsFault(info)) DieFault(d, info, frame);
  const int sig = info->si_signo;
  if (sig < 1 || sig > kMaxSignal) return 0;
  const Handler& h = g_handlers[sig];
  const uint64_t fn = h.fn.load();
  if (fn == 0) return 0;
  // Below the untrusted stack pointer the gate was called with (its saved
  // value has bit 0 flipped, gate_sequences.inc: cleared here, which gives
  // back any caller's that the ABI allows; the range is checked anyway),
  // clear of its red zone, aligned as at a function's entry.
  caller_rsp &= ~uint64_t{1};
  const uint64_t at = ((caller_rsp - 256 - sizeof(HandlerFrame)) & ~uint64_t{15}) - 8;
  if (!domains::IsUntrustedRange(reinterpret_cast<void*>(at), sizeof(HandlerFrame) + 256)) {
    internal::Die(
        "signal violation: the untrusted stack pointer saved by the gate lies in trusted memory; "
        "process stopped");
  }
  auto* hf = reinterpret_cast<HandlerFrame*>(at);
  memset(hf, 0, sizeof *hf);
  hf->ret = kResume[d & (CORDON_MAX_DOMAINS - 1)];
  hf->handler = fn;
  uint64_t interrupted;
  memcpy(&interrupted, frame + 8 + kUcSigmask, sizeof interrupted);
  hf->mask = HandlerMask(interrupted, h, sig);
  memcpy(&hf->info, info, sizeof hf->info);
  memcpy(&hf->uc.uc_sigmask, &interrupted, sizeof interrupted);
  return at;
}

greg_t* Gregs(unsigned char* frame) {
  return reinterpret_cast<ucontext_t*>(frame + 8)->uc_mcontext.gregs;
}
unsigned char* FpstateOf(unsigned char* frame) {
  return reinterpret_cast<unsigned char*>(At<uint64_t>(frame + 8 + kUcMcontext, kMcontextFpstate));
}

// Copies the kernel's frame at `frame` (return address, ucontext, siginfo
// and the XSAVE area its fpregs names) to the untrusted stack below `top`,
// laid out as the kernel lays it out. Returns the copy, or 0 if that memory
// is not wholly untrusted.
unsigned char* CopyFrameBelow(unsigned char* frame, uint64_t top) {
  const uint32_t xsize = Config().xstate_size;
  const uint64_t fp_at = (top - (xsize + 4)) & ~uint64_t{63};
  const uint64_t at = ((fp_at - kFrameHead) & ~uint64_t{15}) - 8;
  if (top < 8192 + xsize || !domains::IsUntrustedRange(reinterpret_cast<void*>(at), top - at)) return nullptr;
  auto* copy = reinterpret_cast<unsigned char*>(at);
  memcpy(copy, frame, kFrameHead);
  unsigned char* fp = FpstateOf(frame);
  if (fp != nullptr) memcpy(reinterpret_cast<void*>(fp_at), fp, xsize + 4);
  At<uint64_t>(copy + 8 + kUcMcontext, kMcontextFpstate) = fp != nullptr ? fp_at : 0;
  return copy;
}

[[noreturn]] void DieTrustedStack(const siginfo_t* info, int d) {
  if (d == CORDON_DOMAIN_UNTRUSTED) {
    internal::DieWithNumbers(
        "signal violation: no untrusted memory below the stack pointer for the frame of signal ",
        static_cast<unsigned long long>(info->si_signo));
  }
  internal::DieWithNumbers(
      "signal violation: untrusted code had its stack pointer in trusted memory (domain ",
      static_cast<unsigned long long>(d), ") when signal ", static_cast<unsigned long long>(info->si_signo));
}

bool IsTrapped(const siginfo_t* info, long nr) {
  return info->si_signo == SIGSYS && info->si_code == kSysSeccomp && info->si_arch == AUDIT_ARCH_X86_64 &&
         info->si_syscall == nr;
}

// A clone(2) that makes a thread, trapped by the filter (SIGSYS): the
// kernel would start the thread without an alternate stack. The runtime
// makes it itself, with the token, inside domain 1 and every signal
// blocked; the child attaches and gets its own alternate stack before it
// runs any of the program's code, which then starts from the context of
// the trapped call (rax 0, the new stack) through the checked sigreturn
// path. Sets the result (the thread id, or -errno) in the trapped frame.
void CloneForUntrusted(unsigned char* frame) {
  greg_t* g = Gregs(frame);
  const auto flags = static_cast<uint64_t>(g[REG_RDI]);
  const auto stack = static_cast<uint64_t>(g[REG_RSI]);
  const auto ptid = static_cast<uint64_t>(g[REG_RDX]);
  const auto ctid = static_cast<uint64_t>(g[REG_R10]);
  const auto tls = static_cast<uint64_t>(g[REG_R8]);
  // The kernel writes the parent's tid or pidfd and the child's tid with
  // the rights held here (domain 1): those must point at untrusted memory.
  // The child needs TLS of its own for its record index.
  // The filter's own clone rules (docs/lockdown.md: deferred kernel writes,
  // shared-memory processes) meet this trap first, so they are applied here
  // as the filter would: a tid word in trusted memory, whatever the flags,
  // or an address space shared outside the thread group, is a violation.
  const bool pointers_ok = domains::IsUntrustedRange(reinterpret_cast<void*>(ptid), 8) &&
                           domains::IsUntrustedRange(reinterpret_cast<void*>(ctid), 4);
  if (!pointers_ok || (flags & CLONE_THREAD) == 0) {
    if (Config().violation_errno != 0) {
      g[REG_RAX] = -EPERM;
      return;
    }
    internal::FatalMessage m;
    m.Add("lockdown violation: system call clone (56) at ")
        .Hex(static_cast<unsigned long long>(g[REG_RIP]))
        .Add(
            " is forbidden after cordon_lockdown(), with these arguments (docs/lockdown.md lists the rules); "
            "process stopped");
    m.Die();
  }
  long result = -EFAULT;
  if ((flags & (CLONE_VM | CLONE_VFORK)) != CLONE_VM || (flags & CLONE_SETTLS) == 0) {
    result = -EINVAL;
  } else {
    const uint64_t sp = stack != 0 ? stack : static_cast<uint64_t>(g[REG_RSP]);
    unsigned char* child = CopyFrameBelow(frame, sp - kRedZone);
    if (child == nullptr)
      internal::Die("signal violation: a new thread's stack lies in trusted memory; process stopped");
    greg_t* cg = Gregs(child);
    cg[REG_RAX] = 0;
    cg[REG_RSP] = static_cast<greg_t>(sp);
    result = cordon_signal_clone(flags, reinterpret_cast<uint64_t>(child), ptid, ctid, tls);
  }
  g[REG_RAX] = result;
}

// rt_sigprocmask(SIG_BLOCK or SIG_SETMASK), trapped by the filter: done on
// the frame's signal mask (which rt_sigreturn loads), with SIGSYS never
// blocked, so that the filter's traps (clone, this) always reach the
// runtime: a trap with SIGSYS blocked is a kill (glibc blocks every signal
// around clone). Untrusted code, on the program's own frame.
void EmulateSigprocmask(ucontext_t* uc) {
  greg_t* g = uc->uc_mcontext.gregs;
  const auto how = static_cast<int>(g[REG_RDI]);
  auto* set = reinterpret_cast<const uint64_t*>(g[REG_RSI]);
  auto* oldset = reinterpret_cast<uint64_t*>(g[REG_RDX]);
  uint64_t cur;
  memcpy(&cur, &uc->uc_sigmask, sizeof cur);
  long rc = 0;
  if (g[REG_R10] != 8) {
    rc = -EINVAL;
  } else if ((set != nullptr && !domains::IsUntrustedRange(set, 8)) ||
             (oldset != nullptr && !domains::IsUntrustedRange(oldset, 8))) {
    rc = -EFAULT;
  } else {
    uint64_t next = cur;
    if (set != nullptr) next = how == SIG_BLOCK ? cur | *set : *set;
    next &= ~(Bit(SIGKILL) | Bit(SIGSTOP) | Bit(SIGSYS));
    if (oldset != nullptr) *oldset = cur;
    memcpy(&uc->uc_sigmask, &next, sizeof next);
  }
  g[REG_RAX] = rc;
}

void UnblockSigsys() {
  const uint64_t bit = Bit(SIGSYS);
  syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &bit, nullptr, 8);
}

// What gate.S does after cordon_internal_signal_landed.
struct Landing {
  uint64_t what;  // 0: rt_sigreturn on the frame now; 1: the untrusted path on the copy at value;
                  // d + 1: domain d's code was interrupted, value = the saved stack pointer
  uint64_t value;
};

}  // namespace

// Inside domain d, on this thread's trusted stack below the kernel's frame,
// every signal blocked; gate.S has checked that the thread was running d's
// code on record r. Returns the handler frame on the untrusted stack, or 0
// to resume the domain code at once.
extern "C" uint64_t cordon_internal_signal_in_domain(int d, gates::ThreadRecord* r, unsigned char* frame) {
  const uint64_t at = BuildHandlerFrame(d, r->saved_rsp, frame);
  if (at != 0) __atomic_store_n(&r->signal_frame, reinterpret_cast<uint64_t>(frame), __ATOMIC_RELEASE);
  return at;
}

// Kernels that write frames anywhere (CFG_SIGNAL_ALTSTACK): every frame
// lands on this thread's alternate stack in its domain-1 record slot r
// (gate.S has checked both), and this runs inside domain 1 just below it,
// every signal blocked. The frame is the kernel's: untrusted code cannot
// write this memory, and stale frames there are refused (a frame of domain
// code needs that domain's record in use by this thread, checked in
// gate.S; untrusted state is all an untrusted frame holds).
extern "C" Landing cordon_internal_signal_landed(unsigned char* frame, gates::ThreadRecord* r) {
  const auto& c = Config();
  const auto* info = reinterpret_cast<const siginfo_t*>(frame + 8 + kKernelUcontextSize);
  // Only the frame the kernel has just written counts. Frames it wrote
  // earlier stay on the alternate stack below its top (parked frames
  // shrink it, and the stack grows back when they are resumed), and a jump
  // to the entry with rsp at one of them would replay trusted code from a
  // past state: with a held claim (a signal between a gate's claim and its
  // switch) the record checks alone cannot tell. Every runtime handler's
  // signal arrives from off the alternate stack (they all block every
  // signal while on it), so the kernel puts the frame at one address, fixed
  // by the stack's top (arch/x86/kernel/signal.c, get_sigframe and
  // fpu__alloc_mathframe): the XSAVE area 64-aligned below the top, the
  // rt_sigframe below that, 16-aligned minus 8.
  {
    stack_t ss{};
    const long rc = hw::RawSyscall3(SYS_sigaltstack, 0, reinterpret_cast<long>(&ss), 0);
    const uint64_t top = reinterpret_cast<uint64_t>(ss.ss_sp) + ss.ss_size;
    const uint64_t fx = (top - (c.xstate_size + 4)) & ~uint64_t{63};
    const uint64_t expected = ((fx - (8 + kKernelUcontextSize + sizeof(siginfo_t))) & ~uint64_t{15}) - 8;
    if (rc != 0 || (ss.ss_flags & SS_ONSTACK) == 0 || reinterpret_cast<uint64_t>(frame) != expected ||
        reinterpret_cast<uint64_t>(FpstateOf(frame)) != fx) {
      internal::Die(
          "signal violation: the signal entry was reached on the alternate stack with a frame the kernel "
          "did not just write there (a replayed frame?); process stopped");
    }
  }
  unsigned char* low = AltstackLow(r);
  unsigned char* fp = FpstateOf(frame);
  if (fp != nullptr && (fp < frame || fp + c.xstate_size + 4 > low + AltstackBytes())) {
    internal::Die(
        "signal violation: a signal frame on the alternate stack is not the kernel's; process stopped");
  }
  uint32_t saved_pkru = 0;
  if (fp != nullptr && (At<uint64_t>(fp, kXstateBv) & kPkruBit) != 0)
    saved_pkru = At<uint32_t>(fp, c.pkru_offset);
  const auto sp = static_cast<uint64_t>(Gregs(frame)[REG_RSP]);
  const int d = domains::DomainOf(reinterpret_cast<void*>(sp));
  if (d != CORDON_DOMAIN_UNTRUSTED) {
    // Only code running with d's rights may have its stack there; anything
    // else is untrusted code that pointed its stack pointer at trusted
    // memory to have the kernel write its registers there.
    if (saved_pkru != c.domains[d].pkru) DieTrustedStack(info, d);
    if (IsTrapped(info, SYS_clone)) internal::Die("trusted code may not create threads; process stopped");
    return {static_cast<uint64_t>(d) + 1, sp};
  }
  if (IsTrapped(info, SYS_clone)) {
    CloneForUntrusted(frame);
    return {0, 0};
  }
  // Untrusted code (or a gate between its WRPKRU and its stack switch):
  // its handler gets the frame where the kernel would have put it without
  // an alternate stack.
  unsigned char* copy = CopyFrameBelow(frame, sp - kRedZone);
  if (copy == nullptr) DieTrustedStack(info, 0);
  return {1, reinterpret_cast<uint64_t>(copy)};
}

// The same kernels: domain d's code was interrupted (gate.S checked this
// thread's record of d: in use, no callback, no handler, the stack pointer
// on its stack; caller_rsp is the record's saved untrusted stack pointer).
// Runs inside domain 1 below the frame on r's alternate stack. With a
// handler to run, the frame stays parked where it is and the alternate
// stack shrinks to the memory below it until cordon_signal_resume_<d>
// returns through the frame (whose uc_stack restores the full stack): a
// frame the kernel writes meanwhile, at any stack pointer, cannot reach it.
extern "C" uint64_t cordon_internal_signal_landed_in_domain(int d, uint64_t caller_rsp, unsigned char* frame,
                                                            gates::ThreadRecord* r) {
  const uint64_t at = BuildHandlerFrame(d, caller_rsp, frame);
  if (at == 0) return 0;
  unsigned char* low = AltstackLow(r);
  const size_t below = static_cast<size_t>(frame - low);
  if (below < 256 + 2 * (kFrameHead + 64 + Config().xstate_size) || !SetAltstack(low, below - 256, true)) {
    internal::Die(
        "signal violation: no room on the alternate stack for another nested signal; process stopped");
  }
  return at;
}

// Inside domain 1 on the alternate stack below the frame, every signal
// blocked: this thread does not own the domain-1 record its TLS names, or
// names none (a fork() child before or while its fork handlers re-attach
// it: records and alternate stacks are its parent's). Adopts the record
// whose alternate stack holds the frame if it is this thread's or its
// owner is no thread of this process (so no live thread uses that stack),
// and names it in TLS; returns it, or nullptr.
extern "C" gates::ThreadRecord* cordon_internal_signal_adopt(unsigned char* frame) {
  const auto& c = Config().domains[domains::kTrustedDomain];
  uint32_t* slot = &cordon_tls_records[domains::kTrustedDomain];
  if (!domains::IsUntrustedRange(slot, sizeof *slot)) return nullptr;
  // Record i's alternate stack starts at records + i * stride + offset.
  const uint64_t offset =
      gates::SlotOfRecord(0, c.stride) + (SLOT_READONLY_PAGES + Config().sigbuf_pages) * kPage;
  const auto at = reinterpret_cast<uint64_t>(frame);
  if (at < c.records + offset) return nullptr;
  const uint64_t i = (at - c.records - offset) / c.stride;
  if (i >= c.nrecords) return nullptr;
  auto* r = reinterpret_cast<gates::ThreadRecord*>(c.records + i * c.stride);
  if (frame < AltstackLow(r) || frame >= AltstackLow(r) + AltstackBytes()) return nullptr;
  uint32_t owner = __atomic_load_n(&r->owner, __ATOMIC_ACQUIRE);
  // Raw system calls: glibc's syscall() writes errno through fs, which
  // need not be this thread's here.
  const auto tid = static_cast<uint32_t>(hw::RawSyscall3(SYS_gettid, 0, 0, 0));
  if (owner != tid) {
    const long pid = hw::RawSyscall3(SYS_getpid, 0, 0, 0);
    if (owner != 0 && hw::RawSyscall3(SYS_tgkill, pid, owner, 0) != -ESRCH) return nullptr;
    if (!__atomic_compare_exchange_n(&r->owner, &owner, tid, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
      return nullptr;
    domains::InstallTrustedTcb(domains::kTrustedDomain, r, tid);
  }
  *slot = static_cast<uint32_t>(i);
  return r;
}

// A thread that cordon_signal_clone made, inside domain 1 on the bootstrap
// stack (held), every signal blocked, before any of the program's code:
// its record of domain 1 and, in that record's slot, its alternate stack.
// Returns the record index; the caller stores it in TLS once it has left
// the domain (nothing writes through fs with a domain's rights, docs/gates.md).
extern "C" uint32_t cordon_internal_signal_thread_start() {
  const auto& c = Config().domains[domains::kTrustedDomain];
  const uint32_t i = cordon_internal_attach_thread(domains::kTrustedDomain);
  if (i >= c.nrecords) {
    internal::Die(
        "no free trusted thread slot for a new thread: more threads than cordon_options.max_threads allows; "
        "process stopped");
  }
  const auto* r = reinterpret_cast<const gates::ThreadRecord*>(c.records + i * c.stride);
  if (!SetAltstack(AltstackLow(r), AltstackBytes(), false)) {
    internal::Die("cannot give a new thread its alternate signal stack; process stopped");
  }
  return i;
}

// Inside domain 1, on record r's signal-return buffer, every signal
// blocked. Copies the machine context, signal mask and XSAVE area of the
// frame at uc (untrusted memory) into the buffer, with PKRU forced to the
// untrusted value and the XSAVE bookkeeping set to what the kernel wrote,
// so that the kernel cannot fall back to a path that loads another PKRU.
// Returns the stack pointer for rt_sigreturn. The frame's first 48 bytes
// (return address, uc_flags, uc_link, uc_stack) fall on the read-only page
// below the buffer: the kernel reads uc_stack after it has loaded the
// untrusted PKRU, which cannot read the buffer.
extern "C" uint64_t cordon_internal_signal_return_frame(unsigned char* uc, gates::ThreadRecord* r) {
  const auto& c = Config();
  auto* slot = reinterpret_cast<unsigned char*>(
      gates::SlotOfRecord(reinterpret_cast<uint64_t>(r), c.domains[domains::kTrustedDomain].stride));
  unsigned char* mcontext = slot + SLOT_READONLY_PAGES * kPage;
  if (!domains::IsUntrustedRange(uc, kKernelUcontextSize)) {
    internal::Die(
        "signal violation: a signal frame to return through lies in trusted memory; process stopped");
  }
  memcpy(mcontext, uc + kUcMcontext, kKernelUcontextSize - kUcMcontext);
  auto& fpstate = At<uint64_t>(mcontext, kMcontextFpstate);
  unsigned char* fp = mcontext + 512;  // 64-byte aligned, as XRSTOR needs
  const uint32_t size = c.xstate_size;
  if (fpstate != 0) {
    auto* src = reinterpret_cast<unsigned char*>(fpstate);
    if (!domains::IsUntrustedRange(src, size + 4)) {
      internal::Die("signal violation: a signal frame's XSAVE area lies in trusted memory; process stopped");
    }
    memcpy(fp, src, size);
  }
  RebuildXsaveArea(fp, fpstate != 0);
  fpstate = reinterpret_cast<uint64_t>(fp);
  // A thread made after the lockdown starts without an alternate stack
  // (the kernel clears it for CLONE_VM): it gets its own here, on its first
  // handled signal (docs/signals.md, Limits).
  if (c.signal_altstack != 0) {
    // (Only then: a shrunk one protects frames parked on it.)
    stack_t cur{};
    if (syscall(SYS_sigaltstack, nullptr, &cur) != 0 ||
        ((cur.ss_flags & SS_DISABLE) != 0 && !SetAltstack(AltstackLow(r), AltstackBytes(), false))) {
      internal::Die("cannot give this thread its alternate signal stack; process stopped");
    }
  }
  return reinterpret_cast<uint64_t>(mcontext - kUcMcontext);
}
