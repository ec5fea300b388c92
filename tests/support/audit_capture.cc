// AuditCapture and the records-against-outcome check (audit_capture.h).
#include "tests/support/audit_capture.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <vector>

namespace cordon::testing {

AuditCapture::AuditCapture() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) abort();
  read_fd_ = p[0];
  write_fd_ = p[1];
}

AuditCapture::~AuditCapture() {
  if (reader_.joinable()) {
    reaped_ = true;
    reader_.join();
  }
  if (read_fd_ >= 0) close(read_fd_);
  if (write_fd_ >= 0) close(write_fd_);
}

void AuditCapture::InChild() {
  close(read_fd_);
  read_fd_ = -1;
  // dup2 clears close-on-exec: a program the child runs writes its own
  // records (under its own cordon_init) to the same stream.
  if (dup2(write_fd_, kChildAuditFd) != kChildAuditFd) abort();
  close(write_fd_);
  write_fd_ = -1;
  setenv("CORDON_AUDIT_FD", std::to_string(kChildAuditFd).c_str(), 1);
}

void AuditCapture::InParent() {
  close(write_fd_);
  write_fd_ = -1;
  reader_ = std::thread([this] {
    using Clock = std::chrono::steady_clock;
    Clock::time_point reaped_at{};
    char buf[65536];
    for (;;) {
      pollfd p = {read_fd_, POLLIN, 0};
      const int n = poll(&p, 1, 50);
      if (n > 0) {
        const ssize_t r = read(read_fd_, buf, sizeof buf);
        if (r > 0) {
          text_.append(buf, static_cast<size_t>(r));
          continue;
        }
        if (r == 0 || errno != EINTR) return;  // every writer gone
      }
      if (reaped_) {
        if (reaped_at == Clock::time_point{}) reaped_at = Clock::now();
        if (Clock::now() - reaped_at > std::chrono::seconds(2)) return;
      }
    }
  });
}

std::string AuditCapture::Finish() {
  reaped_ = true;
  if (reader_.joinable()) reader_.join();
  return text_;
}

std::string AuditArg(const std::string& line, const std::string& name) {
  const std::string tag = "{\"name\":\"" + name + "\",\"type\":\"";
  size_t at = line.find(tag);
  if (at == std::string::npos) return "";
  at = line.find("\"value\":", at);
  if (at == std::string::npos) return "";
  at += 8;
  if (at < line.size() && line[at] == '"') {
    const size_t end = line.find('"', at + 1);
    return end == std::string::npos ? "" : line.substr(at + 1, end - at - 1);
  }
  const size_t end = line.find_first_of(",}", at);
  return line.substr(at, end - at);
}

namespace {

std::string Field(const std::string& line, const std::string& key) {
  const std::string tag = "\"" + key + "\":";
  size_t at = line.find(tag);
  if (at == std::string::npos) return "";
  at += tag.size();
  if (at < line.size() && line[at] == '"') {
    const size_t end = line.find('"', at + 1);
    return line.substr(at + 1, end - at - 1);
  }
  return line.substr(at, line.find_first_of(",}", at) - at);
}

const char* g_may_be_missing = nullptr;

std::string Hex(uintptr_t v) {
  char b[24];
  snprintf(b, sizeof b, "0x%lx", static_cast<unsigned long>(v));
  return b;
}

}  // namespace

void AuditRecordMayBeMissing(const char* documented_reason) {
  g_may_be_missing = documented_reason;
}

void ExpectAuditMatchesOutcome(const ChildOutcome& o, pid_t pid) {
  const bool may_be_missing = g_may_be_missing != nullptr;
  g_may_be_missing = nullptr;
  std::vector<std::string> records;
  const std::string self = std::to_string(pid);
  for (size_t start = 0; start < o.audit.size();) {
    size_t end = o.audit.find('\n', start);
    if (end == std::string::npos) end = o.audit.size();
    const std::string line = o.audit.substr(start, end - start);
    if (Field(line, "processId") == self) records.push_back(line);
    start = end + 1;
  }
  if (records.empty()) return;  // no cordon_init in this process: no stream
  std::vector<std::string> deaths, faults;
  for (const std::string& r : records) {
    const std::string event = Field(r, "eventName");
    const bool killed = AuditArg(r, "action") == "killed";
    if (event == "fatal" || (event == "syscall_refused" && killed) || (event == "pkey_fault" && killed))
      deaths.push_back(r);
    if (event == "pkey_fault") faults.push_back(r);
    if (event == "syscall_refused" && !killed) ADD_FAILURE() << "a refused call that did not kill: " << r;
  }
  const std::string all = "the child's records:\n" + o.audit + "\nits stderr:\n" + o.err;
  // Threads that made violations at the same moment each have theirs
  // recorded; one thread dies once.
  std::vector<std::string> dying_threads;
  for (const std::string& d : deaths) dying_threads.push_back(Field(d, "threadId"));
  std::sort(dying_threads.begin(), dying_threads.end());
  EXPECT_EQ(std::adjacent_find(dying_threads.begin(), dying_threads.end()), dying_threads.end())
      << "one thread's death recorded twice; " << all;
  if (o.exited && o.exit_code == 70) {
    if (!may_be_missing)
      EXPECT_GE(deaths.size(), 1u) << "the runtime stopped the child (exit 70) with no record of why; "
                                   << all;
  } else if (o.exited) {
    EXPECT_EQ(deaths.size(), 0u) << "a death recorded, but the child exited " << o.exit_code << "; " << all;
  }
  if (o.signal == SIGSEGV && o.fault_code == kSegvPkuErr && !o.exited) {
    // The child's reporter is the program's handler: one pkey_fault, with
    // the address and key its handler saw.
    if (!may_be_missing || !faults.empty()) EXPECT_EQ(faults.size(), 1u) << all;
    if (faults.size() == 1) {
      EXPECT_EQ(AuditArg(faults[0], "action"), "handler") << faults[0];
      EXPECT_EQ(AuditArg(faults[0], "address"), Hex(o.fault_addr)) << faults[0];
      EXPECT_EQ(AuditArg(faults[0], "pkey"), std::to_string(o.fault_pkey)) << faults[0];
    }
  }
}

}  // namespace cordon::testing
