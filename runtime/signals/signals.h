// Signals after cordon_lockdown(): the runtime owns every handler, so that
// a signal that interrupts trusted code never shows trusted registers or
// the trusted stack to a handler, and no sigreturn frame can load a trusted
// PKRU. The entry and return paths are in gates/gate.S; the decisions that
// need C++ are here. docs/signals.md describes the design.
#ifndef CORDON_RUNTIME_SIGNALS_SIGNALS_H_
#define CORDON_RUNTIME_SIGNALS_SIGNALS_H_

#include <signal.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cordon::signals {

// Pages of signal-return buffer in each record slot (gate_abi.h): room for
// a frame's machine context and largest XSAVE area, and the stack the copy
// runs on.
size_t BufferPages();

// At cordon_init(), before any domain exists: a fresh random token for the
// lockdown's filter, and the XSAVE layout of a real signal frame (delivered
// to this thread once). Returns a cordon_status.
int Prepare();
// The token, until the lockdown has loaded the filter; every domain created
// before then keeps a copy in its state (DSTATE_SIGNAL_TOKEN).
const uint64_t* PendingToken();
void WipePendingToken();

// Lockdown: whether every installed handler can be taken over (no
// SA_ONSTACK, no SA_RESETHAND). Empty when so, else why not.
std::string CheckHandlersForLockdown();
// Routes every installed handler through the runtime. Returns a status.
int TakeOverHandlers();
// The signals that may keep a handler after lockdown on a kernel that
// writes frames with the interrupted code's PKRU (before 6.12), and SIGSYS:
// the filter lets nobody send them, so only a faulting instruction raises
// them (docs/signals.md). Empty on kernels that write frames anywhere.
std::vector<int> SignalsOnlyTheKernelMaySend();

// cordon_sigaction(), in untrusted code.
int SetAction(int sig, const struct sigaction* act, struct sigaction* old);

// A builtin, run inside domain d with that domain's token.
// mode: 0 SIG_DFL, 1 SIG_IGN, 2 the runtime's entry; flags: SA_RESTART,
// SA_NOCLDSTOP, SA_NOCLDWAIT.
uint64_t InstallActionInside(int d, uint64_t sig, uint64_t mode, uint64_t flags);

}  // namespace cordon::signals

#endif
