// The lockdown's seccomp filter (libseccomp): which system calls untrusted
// code loses after cordon_lockdown(), and which memory they may not touch.
// Built from a FilterSpec so that a host test can build it with fixed
// addresses and compare it with a golden dump (docs/lockdown.md explains
// every rule).
#ifndef CORDON_RUNTIME_LOCKDOWN_SECCOMP_FILTER_H_
#define CORDON_RUNTIME_LOCKDOWN_SECCOMP_FILTER_H_

#include <linux/filter.h>
#include <seccomp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/base/expected.h"
#include "runtime/hardware/memory_guard.h"

namespace cordon::lockdown {

// What the filter does to a forbidden call.
enum class Violation {
  kKill,   // SIGSYS to the runtime's handler: a message, then exit 70
  kErrno,  // the call fails with EPERM (tests)
};

struct FilterSpec {
  // Half-open ranges no memory-management call may touch: the domains'
  // memory and the gate config page.
  struct Range {
    uint64_t start, end;
  };
  std::vector<Range> protected_ranges;
  // The code region's pages (runtime/code/): where pkey_mprotect may act,
  // with the token. Empty: no code region.
  Range code_pages{0, 0};
  // The other places, each with the keys it may name there: the virtual
  // domains' regions (the parking key and the key slots'), and each
  // physical domain's heap (its own key), for evictions, loads and
  // cordon_domain_set_rights. Only with the token, only protections none,
  // read and read-write, and only wholly inside the range: a BPF prefix
  // (RetagPrefix) allows exactly these calls, and every other pkey_mprotect
  // goes on to the code region's rules.
  struct RetagRule {
    Range range;
    std::vector<int> keys;
  };
  std::vector<RetagRule> retag_rules;
  Violation violation = Violation::kKill;
  // rt_sigreturn, rt_sigaction (with a new action) and pkey_mprotect need
  // these two words in r8 and r9 (rt_sigaction the first one). The lockdown
  // builds the filter with placeholders and puts the real token in inside
  // trusted memory (lockdown::LoadFilterInside).
  uint64_t signal_token[2] = {};
  // Kernels that write signal frames wherever the stack pointer is
  // (docs/signals.md): the runtime makes every thread, so that each has an
  // alternate signal stack before it runs. clone with CLONE_VM (and not
  // CLONE_VFORK) traps to the runtime unless r9 holds the token's first
  // word; clone3 fails with ENOSYS (glibc then uses clone); and
  // rt_sigprocmask with SIG_BLOCK or SIG_SETMASK traps unless its set is
  // block_all (the runtime's own, on the config page), so that the runtime
  // can keep SIGSYS unblocked (a trap with SIGSYS blocked is a kill).
  bool threads_by_runtime = false;
  uint64_t block_all = 0;
  // Pages outside the runtime's regions that the program tagged with a
  // domain's key itself. Other memory shares their kGuard blocks (thread
  // stacks, libraries), so they get exact rules, and only for the kernel's
  // deferred writes (set_tid_address, clone's tid words): a word on such a
  // page, or straddling into it from the 8 bytes before, is refused.
  std::vector<uint64_t> tagged_pages;
  // Kernels that write a signal frame with the interrupted code's PKRU
  // (before 6.12, docs/signals.md): the signals that may keep a handler
  // there, which nobody may send (kill and its relatives, a parent-death
  // signal, F_SETSIG, TIOCSIG, a clone exit signal), and no timer or
  // message-queue notification may name a signal at all (seccomp cannot
  // read the sigevent). Empty elsewhere.
  std::vector<int> unsendable_signals;
  // Mappings no memory call may touch once the filter is in: every
  // executable mapping and the read-only mappings of the same files (their
  // constants and relocated, read-only function pointers), in address
  // order. Code that runs with a domain's rights lives there, and a gate
  // is only as sound as the bytes that follow its WRPKRU: unmapped,
  // made non-executable, replaced or zeroed (MADV_DONTNEED on a private
  // copy), they would fault or slide into other code with the domain's
  // rights. munmap, mprotect, madvise and mmap with MAP_FIXED over any of
  // them are refused, by exact overlap: a BPF prefix of the program
  // (ExportBpf) adds the length to the address, which libseccomp's rules
  // cannot.
  std::vector<Range> immutable_ranges;
  // The audit stream's descriptor (runtime/audit/), or -1: only write
  // with the token's first word in r8 may name it; every other call that
  // takes it as a descriptor, or closes or replaces it, is refused.
  int audit_fd = -1;
};

// The prefix that allows spec.retag_rules' pkey_mprotect calls (with the
// token words of spec.signal_token), and sends everything else on to what
// follows it.
std::vector<sock_filter> RetagPrefix(const FilterSpec& spec);

// The kGuard-aligned blocks a range's rules cover, lowest first.
std::vector<uint64_t> BlocksFor(const FilterSpec::Range& r);

struct FilterDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Filter = std::unique_ptr<void, FilterDeleter>;

// Builds the filter (not loaded). The error names the rule that failed.
Expected<Filter> BuildFilter(const FilterSpec& spec);

// libseccomp's pseudo-code of a filter, for the golden test and for
// CORDON_DUMP_FILTER.
Expected<std::string> FilterText(const Filter& filter);

// The filter as a BPF program, for loading from trusted memory: the
// immutable-mappings prefix for spec, then libseccomp's program.
Expected<std::vector<sock_filter>> ExportBpf(const Filter& filter, const FilterSpec& spec);

// The prefix alone: refuses (with the deny action) a memory call that
// overlaps one of the ranges, and passes everything else on to the
// instruction after it.
std::vector<sock_filter> ImmutableMappingsPrefix(const std::vector<FilterSpec::Range>& ranges,
                                                 uint32_t deny_action);

}  // namespace cordon::lockdown

#endif
