// Test support: every child that RunInChild() or the attack judge forks
// writes an audit stream (CORDON_AUDIT_FD, docs/audit.md) that the parent
// reads, and the records of the child's process are held against how it
// ended: a violation that stopped it has its record (one per violating
// thread: threads that violate at the same moment each have theirs), a
// fault its handler caught exactly one pkey_fault with that address and key, and
// a child that ended normally no death record. So every existing attack
// test also checks that its attack left exactly the matching record.
#ifndef CORDON_TESTS_SUPPORT_AUDIT_CAPTURE_H_
#define CORDON_TESTS_SUPPORT_AUDIT_CAPTURE_H_

#include <sys/types.h>

#include <atomic>
#include <string>
#include <thread>

#include "tests/support/child.h"

namespace cordon::testing {

// The descriptor the child's stream is on (high, so that no test's own
// descriptors meet it).
inline constexpr int kChildAuditFd = 987;

class AuditCapture {
 public:
  AuditCapture();
  ~AuditCapture();
  AuditCapture(const AuditCapture&) = delete;
  AuditCapture& operator=(const AuditCapture&) = delete;

  // In the child, before anything else: the stream's end on kChildAuditFd
  // and CORDON_AUDIT_FD naming it.
  void InChild();
  // In the parent after the fork: reads the stream while the child runs.
  void InParent();
  // Once the child is reaped: everything its processes wrote (a grandchild
  // still holding the stream open is not waited for long).
  std::string Finish();

 private:
  int read_fd_ = -1, write_fd_ = -1;
  std::thread reader_;
  std::atomic<bool> reaped_{false};
  std::string text_;
};

// The checks above, for the records of process pid (gtest failures).
void ExpectAuditMatchesOutcome(const ChildOutcome& outcome, pid_t pid);

// For the next child only: its death or caught fault may have no record,
// for the reason given, which must be one that docs/audit.md ("What is
// recorded, and from where") lists as unrecorded. A record, if there is
// one, must still match; one thread's death recorded twice is still a
// failure.
void AuditRecordMayBeMissing(const char* documented_reason);

// The value of argument `name` of one record line, as written (a string's
// text without its quotes), or "" when the record has no such argument.
std::string AuditArg(const std::string& line, const std::string& name);

}  // namespace cordon::testing

#endif
