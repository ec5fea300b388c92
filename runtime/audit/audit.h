// The audit stream (docs/audit.md): one JSON line per security-relevant
// event, schema cordon.audit/1, written by trusted code with raw system
// calls to a descriptor chosen at cordon_init(). Its state (descriptor,
// sequence counter, process name) lives in the trusted domain's heap; the
// config page says where. Records are formatted on the writer's stack
// (the trusted stack, or the runtime's alternate signal stack) with no
// allocation and no stdio, so that signal handlers and the fatal path can
// write them. After the lockdown the filter lets only writes that carry
// the runtime's token reach the descriptor (docs/lockdown.md). With a key
// (copied into the trusted state at set-up), each record ends with its
// HMAC-SHA256 (hmac.h), so that a line written by any other route shows.
//
// It sits just above domains/: code, signals, enforce, lockdown and core
// call it, and what it needs of them (the platform line, the process's
// findings, entry names) comes in as arguments.
#ifndef CORDON_RUNTIME_AUDIT_AUDIT_H_
#define CORDON_RUNTIME_AUDIT_AUDIT_H_

#include <signal.h>

#include <cstdint>
#include <string>

#include "runtime/base/check.h"

namespace cordon::audit {

// Operations of the trusted domain's code builtin (domains::kBuiltinCode)
// from kFirstOp on; the code region's own are below it. Untrusted code can
// call every one of them through the gate: each checks its phase (nothing
// of set-up is recorded after the lockdown's record), and the ones that
// record a death end the process themselves.
enum Op : uint64_t {
  kFirstOp = 0x100,
  kOpSetUp = kFirstOp,  // a0: the descriptor, a1: the key or 0, a2: a KeyForm (a3: set by Call). Once, before
                        // lockdown
  kOpInit,              // a0: platform line, a1: inspect policy. Once, first record
  kOpFinding,           // a0: address, a1: kind | verdict << 8 | action << 16, a2: object, a3: symbol
  kOpDomain,            // a0: domain, a1: its name. Once per domain, before lockdown
  kOpLockdown,          // a0: violation mode, a1: status
  kOpGateCalls,         // a0: domain, a1: entry id, a2: entry name, a3: count (domains other than 1)
  kOpFault,             // a0: siginfo, a1: ucontext, a2: 1 a handler runs, 0 the process dies
  kOpDieFatal,          // a0: message, a1: its length; never returns
  kOpDieSyscall,        // a0: siginfo, a1: ucontext of the filter's SIGSYS; never returns
  kLastOp = kOpDieSyscall,
};

// How kOpSetUp's key comes (in untrusted memory): none, the options' 32
// bytes, or the environment's 64 hex digits (and a NUL).
enum KeyForm : uint64_t { kNoKey = 0, kKeyBytes = 1, kKeyHex = 2 };

// Whether the process has a stream (readable from anywhere: the config page).
bool Enabled();
// The stream's descriptor, or -1.
int Descriptor();

// At cordon_init(), before anything is created: empty when fd can carry the
// stream (open, and open for writing), otherwise why not.
std::string CheckDescriptor(int fd);
// Empty when hex is a key in CORDON_AUDIT_KEY's form (64 hex digits, either
// case), otherwise what is wrong with it (never the digits themselves).
std::string CheckHexKey(const char* hex);

// Runs an operation in the trusted domain: through its gate from untrusted
// code, directly from inside it; from inside another domain it does
// nothing and returns CORDON_E_WRONG_DOMAIN (encoded).
uint64_t Call(uint64_t op, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0);

// One inspection finding (set-up only): kind, verdict and action as in
// cordon_inspection_entry; the strings in untrusted memory.
inline uint64_t RecordFinding(uint64_t address, int kind, int verdict, int action, const char* object,
                              const char* symbol) {
  return Call(
      kOpFinding, address,
      static_cast<uint64_t>(kind) | static_cast<uint64_t>(verdict) << 8 | static_cast<uint64_t>(action) << 16,
      reinterpret_cast<uint64_t>(object), reinterpret_cast<uint64_t>(symbol));
}

// The builtin's side, inside the trusted domain.
uint64_t RunInside(uint64_t op, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3);

// The kill mode's message for a system call the filter refused: one
// source for the lockdown's handler and for kOpDieSyscall. name: the
// call's name, or nullptr.
void ViolationMessage(internal::FatalMessage& m, const siginfo_t& si, const char* name);

// Inside the trusted domain (the code region's operations).
void RecordCodePublish(uint64_t block, uint64_t length, const char* sha256_hex, int status);
void RecordCodeRelease(uint64_t block, int status);

}  // namespace cordon::audit

#endif
