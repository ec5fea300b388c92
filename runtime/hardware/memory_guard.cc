// Reservations shaped for the lockdown's memory rules (memory_guard.h).
#include "runtime/hardware/memory_guard.h"

#include <sys/mman.h>

namespace cordon::hw {

uint64_t ReserveGuardedBlocks() {
  // Three blocks' worth, so that two aligned ones fit; the rest is returned.
  void* wide = mmap(nullptr, 3 * kGuard, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (wide == MAP_FAILED) return 0;
  const auto wide_start = reinterpret_cast<uint64_t>(wide);
  const uint64_t blocks = (wide_start + kGuard - 1) & ~(kGuard - 1);
  if (blocks > wide_start) munmap(wide, blocks - wide_start);
  munmap(reinterpret_cast<void*>(blocks + 2 * kGuard), wide_start + kGuard - blocks);
  return blocks + kGuard;
}

void ReleaseGuardedBlocks(uint64_t upper) {
  munmap(reinterpret_cast<void*>(upper - kGuard), 2 * kGuard);
}

}  // namespace cordon::hw
