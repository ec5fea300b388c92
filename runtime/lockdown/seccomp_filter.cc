// The lockdown's seccomp filter (see seccomp_filter.h and docs/lockdown.md).
#include "runtime/lockdown/seccomp_filter.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/prctl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstring>

#include "runtime/base/check.h"

namespace cordon::lockdown {
namespace {

using hw::kGuard;

// System calls untrusted code never needs after set-up and that reach
// around protection keys: the key calls themselves, foreign memory access
// (the kernel ignores pkeys there), asynchronous kernel access to memory
// (io_uring, userfaultfd stalls), sampling of registers and stacks
// (perf_event_open), descriptor theft, new mounts (another procfs), new
// filters, segment games, and loading kernel code.
constexpr const char* kForbidden[] = {
    "pkey_alloc",
    "pkey_free",
    "seccomp",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "userfaultfd",
    "modify_ldt",
    "set_thread_area",  // a GDT TLS segment serves only 32-bit code (red-team compat_mode_exit)
    "perf_event_open",
    "bpf",
    "process_madvise",
    "pidfd_getfd",
    "open_by_handle_at",
    "remap_file_pages",
    "mount",
    "umount2",
    "pivot_root",
    "fsopen",
    "fsconfig",
    "fsmount",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
};

// Calls ordinary programs make, refused with EPERM in every mode so that
// they fall back: glibc's realloc copies when mremap fails (mremap could
// glue executable pages into a WRPKRU), new threads run without rseq (its
// abort handler could redirect trusted code), and no new program image can
// be started (its loader would need new executable memory).
constexpr const char* kRefused[] = {"mremap", "rseq", "execve", "execveat"};

// Credentials are fixed at lockdown, which drops every capability
// (lockdown.cc): no call may change a uid, gid or capability again. A
// changed uid or fsuid would also make the process dumpable again (the
// kernel resets dumpable to suid_dumpable on such changes).
constexpr const char* kCredentials[] = {"setuid",    "setgid",   "setreuid", "setregid",  "setresuid",
                                        "setresgid", "setfsuid", "setfsgid", "setgroups", "capset"};
// prctl options that change what credentials mean or who may trace: the
// securebits, keeping capabilities across a uid change, raising ambient
// capabilities, and Yama's ptracer exception.
constexpr int kCredentialPrctls[] = {PR_SET_SECUREBITS, PR_SET_KEEPCAPS, PR_CAP_AMBIENT, PR_SET_PTRACER};

class Builder {
 public:
  Builder(scmp_filter_ctx ctx, uint32_t deny) : ctx_(ctx), deny_(deny) {}

  template <typename... Cmp>
  void Rule(uint32_t action, const char* name, Cmp... cmp) {
    if (!error_.empty()) return;
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) {
      error_ = std::string("libseccomp does not know the system call ") + name;
      return;
    }
    const int rc = seccomp_rule_add(ctx_, action, nr, sizeof...(Cmp), cmp...);
    if (rc != 0) error_ = std::string("cannot add the rule for ") + name + ": " + strerror(-rc);
  }
  template <typename... Cmp>
  void Deny(const char* name, Cmp... cmp) {
    Rule(deny_, name, cmp...);
  }
  const std::string& error() const { return error_; }

 private:
  scmp_filter_ctx ctx_;
  uint32_t deny_;
  std::string error_;
};

constexpr uint64_t kBlockMask = ~(kGuard - 1);

// Comparisons. The kernel reads int arguments from the low 32 bits of their
// registers, so those are always compared through a 32-bit mask: a plain
// 64-bit compare would let garbage in the high half slip past a rule.
scmp_arg_cmp Arg64(unsigned arg, scmp_compare op, uint64_t value) {
  return scmp_arg_cmp{arg, op, value, 0};
}
scmp_arg_cmp IntIs(unsigned arg, uint32_t value) {
  return scmp_arg_cmp{arg, SCMP_CMP_MASKED_EQ, 0xffffffffu, value};
}
scmp_arg_cmp IntHas(unsigned arg, uint32_t bits) {
  return scmp_arg_cmp{arg, SCMP_CMP_MASKED_EQ, bits, bits};
}
scmp_arg_cmp InBlock(unsigned arg, uint64_t block) {
  return scmp_arg_cmp{arg, SCMP_CMP_MASKED_EQ, kBlockMask, block};
}

// Deferred kernel writes (docs/lockdown.md): words the kernel writes
// through a user pointer later, on its own schedule, with whatever PKRU the
// thread holds then, which is a domain's if the thread is killed (or dies)
// inside one. None may point into a protected block:
//  - clear_child_tid (0 and a futex wake at thread exit, SIGKILL included):
//    set_tid_address, and clone's child_tid (CLONE_CHILD_CLEARTID, and
//    CLONE_CHILD_SETTID, written in the child) and parent_tid
//    (CLONE_PARENT_SETTID, CLONE_PIDFD), whatever the flags say;
//  - clone3 passes them in a struct seccomp cannot read: ENOSYS, and glibc
//    falls back to clone;
//  - a robust futex list is walked at exit through nodes untrusted code
//    writes: set_robust_list is refused (glibc ignores the failure), and the
//    lockdown unregisters the one list set up before it;
//  - rseq is refused, and unregistered at lockdown (kRefused).
void DenyDeferredKernelWrites(Builder& b, const FilterSpec& spec) {
  for (const FilterSpec::Range& r : spec.protected_ranges) {
    for (const uint64_t block : BlocksFor(r)) {
      b.Deny("set_tid_address", InBlock(0, block));
      b.Deny("clone", InBlock(2, block));
      b.Deny("clone", InBlock(3, block));
    }
  }
  for (const uint64_t page : spec.tagged_pages) {
    // On the page, or in the 8 bytes before it (a 4- or 8-byte word there
    // reaches into it).
    for (const scmp_arg_cmp where : {scmp_arg_cmp{0, SCMP_CMP_MASKED_EQ, ~uint64_t{0xfff}, page},
                                     scmp_arg_cmp{0, SCMP_CMP_MASKED_EQ, ~uint64_t{7}, page - 8}}) {
      scmp_arg_cmp a2 = where, a3 = where;
      a2.arg = 2;
      a3.arg = 3;
      b.Deny("set_tid_address", where);
      b.Deny("clone", a2);
      b.Deny("clone", a3);
    }
  }
  b.Rule(SCMP_ACT_ERRNO(ENOSYS), "clone3");
  b.Rule(SCMP_ACT_ERRNO(EPERM), "set_robust_list");
}

// A violation ends the thread group (exit_group, or a fatal signal). A
// process that shares the address space without being in the group
// (clone(CLONE_VM) without CLONE_THREAD, vfork) would survive it, keep
// running untrusted code over the same trusted memory, and be free to try
// again: fail open. Nothing needs one after the lockdown (execve is refused,
// so posix_spawn cannot start a program anyway).
//
// CLONE_VM with CLONE_VFORK is refused too, CLONE_THREAD or not: such a
// thread would escape the trap that gives every new thread its alternate
// signal stack (threads_by_runtime), and nothing needs one either.
void DenySharedMemoryProcesses(Builder& b) {
  constexpr uint64_t kVm = 0x100, kVfork = 0x4000, kThread = 0x10000;  // CLONE_VM, CLONE_VFORK, CLONE_THREAD
  b.Deny("clone", scmp_arg_cmp{0, SCMP_CMP_MASKED_EQ, kVm | kThread, kVm});
  b.Deny("clone", scmp_arg_cmp{0, SCMP_CMP_MASKED_EQ, kVm | kVfork, kVm | kVfork});
  b.Deny("vfork");
}

// Signals only a faulting instruction may raise (FilterSpec::
// unsendable_signals): every way a process can name a signal for itself or
// another is closed for them. The int arguments are compared on their low
// 32 bits, as the kernel reads them; PR_SET_PDEATHSIG's is an unsigned
// long, which the kernel checks whole.
void DenySendingSignals(Builder& b, const std::vector<int>& signals) {
  if (signals.empty()) return;
  constexpr uint32_t kTiocsig = 0x40045436;  // TIOCSIG: a pty master signals the foreground group
  for (const int sig : signals) {
    const auto s = static_cast<uint32_t>(sig);
    b.Deny("kill", IntIs(1, s));
    b.Deny("tkill", IntIs(1, s));
    b.Deny("tgkill", IntIs(2, s));
    b.Deny("rt_sigqueueinfo", IntIs(1, s));
    b.Deny("rt_tgsigqueueinfo", IntIs(2, s));
    b.Deny("pidfd_send_signal", IntIs(1, s));
    b.Deny("prctl", IntIs(0, PR_SET_PDEATHSIG), Arg64(1, SCMP_CMP_EQ, s));
    b.Deny("fcntl", IntIs(1, F_SETSIG), IntIs(2, s));
    b.Deny("ioctl", IntIs(1, kTiocsig), IntIs(2, s));
    b.Deny("clone", scmp_arg_cmp{0, SCMP_CMP_MASKED_EQ, 0xff, s});  // the exit signal (CSIGNAL)
  }
  b.Deny("timer_create", Arg64(1, SCMP_CMP_NE, 0));
  b.Deny("mq_notify", Arg64(1, SCMP_CMP_NE, 0));
}

// The audit stream's descriptor (FilterSpec::audit_fd, docs/audit.md):
// untrusted code may not write to it (forged records), nor close it,
// replace it or move its file's offset or size (records lost or
// overwritten), nor pass it on. Only the runtime's write, which carries
// the token's first word in r8 (the kernel ignores r8 for write), names
// it. Every other call that takes a descriptor it could use that way is
// refused when the descriptor is this one, in each argument that holds
// one; reads too (a read moves a file's offset). Queries (fstat, poll)
// stay open. Calls that name descriptors in memory seccomp cannot read
// are closed where they can be: legacy AIO's io_submit (its iocbs) is
// refused outright; sendmsg's SCM_RIGHTS is not (docs/audit.md, Limits).
void GuardAuditDescriptor(Builder& b, const FilterSpec& spec) {
  if (spec.audit_fd < 0) return;
  const auto fd = static_cast<uint32_t>(spec.audit_fd);
  b.Deny("write", IntIs(0, fd), Arg64(4, SCMP_CMP_NE, spec.signal_token[0]));
  static constexpr struct {
    const char* name;
    unsigned arg;
  } kNamed[] = {
      {"writev", 0},
      {"pwrite64", 0},
      {"pwritev", 0},
      {"pwritev2", 0},
      {"sendto", 0},
      {"sendmsg", 0},
      {"sendmmsg", 0},
      {"close", 0},
      {"dup", 0},
      {"dup2", 0},
      {"dup2", 1},
      {"dup3", 0},
      {"dup3", 1},
      {"fcntl", 0},
      {"ftruncate", 0},
      {"fallocate", 0},
      {"lseek", 0},
      {"ioctl", 0},
      {"mmap", 4},
      {"splice", 0},
      {"splice", 2},
      {"tee", 0},
      {"tee", 1},
      {"sendfile", 0},
      {"sendfile", 1},
      {"copy_file_range", 0},
      {"copy_file_range", 2},
      {"vmsplice", 0},
      {"read", 0},
      {"readv", 0},
      {"pread64", 0},
      {"preadv", 0},
      {"preadv2", 0},
      {"recvfrom", 0},
      {"recvmsg", 0},
      {"recvmmsg", 0},
      {"shutdown", 0},
      {"connect", 0},
      {"bind", 0},
      {"listen", 0},
      {"accept", 0},
      {"accept4", 0},
      {"setsockopt", 0},
      {"sync_file_range", 0},
      {"fadvise64", 0},
      {"readahead", 0},
      {"flock", 0},
      {"fchmod", 0},
      {"fchown", 0},
      {"fsetxattr", 0},
      {"fremovexattr", 0},
      {"fchdir", 0},
      {"fsync", 0},
      {"fdatasync", 0},
      {"syncfs", 0},
      {"inotify_add_watch", 0},
      {"fanotify_mark", 0},
      {"epoll_ctl", 2},
      // The *at calls act on their directory descriptor itself with an
      // empty or NULL path (AT_EMPTY_PATH): the stream's mode, owner,
      // times, a new link or handle to it. A stream is never a directory,
      // so no other use of it there is lost.
      {"fchmodat", 0},
      {"fchmodat2", 0},
      {"fchownat", 0},
      {"utimensat", 0},
      {"futimesat", 0},
      {"linkat", 0},
      {"name_to_handle_at", 0},
      {"open_tree", 0},
      {"fspick", 0},
      {"execveat", 0},
  };
  for (const auto& n : kNamed) b.Deny(n.name, IntIs(n.arg, fd));
  // close_range(first, last, flags) over it. The kernel reads unsigned
  // ints: a bound with bits above 31 is refused whole, so that the 64-bit
  // comparisons below see what the kernel sees.
  b.Deny("close_range", Arg64(0, SCMP_CMP_GT, 0xffffffffu));
  b.Deny("close_range", Arg64(1, SCMP_CMP_GT, 0xffffffffu));
  b.Deny("close_range", Arg64(0, SCMP_CMP_LE, fd), Arg64(1, SCMP_CMP_GE, fd));
  b.Deny("io_submit");
}

}  // namespace

std::vector<uint64_t> BlocksFor(const FilterSpec::Range& r) {
  std::vector<uint64_t> blocks;
  const uint64_t low = r.start >= kGuard ? r.start - kGuard : 0;
  for (uint64_t b = low & kBlockMask; b < r.end; b += kGuard) blocks.push_back(b);
  return blocks;
}

Expected<Filter> BuildFilter(const FilterSpec& spec) {
  Filter filter(seccomp_init(SCMP_ACT_ALLOW));
  if (!filter) return Error{"seccomp_init failed"};
  const uint32_t deny = spec.violation == Violation::kKill ? SCMP_ACT_TRAP : SCMP_ACT_ERRNO(EPERM);
  // Only x86-64 system calls: int 0x80 (i386) and x32 numbers (bit 30) get
  // the bad-architecture action, which libseccomp applies to both.
  if (seccomp_attr_set(filter.get(), SCMP_FLTATR_ACT_BADARCH, deny) != 0 ||
      seccomp_attr_set(filter.get(), SCMP_FLTATR_CTL_TSYNC, 1) != 0 ||
      seccomp_attr_set(filter.get(), SCMP_FLTATR_CTL_NNP, 1) != 0) {
    return Error{"cannot set the filter's attributes"};
  }
  Builder b(filter.get(), deny);
  for (const char* name : kForbidden) b.Deny(name);
  for (const char* name : kRefused) b.Rule(SCMP_ACT_ERRNO(EPERM), name);
  for (const char* name : kCredentials) b.Deny(name);
  for (const int option : kCredentialPrctls) b.Deny("prctl", IntIs(0, static_cast<uint32_t>(option)));

  // No further filters, no core dumps, no rewriting of the memory map, and
  // no Syscall User Dispatch: it turns any system call instruction into a
  // SIGSYS at that instruction, a gate's fatal path included, where PKRU
  // may be a domain's (or 0) and the stack pointer the caller's.
  for (const int option : {PR_SET_SECCOMP, PR_SET_DUMPABLE, PR_SET_MM, PR_SET_SYSCALL_USER_DISPATCH}) {
    b.Deny("prctl", IntIs(0, static_cast<uint32_t>(option)));
  }
  // Linear Address Masking: with tagged addresses enabled, the kernel strips
  // the tag bits from memory calls' addresses, while every rule here
  // compares the tagged value. Refused (and checked off at lockdown).
  b.Deny("arch_prctl", IntIs(0, 0x4002 /* ARCH_ENABLE_TAGGED_ADDR */));
  b.Deny("arch_prctl", IntIs(0, 0x4004 /* ARCH_FORCE_TAGGED_SVA */));
  // READ_IMPLIES_EXEC would make every later PROT_READ mapping executable
  // behind the filter's back; only the query (0xffffffff) stays.
  // (A 64-bit compare: garbage in the high half is refused too.)
  b.Deny("personality", Arg64(0, SCMP_CMP_NE, 0xffffffffu));
  // Signals (docs/signals.md): a sigreturn frame sets every register and
  // PKRU, and a handler decides where signal frames go; only the runtime,
  // which holds the token, may do either. Queries stay open. (rt_sigaction
  // checks the first word only: libseccomp 2.5.4 does not finish merging
  // two rules that share the act condition.)
  b.Deny("rt_sigreturn", Arg64(4, SCMP_CMP_NE, spec.signal_token[0]));
  b.Deny("rt_sigreturn", Arg64(5, SCMP_CMP_NE, spec.signal_token[1]));
  b.Deny("rt_sigaction", Arg64(1, SCMP_CMP_NE, 0), Arg64(4, SCMP_CMP_NE, spec.signal_token[0]));
  // Where frames go is the runtime's too: a new alternate stack needs the
  // token's first word in r8 (queries stay open).
  b.Deny("sigaltstack", Arg64(0, SCMP_CMP_NE, 0), Arg64(4, SCMP_CMP_NE, spec.signal_token[0]));
  if (spec.threads_by_runtime) {
    b.Rule(SCMP_ACT_TRAP, "clone", scmp_arg_cmp{0, SCMP_CMP_MASKED_EQ, CLONE_VM | CLONE_VFORK, CLONE_VM},
           Arg64(5, SCMP_CMP_NE, spec.signal_token[0]));
    b.Rule(SCMP_ACT_ERRNO(ENOSYS), "clone3");
    for (const uint32_t how : {uint32_t{SIG_BLOCK}, uint32_t{SIG_SETMASK}}) {
      b.Rule(SCMP_ACT_TRAP, "rt_sigprocmask", IntIs(0, how), Arg64(1, SCMP_CMP_NE, spec.block_all));
    }
  }

  // pkey_mprotect moves pages between keys: only the runtime may call it,
  // with the token, on the code region's pages (runtime/code/), and never
  // for writable and executable at once. Without a code region it is
  // forbidden outright (an empty range below the lowest address).
  b.Deny("pkey_mprotect", Arg64(4, SCMP_CMP_NE, spec.signal_token[0]));
  b.Deny("pkey_mprotect", Arg64(5, SCMP_CMP_NE, spec.signal_token[1]));
  b.Deny("pkey_mprotect", Arg64(0, SCMP_CMP_LT, spec.code_pages.start));
  b.Deny("pkey_mprotect", Arg64(0, SCMP_CMP_GE, spec.code_pages.end));
  b.Deny("pkey_mprotect", Arg64(1, SCMP_CMP_GT, spec.code_pages.end - spec.code_pages.start));
  b.Deny("pkey_mprotect", IntHas(2, PROT_WRITE | PROT_EXEC));

  // Otherwise no new executable memory, of any kind (anonymous, file,
  // shared, execute-only, or a System V segment); nothing executable can be
  // remapped since mremap is refused. The code region is the way
  // (docs/code.md).
  b.Deny("mmap", IntHas(2, PROT_EXEC));
  b.Deny("mprotect", IntHas(2, PROT_EXEC));
  b.Deny("shmat", IntHas(2, SHM_EXEC));
  b.Deny("shmat", IntHas(2, SHM_REMAP));

  // Nothing may touch protected memory: lengths stay below kGuard, and
  // addresses outside the blocks around each protected range.
  b.Deny("mmap", Arg64(1, SCMP_CMP_GE, kGuard), IntHas(3, MAP_FIXED));
  for (const char* name : {"mprotect", "munmap", "madvise"}) b.Deny(name, Arg64(1, SCMP_CMP_GE, kGuard));
  for (const FilterSpec::Range& r : spec.protected_ranges) {
    for (const uint64_t block : BlocksFor(r)) {
      for (const char* name : {"mmap", "mprotect", "munmap", "madvise"}) {
        b.Deny(name, InBlock(0, block));
      }
      // shmat(id, addr, flags) places a segment too (red-team
      // compat_mode_exit filled a hole below the executable with one).
      b.Deny("shmat", InBlock(1, block));
    }
  }
  DenyDeferredKernelWrites(b, spec);
  DenySharedMemoryProcesses(b);
  DenySendingSignals(b, spec.unsendable_signals);
  GuardAuditDescriptor(b, spec);
  if (!b.error().empty()) return Error{b.error()};
  return filter;
}

namespace {

// What one of libseccomp's exporters writes, read back from a memory file:
// not tmpfile(), which needs a writable /tmp (a server's worker running as
// nobody may have none, and its lockdown failed there).
Expected<std::string> Exported(const Filter& filter, int (*exporter)(const scmp_filter_ctx, int),
                               const char* name) {
  const int fd = memfd_create("cordon-filter", MFD_CLOEXEC);
  if (fd < 0) return Error{std::string("memfd_create: ") + strerror(errno)};
  FILE* tmp = fdopen(fd, "w+");
  if (tmp == nullptr) {
    const int e = errno;
    close(fd);
    return Error{std::string("fdopen: ") + strerror(e)};
  }
  std::string bytes;
  const int rc = exporter(filter.get(), fileno(tmp));
  if (rc == 0) {
    rewind(tmp);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, tmp)) > 0) bytes.append(buf, n);
  }
  fclose(tmp);
  if (rc != 0) return Error{std::string(name) + ": " + strerror(-rc)};
  return bytes;
}

}  // namespace

Expected<std::string> FilterText(const Filter& filter) {
  return Exported(filter, seccomp_export_pfc, "seccomp_export_pfc");
}

namespace {

constexpr uint16_t kLd = BPF_LD | BPF_W | BPF_ABS, kLdMem = BPF_LD | BPF_MEM, kSt = BPF_ST,
                   kJeq = BPF_JMP | BPF_JEQ | BPF_K, kJgt = BPF_JMP | BPF_JGT | BPF_K,
                   kJge = BPF_JMP | BPF_JGE | BPF_K;

uint32_t ArgLo(int i) {
  return static_cast<uint32_t>(offsetof(seccomp_data, args) + 8 * i);
}
uint32_t ArgHi(int i) {
  return ArgLo(i) + 4;
}

// Memory slots 0 and 1: the address (argument 0) low and high; 2 and 3:
// end = address + length (argument 1), 64 bits out of 32-bit halves. The
// caller bounds the length so that the sum cannot wrap for a user address.
void EmitEnd(std::vector<sock_filter>& p) {
  const auto op = [&p](uint16_t code, uint32_t k, uint8_t jt = 0, uint8_t jf = 0) {
    p.push_back(sock_filter{code, jt, jf, k});
  };
  const auto arg_lo = ArgLo;
  const auto arg_hi = ArgHi;
  op(kLd, arg_lo(0));
  op(kSt, 0);
  op(BPF_MISC | BPF_TAX, 0);
  op(kLd, arg_lo(1));
  op(BPF_ALU | BPF_ADD | BPF_X, 0);
  op(kSt, 2);
  // carry: end_lo < address_lo (X still holds address_lo)
  op(BPF_JMP | BPF_JGE | BPF_X, 0, 2, 0);
  op(BPF_LD | BPF_IMM, 1);
  op(BPF_JMP | BPF_JA, 1);
  op(BPF_LD | BPF_IMM, 0);
  op(BPF_MISC | BPF_TAX, 0);  // X = carry
  op(kLd, arg_hi(1));
  op(BPF_ALU | BPF_ADD | BPF_X, 0);
  op(BPF_MISC | BPF_TAX, 0);
  op(kLd, arg_hi(0));
  op(kSt, 1);
  op(BPF_ALU | BPF_ADD | BPF_X, 0);
  op(kSt, 3);
}

// A BPF program with labels: jumps name labels, resolved at the end.
class Program {
 public:
  int Label() {
    at_.push_back(-1);
    return static_cast<int>(at_.size()) - 1;
  }
  void Bind(int label) { at_[label] = static_cast<int>(code_.size()); }
  void Op(uint16_t code, uint32_t k) { code_.push_back({sock_filter{code, 0, 0, k}, -1, -1}); }
  // A conditional jump; kNext: the next instruction.
  static constexpr int kNext = -1;
  void Jump(uint16_t code, uint32_t k, int if_true, int if_false) {
    code_.push_back({sock_filter{code, 0, 0, k}, if_true, if_false});
  }
  void Always(int label) { code_.push_back({sock_filter{BPF_JMP | BPF_JA, 0, 0, 0}, label, -2}); }
  // An instruction whose jumps are already resolved (they stay within it).
  void Raw(const sock_filter& f) { code_.push_back({f, -3, -3}); }
  std::vector<sock_filter> Finish() const {
    std::vector<sock_filter> out;
    for (size_t i = 0; i < code_.size(); ++i) {
      sock_filter f = code_[i].f;
      const auto offset = [&](int label) {
        const int to = label == kNext ? static_cast<int>(i) + 1 : at_[label];
        CORDON_CHECK(to > static_cast<int>(i) &&
                         to - static_cast<int>(i) - 1 < (f.code == (BPF_JMP | BPF_JA) ? 65536 : 256),
                     "a BPF jump out of reach");
        return static_cast<uint32_t>(to - static_cast<int>(i) - 1);
      };
      if (code_[i].jf == -3) {
        // as given
      } else if (code_[i].jf == -2) {
        f.k = offset(code_[i].jt);
      } else if (BPF_CLASS(f.code) == BPF_JMP) {
        f.jt = static_cast<uint8_t>(offset(code_[i].jt));
        f.jf = static_cast<uint8_t>(offset(code_[i].jf));
      }
      out.push_back(f);
    }
    return out;
  }

 private:
  struct Insn {
    sock_filter f;
    int jt, jf;
  };
  std::vector<Insn> code_;
  std::vector<int> at_;
};

}  // namespace

std::vector<sock_filter> RetagPrefix(const FilterSpec& spec) {
  std::vector<sock_filter> none;
  if (spec.retag_rules.empty()) return none;
  Program p;
  constexpr int kNext = Program::kNext;
  const int pass = p.Label(), allow = p.Label(), prot_ok = p.Label();
  p.Op(kLd, offsetof(seccomp_data, arch));
  p.Jump(kJeq, AUDIT_ARCH_X86_64, kNext, pass);
  p.Op(kLd, offsetof(seccomp_data, nr));
  p.Jump(kJeq, SYS_pkey_mprotect, kNext, pass);
  // The token in r8 and r9 (arguments 4 and 5), 64 bits each: JEQ with the
  // placeholder's words, which the filter loader replaces.
  for (int w = 0; w < 2; ++w) {
    p.Op(kLd, ArgLo(4 + w));
    p.Jump(kJeq, static_cast<uint32_t>(spec.signal_token[w]), kNext, pass);
    p.Op(kLd, ArgHi(4 + w));
    p.Jump(kJeq, static_cast<uint32_t>(spec.signal_token[w] >> 32), kNext, pass);
  }
  // Protection: none, read, or read-write; never executable.
  p.Op(kLd, ArgHi(2));
  p.Jump(kJeq, 0, kNext, pass);
  p.Op(kLd, ArgLo(2));
  p.Jump(kJeq, PROT_READ | PROT_WRITE, prot_ok, kNext);
  p.Jump(kJeq, PROT_READ, prot_ok, kNext);
  p.Jump(kJeq, PROT_NONE, prot_ok, pass);
  p.Bind(prot_ok);
  p.Op(kLd, ArgHi(3));
  p.Jump(kJeq, 0, kNext, pass);
  // A length below 2^40: address + length cannot wrap.
  p.Op(kLd, ArgHi(1));
  p.Jump(kJgt, 0xff, pass, kNext);
  std::vector<sock_filter> end;
  EmitEnd(end);
  for (const sock_filter& f : end) p.Raw(f);
  for (const FilterSpec::RetagRule& r : spec.retag_rules) {
    const int next = p.Label(), in_range = p.Label(), start_ok = p.Label();
    p.Op(kLd, ArgLo(3));
    for (const int key : r.keys) p.Jump(kJeq, static_cast<uint32_t>(key), in_range, kNext);
    p.Always(next);
    p.Bind(in_range);
    const auto s_hi = static_cast<uint32_t>(r.range.start >> 32), s_lo = static_cast<uint32_t>(r.range.start);
    const auto e_hi = static_cast<uint32_t>(r.range.end >> 32), e_lo = static_cast<uint32_t>(r.range.end);
    // address >= start
    p.Op(kLdMem, 1);
    p.Jump(kJgt, s_hi, start_ok, kNext);
    p.Jump(kJeq, s_hi, kNext, next);
    p.Op(kLdMem, 0);
    p.Jump(kJge, s_lo, start_ok, next);
    p.Bind(start_ok);
    // end <= range end
    p.Op(kLdMem, 3);
    p.Jump(kJgt, e_hi, next, kNext);
    p.Jump(kJeq, e_hi, kNext, allow);
    p.Op(kLdMem, 2);
    p.Jump(kJgt, e_lo, next, allow);
    p.Bind(next);
  }
  p.Always(pass);
  p.Bind(allow);
  p.Op(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  p.Bind(pass);
  return p.Finish();
}

std::vector<sock_filter> ImmutableMappingsPrefix(const std::vector<FilterSpec::Range>& ranges,
                                                 uint32_t deny_action) {
  // Adjacent or overlapping ranges as one, in address order whatever the
  // caller's order (the merge extends only the last range's end).
  std::vector<FilterSpec::Range> sorted(ranges);
  std::sort(sorted.begin(), sorted.end(),
            [](const FilterSpec::Range& a, const FilterSpec::Range& b) { return a.start < b.start; });
  std::vector<FilterSpec::Range> merged;
  for (const FilterSpec::Range& r : sorted) {
    if (r.end <= r.start) continue;
    if (!merged.empty() && r.start <= merged.back().end) {
      merged.back().end = std::max(merged.back().end, r.end);
    } else {
      merged.push_back(r);
    }
  }
  std::vector<sock_filter> p;
  const auto op = [&p](uint16_t code, uint32_t k, uint8_t jt = 0, uint8_t jf = 0) {
    p.push_back(sock_filter{code, jt, jf, k});
  };
  // Memory slots: 0 address low, 1 address high, 2 end low, 3 end high.
  // 0: x86-64 only (libseccomp's program handles the rest); the system
  // call number; which calls. "Pass" is the jump at index kPass.
  // A jump's offset counts from the next instruction: index kCheck from
  // index i is kCheck - i - 1.
  constexpr uint8_t kPass = 9, kCheck = 10;
  op(kLd, offsetof(seccomp_data, arch));
  op(kJeq, AUDIT_ARCH_X86_64, 0, kPass - 2);
  op(kLd, offsetof(seccomp_data, nr));
  op(kJeq, SYS_munmap, kCheck - 4, 0);
  op(kJeq, SYS_mprotect, kCheck - 5, 0);
  op(kJeq, SYS_madvise, kCheck - 6, 0);
  op(kJeq, SYS_mmap, 0, kPass - 7);
  // mmap replaces what it overlaps only with MAP_FIXED.
  op(kLd, ArgLo(3));
  op(BPF_JMP | BPF_JSET | BPF_K, MAP_FIXED, kCheck - 9, 0);
  // kPass: on to the rest of the program (patched below).
  op(BPF_JMP | BPF_JA, 0);
  EmitEnd(p);
  // Per range [s, e): refuse when address < e and end > s.
  for (const FilterSpec::Range& r : merged) {
    const auto s_hi = static_cast<uint32_t>(r.start >> 32), s_lo = static_cast<uint32_t>(r.start);
    const auto e_hi = static_cast<uint32_t>(r.end >> 32), e_lo = static_cast<uint32_t>(r.end);
    op(kLdMem, 1);                     // +0 address high
    op(kJgt, e_hi, 9, 0);              // +1 above: next range (+11)
    op(kJeq, e_hi, 0, 2);              // +2 below: check the end (+5)
    op(kLdMem, 0);                     // +3
    op(kJge, e_lo, 6, 0);              // +4 address >= e: next range
    op(kLdMem, 3);                     // +5 end high
    op(kJgt, s_hi, 3, 0);              // +6 above s: refuse (+10)
    op(kJeq, s_hi, 0, 3);              // +7 below: next range
    op(kLdMem, 2);                     // +8
    op(kJgt, s_lo, 0, 1);              // +9 end > s: refuse, else next range
    op(BPF_RET | BPF_K, deny_action);  // +10
  }
  // The pass jump lands after the prefix.
  p[kPass].k = static_cast<uint32_t>(p.size() - kPass - 1);
  return p;
}

Expected<std::vector<sock_filter>> ExportBpf(const Filter& filter, const FilterSpec& spec) {
  auto bytes = Exported(filter, seccomp_export_bpf, "seccomp_export_bpf");
  if (!bytes.ok()) return Error{bytes.error()};
  if (bytes->empty() || bytes->size() % sizeof(sock_filter) != 0) {
    return Error{"seccomp_export_bpf wrote no whole program"};
  }
  const uint32_t deny = spec.violation == Violation::kKill ? SECCOMP_RET_TRAP : SECCOMP_RET_ERRNO | EPERM;
  std::vector<sock_filter> program = ImmutableMappingsPrefix(spec.immutable_ranges, deny);
  const std::vector<sock_filter> retag = RetagPrefix(spec);
  program.insert(program.end(), retag.begin(), retag.end());
  const size_t prefix = program.size();
  program.resize(prefix + bytes->size() / sizeof(sock_filter));
  memcpy(program.data() + prefix, bytes->data(), bytes->size());
  if (program.size() > BPF_MAXINSNS) {
    return Error{"the filter has " + std::to_string(program.size()) +
                 " instructions, more than the kernel's " + std::to_string(BPF_MAXINSNS) +
                 " (too many separate code mappings?)"};
  }
  return program;
}

}  // namespace cordon::lockdown
