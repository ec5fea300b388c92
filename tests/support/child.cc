// RunInChild and ReportingChild (see child.h).
#include "tests/support/child.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "tests/support/audit_capture.h"

namespace cordon::testing {

struct FaultRecord {
  int caught;
  int code;
  uint32_t pkey;
  uintptr_t addr;
  uint64_t on_fault;
};

namespace {

FaultRecord* g_record = nullptr;
uint64_t (*g_on_fault)() = nullptr;

// Runs with the kernel's default PKRU, on the signal stack; touches only
// key-0 memory shared with the parent.
void OnSegv(int, siginfo_t* info, void*) {
  g_record->caught = SIGSEGV;
  g_record->code = info->si_code;
  g_record->pkey = info->si_pkey;
  g_record->addr = reinterpret_cast<uintptr_t>(info->si_addr);
  if (g_on_fault != nullptr) g_record->on_fault = g_on_fault();
  _exit(99);
}

}  // namespace

void ReportFaultsOnTheCurrentStack() {
  struct sigaction sa = {};
  sa.sa_sigaction = OnSegv;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, nullptr);
}

ReportingChild::ReportingChild(uint64_t (*on_fault)())
    : shared_(static_cast<FaultRecord*>(
          mmap(nullptr, sizeof(FaultRecord), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0))),
      on_fault_(on_fault),
      audit_(new AuditCapture) {
  if (shared_ == MAP_FAILED) abort();
  *shared_ = FaultRecord{};
}

ReportingChild::~ReportingChild() {
  munmap(shared_, sizeof(FaultRecord));
  delete audit_;
}

pid_t ReportingChild::Fork(const std::function<void()>& prepare, const std::function<void()>& fn) {
  fflush(nullptr);
  pid_ = fork();
  if (pid_ < 0) abort();
  if (pid_ != 0) {
    audit_->InParent();
    return pid_;
  }
  audit_->InChild();
  prepare();
  g_record = shared_;
  g_on_fault = on_fault_;
  // An alternate signal stack in ordinary memory: a fault inside trusted
  // code happens on the trusted stack, where a handler (running with the
  // kernel's default PKRU) could not push a frame, and the child would die
  // before reporting the siginfo.
  static char altstack[64 * 1024];
  stack_t ss = {};
  ss.ss_sp = altstack;
  ss.ss_size = sizeof altstack;
  sigaltstack(&ss, nullptr);
  struct sigaction sa = {};
  sa.sa_sigaction = OnSegv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigaction(SIGSEGV, &sa, nullptr);
  fn();
  fflush(nullptr);
  _exit(0);
}

void ReportingChild::Reap(ChildOutcome* out) {
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  out->audit = audit_->Finish();
  if (WIFEXITED(status)) {
    out->exited = true;
    out->exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    out->signal = WTERMSIG(status);
  }
  if (shared_->caught != 0) {
    out->exited = false;
    out->signal = shared_->caught;
    out->fault_code = shared_->code;
    out->fault_pkey = shared_->pkey;
    out->fault_addr = shared_->addr;
    out->on_fault = shared_->on_fault;
  }
  ExpectAuditMatchesOutcome(*out, pid_);
}

ChildOutcome RunInChild(const std::function<void()>& fn, uint64_t (*on_fault)()) {
  int pipefd[2];
  if (pipe(pipefd) != 0) abort();
  ReportingChild child(on_fault);
  child.Fork(
      [&] {
        close(pipefd[0]);
        dup2(pipefd[1], 2);
        close(pipefd[1]);
      },
      fn);
  close(pipefd[1]);
  ChildOutcome out;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) out.err.append(buf, static_cast<size_t>(n));
  }
  close(pipefd[0]);
  child.Reap(&out);
  return out;
}

long RawCloneAndExit(long nr, unsigned long flags) {
  long ret;
  register long r10 asm("r10") = 0;
  register long r8 asm("r8") = 0;
  asm volatile(
      "syscall\n\t"
      "test %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      "mov $60, %%eax\n\t"
      "xor %%edi, %%edi\n\t"
      "syscall\n"
      "1:"
      : "=a"(ret)
      : "a"(nr), "D"(flags), "S"(0), "d"(0), "r"(r10), "r"(r8)
      : "rcx", "r11", "memory");
  return ret;
}

}  // namespace cordon::testing
