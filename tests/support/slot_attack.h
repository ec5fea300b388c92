// Test support for attacks on virtual domains' key slots: calling a slot's
// gate directly with a call block of the attacker's, and the small pieces
// the attack tests share (memory shared with forked children, an outcome's
// description, an alternate signal stack, whether a thread is gone).
#ifndef CORDON_TESTS_SUPPORT_SLOT_ATTACK_H_
#define CORDON_TESTS_SUPPORT_SLOT_ATTACK_H_

#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>

#include "runtime/domains/virtual.h"
#include "runtime/gates/gate_config.h"
#include "tests/support/child.h"

namespace cordon::testing {

struct SlotAnswer {
  uint64_t r;
  uint32_t outcome;
  uint32_t where;
};

// Calls key slot `slot`'s gate with a call block of the attacker's: what
// untrusted code can always do (it knows the binary).
inline SlotAnswer SlotCall(uint32_t slot, uint32_t vindex, uint32_t id, uint64_t a0 = 0, uint64_t a1 = 0,
                           uint64_t a2 = 0, uint64_t a3 = 0, uint64_t a4 = 0) {
  namespace virt = cordon::domains::virt;
  virt::CallBlock b{vindex, id, a4, virt::kNotRun, 0};
  const int d = gates::Config().virt.slot_domain[slot];
  const uint64_t r = gates::GateFor(d)(a0, a1, a2, a3, reinterpret_cast<uint64_t>(&b), virt::kSlotEntryId);
  return {r, __atomic_load_n(&b.outcome, __ATOMIC_ACQUIRE), b.where};
}

// Each thread of a test child that may fault inside a domain gets an
// alternate signal stack of its own: the child's SIGSEGV reporter runs with
// SA_ONSTACK (child.h), and without one the kernel would push the frame on
// the trusted stack, which the handler's PKRU cannot write: the child would
// die unreported. Before the lockdown only (after it the runtime gives every
// thread one, and sigaltstack with a new stack is a violation).
inline void GiveThisThreadAnAltStack() {
  constexpr size_t kSize = 64 * 1024;
  void* p = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHILD_CHECK(p != MAP_FAILED);
  stack_t ss = {};
  ss.ss_sp = p;
  ss.ss_size = kSize;
  CHILD_CHECK(sigaltstack(&ss, nullptr) == 0);
}

inline std::string Describe(const ChildOutcome& o) {
  char buf[200];
  snprintf(buf, sizeof buf, "exited %d code %d, signal %d si_code %d si_pkey %u addr %#lx\n", o.exited,
           o.exit_code, o.signal, o.fault_code, o.fault_pkey, static_cast<unsigned long>(o.fault_addr));
  return buf + o.err;
}

// A T in memory shared with forked children.
template <typename T>
T* Shared() {
  void* p = mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) abort();
  return new (p) T{};
}

inline bool ThreadGone(pid_t tid) {
  return syscall(SYS_tgkill, getpid(), tid, 0) == -1 && errno == ESRCH;
}

}  // namespace cordon::testing

#endif
