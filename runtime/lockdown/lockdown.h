// cordon_lockdown(): the end of set-up. Checks that the process can be
// locked down (one thread, no descriptor that reaches around protection
// keys, no child that holds capabilities, ...), then, in order: inspects
// executable memory again, copies file-backed and shared code, scans the
// copies and puts them in place, unregisters rseq, installs the violation
// handler, restricts files with Landlock, drops every capability, makes the
// process non-dumpable with RLIMIT_CORE 1, routes every signal handler
// through the runtime and loads the seccomp filter (docs/lockdown.md).
#ifndef CORDON_RUNTIME_LOCKDOWN_LOCKDOWN_H_
#define CORDON_RUNTIME_LOCKDOWN_LOCKDOWN_H_

#include <signal.h>

#include <cstddef>
#include <cstdint>
#include <functional>

#include "runtime/lockdown/seccomp_filter.h"

namespace cordon::lockdown {

struct LockdownPlan {
  FilterSpec filter;            // what the seccomp filter protects, and how
  uint32_t inspect_policy = 0;  // CORDON_INSPECT_*
  // Loads the filter's BPF program from trusted memory, with the token in
  // place of the placeholder; returns a cordon_status.
  std::function<int(const sock_filter*, size_t)> load_filter;
  // Makes the domains' entry tables read-only (domains::SealEntryTables);
  // false with *why when it cannot.
  std::function<bool(std::string*)> seal_entry_tables;
};

// A refusal's Error carries its cordon_status and says why (core/api.cc
// prints it). The checks come first and change nothing; a failure after
// them (which needs a kernel error) leaves the process partly locked, says
// so, and sets *changed.
Expected<void> Lockdown(const LockdownPlan& plan, bool* changed);

// The kill mode's SIGSYS handler: it names the refused call and stops the
// process. Its address goes on the read-only config page.
using SignalHandlerFn = void (*)(int, siginfo_t*, void*);
SignalHandlerFn ViolationHandlerFn();

// Tests only: called between the re-inspection and the privatization of
// code, where a file behind code could change (tests/pku/lockdown_root_test.cc).
void SetBeforePrivatizeHookForTests(void (*hook)());

}  // namespace cordon::lockdown

#endif
