// cordon_lockdown(): the end of set-up. Checks that the process can be
// locked down, then, in order: inspects executable memory again, replaces
// file-backed and shared code with private copies, unregisters rseq, makes
// the process non-dumpable, installs the violation handler, restricts the
// memory files with Landlock and loads the seccomp filter
// (docs/lockdown.md).
#ifndef CORDON_RUNTIME_POLICY_LOCKDOWN_H_
#define CORDON_RUNTIME_POLICY_LOCKDOWN_H_

#include <cstdint>

#include "runtime/policy/seccomp_filter.h"

namespace cordon::policy {

struct LockdownPlan {
  FilterSpec filter;            // what the seccomp filter protects, and how
  uint32_t inspect_policy = 0;  // CORDON_INSPECT_*
};

// Returns a cordon_status; every refusal also says why on stderr. The checks
// come first and change nothing; a failure after them (which needs a kernel
// error) leaves the process partly locked, and the status says so.
int Lockdown(const LockdownPlan& plan);

}  // namespace cordon::policy

#endif
