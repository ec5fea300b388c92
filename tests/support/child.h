// Test support: run a function in a forked child and report exactly how it
// ended (exit status or signal, and for SIGSEGV the si_code, si_pkey and
// si_addr seen by the child's handler) together with its stderr.
#ifndef CORDON_TESTS_SUPPORT_CHILD_H_
#define CORDON_TESTS_SUPPORT_CHILD_H_

#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>

// Checks inside a child: a failure says where and exits 1.
#define CHILD_CHECK(cond)                                                                           \
  do {                                                                                              \
    if (!(cond)) {                                                                                  \
      fprintf(stderr, "child check failed at line %d: %s (errno %d: %s)\n", __LINE__, #cond, errno, \
              strerror(errno));                                                                     \
      _exit(1);                                                                                     \
    }                                                                                               \
  } while (0)

// The call failed with exactly this errno.
#define CHILD_DENIED(call, err)              \
  do {                                       \
    errno = 0;                               \
    const long r_ = static_cast<long>(call); \
    CHILD_CHECK(r_ == -1 && errno == (err)); \
  } while (0)

namespace cordon::testing {

struct ChildOutcome {
  bool exited = false;
  int exit_code = -1;
  int signal = 0;            // the signal the child died of, or that the handler caught
  int fault_code = 0;        // si_code of a caught SIGSEGV
  uint32_t fault_pkey = 0;   // si_pkey, for SEGV_PKUERR
  uintptr_t fault_addr = 0;  // si_addr
  uint64_t on_fault = 0;     // what the on_fault callback returned in the handler
  std::string err;           // everything the child wrote to stderr
  std::string audit;         // the child's audit stream (audit_capture.h), every process's records
};

// Runs fn in a child. A SIGSEGV in the child is caught by a handler that
// records the siginfo, runs on_fault (if given) and records its result, and
// exits; the outcome then has signal == SIGSEGV. on_fault runs in a signal
// handler, on an alternate stack, with the kernel's default PKRU.
ChildOutcome RunInChild(const std::function<void()>& fn, uint64_t (*on_fault)() = nullptr);

// In the child: keep reporting SIGSEGV, but on the current stack. A process
// locked down with cordon_lockdown() may not have SA_ONSTACK handlers (they
// would get trusted registers), so tests call this before locking down.
void ReportFaultsOnTheCurrentStack();

// clone (or vfork) by the raw system call; a child, if there is one,
// exits at once without touching memory (it may share this stack).
// Returns the raw result: the child's pid, or -errno.
long RawCloneAndExit(long nr, unsigned long flags);

struct FaultRecord;
class AuditCapture;

// The machinery RunInChild and the judge (judge.h) share: a forked child
// whose SIGSEGV is caught and recorded, and its reaping.
class ReportingChild {
 public:
  explicit ReportingChild(uint64_t (*on_fault)() = nullptr);
  ~ReportingChild();
  ReportingChild(const ReportingChild&) = delete;
  ReportingChild& operator=(const ReportingChild&) = delete;

  // Forks. The child runs prepare() (its file descriptors), installs the
  // SIGSEGV reporter, runs fn(), flushes stdio and exits 0. Returns the
  // child's pid in the parent.
  pid_t Fork(const std::function<void()>& prepare, const std::function<void()>& fn);
  // Waits for the child and fills in how it ended (not err).
  void Reap(ChildOutcome* out);

 private:
  FaultRecord* shared_;
  uint64_t (*on_fault_)();
  pid_t pid_ = -1;
  AuditCapture* audit_;
};

// SEGV_PKUERR, spelled out for kernels whose headers lack it.
inline constexpr int kSegvPkuErr = 4;

}  // namespace cordon::testing

#endif
