// Test support for the signal policy of kernels that write a signal frame
// with the interrupted code's PKRU at its stack pointer (before 6.12,
// docs/signals.md): there, after cordon_lockdown(), only SIGSEGV, SIGBUS,
// SIGILL and SIGFPE may have handlers, and no one may send them or SIGSYS.
// Tests whose property needs another handler assert these refusals there
// instead, and keep their property on 6.12 and later.
#ifndef CORDON_TESTS_SUPPORT_SIGNAL_POLICY_H_
#define CORDON_TESTS_SUPPORT_SIGNAL_POLICY_H_

#include <string>

namespace cordon::testing {

// Child side, after cordon_init(): the runtime's probe found a kernel that
// writes frames with the interrupted PKRU (cordon::gates::Config()
// .signal_altstack == 0), where only the fault signals keep handlers.
bool OnlyFaultSignalsHaveHandlers();

// Test side (the test process, never locked down): the kernel is older
// than 6.12, by uname. The child's runtime decides by its probe; the two
// agree (SignalFramesAnywhere.TheProbeMatchesTheKernel).
bool KernelBefore612();

// Child side, where OnlyFaultSignalsHaveHandlers(), with a handler for a
// signal other than the fault signals installed: cordon_lockdown_ex()
// refuses with CORDON_E_LOCKDOWN_FAILED and leaves the process as it was
// (not locked down). Its reason is on stderr (LockdownRefusalFor). Exits 1
// otherwise.
void ExpectLockdownRefused(int violation);

// Test side: how the lockdown's refusal for a handler of signal sig, named
// name ("SIGUSR1", or "real-time"), begins on stderr: "cordon:
// cordon_lockdown() refused: signal 10 (SIGUSR1) has a handler, and on this
// kernel".
std::string LockdownRefusalFor(int sig, const char* name);

}  // namespace cordon::testing

#endif
