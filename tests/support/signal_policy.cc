// Signal policy helpers (see signal_policy.h).
#include "tests/support/signal_policy.h"

#include <sys/utsname.h>

#include <cstdio>
#include <cstdlib>

#include "cordon/cordon.h"
#include "runtime/gates/gate_config.h"
#include "tests/support/child.h"

namespace cordon::testing {

bool OnlyFaultSignalsHaveHandlers() {
  return cordon::gates::Config().signal_altstack == 0;
}

bool KernelBefore612() {
  utsname u{};
  int major = 0, minor = 0;
  if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2) {
    fprintf(stderr, "cannot read the kernel's version\n");
    abort();
  }
  return major < 6 || (major == 6 && minor < 12);
}

void ExpectLockdownRefused(int violation) {
  CHILD_CHECK(OnlyFaultSignalsHaveHandlers());
  ReportFaultsOnTheCurrentStack();
  cordon_lockdown_options o;
  cordon_lockdown_options_init(&o);
  o.violation = violation;
  CHILD_CHECK(cordon_lockdown_ex(&o) == CORDON_E_LOCKDOWN_FAILED);
  CHILD_CHECK(cordon_is_locked_down() == 0);  // a refusal changes nothing
}

std::string LockdownRefusalFor(int sig, const char* name) {
  return "cordon: cordon_lockdown() refused: signal " + std::to_string(sig) + " (" + name +
         ") has a handler, and on this kernel";
}

}  // namespace cordon::testing
