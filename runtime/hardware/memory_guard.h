// The size of the guard that the lockdown's memory rules rely on, shared by
// the domains and the code region (which reserve it) and the seccomp filter
// (which assumes it). Here, below all three, because it is a shape of
// address space, not a rule.
//
// BPF cannot add, so "does [addr, addr+len) touch X" is decided with two
// rules: len below kGuard, and addr outside every kGuard-aligned block that
// X or the kGuard bytes below it meet. Each domain therefore reserves two
// aligned blocks: the lower one stays an empty guard, the upper one holds
// its memory (at most kGuard bytes), so those blocks hold nothing else.
#ifndef CORDON_RUNTIME_HARDWARE_MEMORY_GUARD_H_
#define CORDON_RUNTIME_HARDWARE_MEMORY_GUARD_H_

#include <cstdint>

namespace cordon::hw {

constexpr uint64_t kGuard = uint64_t{1} << 34;  // 16 GiB

// Reserves two kGuard-aligned blocks of address space (PROT_NONE, no
// memory) and returns the start of the upper one, which may hold protected
// memory; 0 when the address space is exhausted. Release both with
// ReleaseGuardedBlocks(upper).
uint64_t ReserveGuardedBlocks();
void ReleaseGuardedBlocks(uint64_t upper);

}  // namespace cordon::hw

#endif
