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

#include <linux/seccomp.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/single_threaded.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>

#include "cordon/cordon.h"
#include "runtime/core/check.h"
#include "runtime/domains/domain.h"
#include "runtime/gates/gate_config.h"
#include "runtime/hardware/cpu.h"
#include "runtime/hardware/pkey.h"

extern "C" {
void cordon_signal_entry(int, siginfo_t*, void*);
void cordon_signal_restorer();
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

namespace cordon::signals {
namespace {

using gates::Config;

constexpr size_t kPage = 4096;
constexpr int kMaxSignal = 64;
constexpr uint64_t kSaRestorer = 0x04000000;  // SA_RESTORER: the kernel's, not in glibc's headers
constexpr uint64_t kPkruBit = uint64_t{1} << 9;
constexpr size_t kReturnStack = 8192;  // the copy's stack, at the buffer's top

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
constexpr size_t kXstateBv = 512;  // XSAVE header: which components hold state

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
  uint64_t unused;
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

// 32 and 33: glibc's thread cancellation and setxid signals.
bool IsGlibcInternal(int sig) {
  return sig == 32 || sig == 33;
}

bool QueryKernel(int sig, KernelSigaction* out) {
  return syscall(SYS_rt_sigaction, sig, nullptr, out, 8) == 0;
}

void SetMask(uint64_t mask) {
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &mask, nullptr, 8);
}

// ---- The frame probe at cordon_init() ----

struct Probe {
  uint32_t magic1, xstate_size;
  uint64_t xfeatures;
  uint32_t handler_pkru;
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

// ---- Handlers ----

int CallInstall(uint64_t sig, uint64_t mode, uint64_t flags) {
  const uint64_t r = domains::RunFor(
      1, domains::kBuiltinSignalAction, sig, mode, [&] { return InstallActionInside(1, sig, mode, flags); },
      flags);
  return domains::StatusOf(r);
}

int Install(int sig, uint64_t fn, uint64_t mask, uint64_t flags) {
  const uint64_t kept = flags & (SA_RESTART | SA_NOCLDSTOP | SA_NOCLDWAIT);
  Handler& h = g_handlers[sig];
  if (fn == reinterpret_cast<uint64_t>(SIG_DFL) || fn == reinterpret_cast<uint64_t>(SIG_IGN)) {
    h.fn.store(0);
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

}  // namespace

size_t BufferPages() {
  static const size_t pages = (512 + hw::XsaveMaxSize() + 64 + kReturnStack + kPage - 1) / kPage;
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
  const bool ok = gates::UpdateConfig([&](gates::GateConfig& c) {
    c.sigbuf_pages = static_cast<uint32_t>(BufferPages());
    c.xstate_size = g_probe.xstate_size;
    c.pkru_offset = pkru_offset;
    c.xfeatures = g_probe.xfeatures;
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
    if ((k.flags & (SA_ONSTACK | SA_RESETHAND)) != 0) {
      return "the handler of signal " + std::to_string(sig) + " uses " +
             ((k.flags & SA_ONSTACK) != 0 ? "SA_ONSTACK" : "SA_RESETHAND") +
             ", which Cordon cannot honour after lockdown (an alternate stack would receive trusted "
             "registers; docs/signals.md); install it without that flag";
    }
  }
  return {};
}

int TakeOverHandlers() {
  for (int sig = 1; sig <= kMaxSignal; ++sig) {
    KernelSigaction k{};
    if (!ValidSignal(sig) || !QueryKernel(sig, &k) || k.handler <= 1) continue;
    if (k.handler == reinterpret_cast<uint64_t>(&cordon_signal_entry)) continue;
    // glibc's own handlers (SIGSETXID asks for SA_ONSTACK) run on the
    // interrupted stack instead.
    const uint64_t flags = IsGlibcInternal(sig) ? k.flags & ~uint64_t{SA_ONSTACK} : k.flags;
    if (const int s = Install(sig, k.handler, k.mask, flags); s != CORDON_OK) return s;
  }
  return CORDON_OK;
}

int SetAction(int sig, const struct sigaction* act, struct sigaction* old) {
  if (!ValidSignal(static_cast<uint64_t>(sig)) || IsGlibcInternal(sig)) return CORDON_E_INVALID_ARGUMENT;
  if (act != nullptr && (act->sa_flags & (SA_ONSTACK | SA_RESETHAND)) != 0) return CORDON_E_INVALID_ARGUMENT;
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
      old->sa_handler = reinterpret_cast<void (*)(int)>(k.handler);
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
  if (!ValidSignal(sig) || mode > 2) return domains::EncodeStatus(CORDON_E_INVALID_ARGUMENT);
  KernelSigaction k{};
  k.flags = flags & (SA_RESTART | SA_NOCLDSTOP | SA_NOCLDWAIT);
  k.handler = mode;  // SIG_DFL, SIG_IGN
  if (mode == 2) {
    // Every signal blocked while the runtime's entry decides; the program's
    // own mask is set before its handler runs.
    k.handler = reinterpret_cast<uint64_t>(&cordon_signal_entry);
    k.flags |= SA_SIGINFO | kSaRestorer;
    k.restorer = reinterpret_cast<uint64_t>(&cordon_signal_restorer);
    k.mask = ~uint64_t{0};
  }
  const long rc = hw::SysWithToken(SYS_rt_sigaction, static_cast<long>(sig), reinterpret_cast<long>(&k), 0, 8,
                                   domains::TokenOf(d));
  if (rc == 0) return 0;
  return domains::EncodeStatus(rc == -EINVAL ? CORDON_E_INVALID_ARGUMENT : CORDON_E_SYSCALL);
}

uint64_t LoadFilterInside(int d, const sock_filter* program, uint64_t count) {
  // Once: a second filter could only come from untrusted code.
  if (prctl(PR_GET_SECCOMP) != 0 || count == 0 || count > BPF_MAXINSNS ||
      !domains::IsUntrustedRange(program, count * sizeof(sock_filter))) {
    return domains::EncodeStatus(CORDON_E_INVALID_ARGUMENT);
  }
  const size_t bytes = count * sizeof(sock_filter);
  const uint64_t mem = domains::HeapAllocInside(d, bytes, 16);
  if (domains::IsStatus(mem)) return mem;
  auto* copy = reinterpret_cast<sock_filter*>(mem);
  memcpy(copy, program, bytes);
  const uint64_t* token = domains::TokenOf(d);
  const uint32_t from[4] = {
      static_cast<uint32_t>(kPlaceholderToken[0]), static_cast<uint32_t>(kPlaceholderToken[0] >> 32),
      static_cast<uint32_t>(kPlaceholderToken[1]), static_cast<uint32_t>(kPlaceholderToken[1] >> 32)};
  const uint32_t to[4] = {static_cast<uint32_t>(token[0]), static_cast<uint32_t>(token[0] >> 32),
                          static_cast<uint32_t>(token[1]), static_cast<uint32_t>(token[1] >> 32)};
  int found[4] = {};
  for (uint64_t i = 0; i < count; ++i) {
    if (copy[i].code != (BPF_JMP | BPF_JEQ | BPF_K)) continue;
    for (int w = 0; w < 4; ++w) {
      if (copy[i].k == from[w]) {
        copy[i].k = to[w];
        ++found[w];
      }
    }
  }
  long rc = -EINVAL;
  if (found[0] != 0 && found[1] != 0 && found[2] != 0 && found[3] != 0) {
    sock_fprog prog{static_cast<unsigned short>(count), copy};
    rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
    if (rc != 0 && errno != 0) rc = -errno;
  }
  explicit_bzero(copy, bytes);
  (void)domains::HeapFreeInside(d, copy);
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
  const Handler& h = g_handlers[sig];
  const uint64_t fn = h.fn.load();
  if (fn == 0) return;
  uint64_t interrupted;
  memcpy(&interrupted, &uc->uc_sigmask, sizeof interrupted);
  SetMask(interrupted | h.mask | ((h.flags & SA_NODEFER) != 0 ? 0 : Bit(sig)));
  reinterpret_cast<void (*)(int, siginfo_t*, void*)>(fn)(sig, info, ucv);
}

// Inside domain d, on this thread's trusted stack below the kernel's frame,
// every signal blocked; gate.S has checked that the thread was running d's
// code on record r. Returns the handler frame on the untrusted stack, or 0
// to resume the domain code at once.
extern "C" uint64_t cordon_internal_signal_in_domain(int d, gates::ThreadRecord* r, unsigned char* frame) {
  const auto* info = reinterpret_cast<const siginfo_t*>(frame + 8 + kKernelUcontextSize);
  if (IsFault(info)) DieFault(d, info, frame);
  const int sig = info->si_signo;
  if (sig < 1 || sig > kMaxSignal) return 0;
  const Handler& h = g_handlers[sig];
  const uint64_t fn = h.fn.load();
  if (fn == 0) return 0;
  // Below the untrusted stack pointer the gate was called with, clear of
  // its red zone, aligned as at a function's entry.
  const uint64_t at = ((r->saved_rsp - 256 - sizeof(HandlerFrame)) & ~uint64_t{15}) - 8;
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
  hf->mask = interrupted | h.mask | ((h.flags & SA_NODEFER) != 0 ? 0 : Bit(sig));
  memcpy(&hf->info, info, sizeof hf->info);
  memcpy(&hf->uc.uc_sigmask, &interrupted, sizeof interrupted);
  __atomic_store_n(&r->signal_frame, reinterpret_cast<uint64_t>(frame), __ATOMIC_RELEASE);
  return at;
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
  auto* slot = reinterpret_cast<unsigned char*>(r) + REC_SIZE - c.domains[1].stride;
  unsigned char* mcontext = slot + SLOT_READONLY_PAGES * kPage;
  if (!domains::IsUntrustedRange(uc, kKernelUcontextSize)) {
    internal::Die(
        "signal violation: a signal frame to return through lies in trusted memory; process stopped");
  }
  memcpy(mcontext, uc + kUcMcontext, kKernelUcontextSize - kUcMcontext);
  auto& fpstate = At<uint64_t>(mcontext, kMcontextFpstate);
  if (fpstate != 0) {
    const uint32_t size = c.xstate_size;
    auto* src = reinterpret_cast<unsigned char*>(fpstate);
    if (!domains::IsUntrustedRange(src, size + 4)) {
      internal::Die("signal violation: a signal frame's XSAVE area lies in trusted memory; process stopped");
    }
    unsigned char* fp = mcontext + 512;  // 64-byte aligned, as XRSTOR needs
    memcpy(fp, src, size);
    At<uint32_t>(fp, kSwMagic1) = kFpXstateMagic1;
    At<uint32_t>(fp, kSwExtendedSize) = size + 4;
    At<uint64_t>(fp, kSwXfeatures) = c.xfeatures;
    At<uint32_t>(fp, kSwXstateSize) = size;
    At<uint32_t>(fp, size) = kFpXstateMagic2;
    At<uint64_t>(fp, kXstateBv) |= kPkruBit;
    At<uint32_t>(fp, c.pkru_offset) = c.untrusted_pkru;
    fpstate = reinterpret_cast<uint64_t>(fp);
  }
  // Without an XSAVE area the kernel loads its default PKRU, which is the
  // untrusted one (cordon_init checks).
  return reinterpret_cast<uint64_t>(mcontext - kUcMcontext);
}
