// What the lockdown refuses to carry over from set-up: open descriptors that
// reach around protection keys (they were opened before any rule existed,
// and Landlock and seccomp only check new opens and new calls), and child
// processes that hold or can regain capabilities (they are not confined, and
// as root they could ptrace the locked-down process). docs/lockdown.md,
// "Descriptors" and "Child processes", gives the lists and the reasons.
#ifndef CORDON_RUNTIME_LOCKDOWN_AUDIT_H_
#define CORDON_RUNTIME_LOCKDOWN_AUDIT_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace cordon::lockdown {

// Why the descriptor with this link target (readlink of /proc/self/fd/N),
// file type and device, open flags and fdinfo must not outlive the lockdown;
// empty when it may. self_pid is this process's pid; is_own_task says
// whether a pid is one of its threads. Pure, for the host tests.
struct DescriptorFacts {
  std::string target;   // "anon_inode:[perf_event]", "/proc/123/mem", "socket:[42]", ...
  mode_t mode = 0;      // st_mode
  dev_t rdev = 0;       // st_rdev, for devices
  long fs_magic = 0;    // fstatfs f_type
  int flags = 0;        // open flags (fdinfo "flags:", octal)
  long pidfd_pid = -1;  // fdinfo "Pid:" of a pidfd, else -1
};
std::string WhyDescriptorIsUnsafe(const DescriptorFacts& fd, pid_t self_pid, bool (*is_own_task)(long pid));

// Audits every open descriptor of this process. Empty when all may stay;
// otherwise a message naming the first one refused, what it is, and why.
// audit_fd (or -1) is the audit stream's: no other descriptor may reach
// its file.
std::string AuditDescriptors(int audit_fd = -1);

// Audits this process's descendants: empty when none holds or can regain a
// capability; otherwise a message naming the first one.
std::string AuditChildren();

// Audits what set-up left that would raise one of these signals later,
// outside any faulting instruction: a parent-death signal, a POSIX timer,
// a descriptor's F_SETSIG signal (SIGIO, leases, dnotify), a message
// queue's notification, a child's exit signal. Empty when there is none,
// or when signals is empty; otherwise a message naming the first one.
// (Kernels before 6.12, docs/signals.md.)
std::string AuditSignalSources(const std::vector<int>& signals);

}  // namespace cordon::lockdown

#endif
