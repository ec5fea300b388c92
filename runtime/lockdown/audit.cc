// The lockdown's audits of descriptors and child processes (audit.h).
#include "runtime/lockdown/audit.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "runtime/base/file.h"

namespace cordon::lockdown {
namespace {

bool IsNumber(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

bool StartsWith(const std::string& s, const char* prefix) {
  return s.compare(0, strlen(prefix), prefix) == 0;
}

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < path.size()) {
    const size_t j = path.find('/', i);
    const size_t end = j == std::string::npos ? path.size() : j;
    if (end > i) parts.push_back(path.substr(i, end - i));
    i = end + 1;
  }
  return parts;
}

// Kinds of anonymous-inode descriptors that only carry events or
// notifications, never access to this process's memory or registers.
// Every other kind is refused (perf events, userfaultfd, io_uring, bpf
// objects, seccomp listeners, KVM, ...): a new kind is unknown until read.
constexpr const char* kHarmlessAnon[] = {"[eventfd]", "[eventpoll]", "[signalfd]",      "[timerfd]",
                                         "inotify",   "[fanotify]",  "landlock-ruleset"};

// Why an anonymous-inode kind is refused, for the message.
std::string AnonReason(const std::string& kind) {
  if (kind == "[perf_event]") {
    return "a perf event: it samples the registers and stack of whatever code runs, trusted code included "
           "(PERF_SAMPLE_REGS_USER, PERF_SAMPLE_STACK_USER), and reads memory behind the keys";
  }
  if (kind == "[userfaultfd]") {
    return "a userfaultfd: it stalls trusted code on a fault and fills trusted pages (UFFDIO_COPY) without "
           "looking at protection keys";
  }
  if (StartsWith(kind, "[io_uring")) {
    return "an io_uring: the kernel does its work on this process's memory outside its threads";
  }
  if (StartsWith(kind, "bpf") || StartsWith(kind, "[bpf")) {
    return "a bpf object: bpf programs read user memory and registers without looking at protection keys";
  }
  if (kind == "[pidfd]") {
    return "a pidfd of this process: with it pidfd_getfd and process_madvise reach this process from outside";
  }
  if (kind == "seccomp notify" || kind == "[seccomp notify]") {
    return "a seccomp listener: it answers system calls in place of the kernel, those of trusted code too";
  }
  if (StartsWith(kind, "kvm")) {
    return "a KVM object: guest memory slots map this process's memory without protection keys";
  }
  return "an anonymous-inode descriptor of a kind Cordon does not know to be harmless";
}

// Character devices that reach no memory: null, zero, full, random,
// urandom (major 1), terminals (majors 4 and 5, pseudo-terminals 136-143).
bool HarmlessCharDevice(dev_t rdev) {
  const unsigned maj = major(rdev), min = minor(rdev);
  if (maj == 1) return min == 3 || min == 5 || min == 7 || min == 8 || min == 9;
  return maj == 4 || maj == 5 || (maj >= 136 && maj <= 143);
}

// procfs files of a task that expose its memory or registers: mem (reads
// and writes memory, keys ignored), pagemap (which pages are present, their
// frames and swap slots), syscall (a blocked thread's registers), stack
// (its kernel stack). A child's files count too: it holds a copy of
// trusted memory.
bool TaskFileExposesMemory(const std::string& name) {
  return name == "mem" || name == "pagemap" || name == "syscall" || name == "stack";
}

constexpr long kConfigFsMagic = 0x62656570;  // not in linux/magic.h

bool Writable(int flags) {
  return (flags & O_ACCMODE) != O_RDONLY;
}

std::string ProcReason(const std::vector<std::string>& parts, int flags, pid_t self_pid,
                       bool (*is_own_task)(long pid)) {
  // parts[0] == "proc"
  if (parts.size() >= 2 && IsNumber(parts[1])) {
    const long pid = atol(parts[1].c_str());
    std::string name = parts.size() >= 3 ? parts[2] : "";
    if (name == "task" && parts.size() >= 5) name = parts[4];
    if (TaskFileExposesMemory(name)) {
      return "/proc/<pid>/" + name + " of " +
             (pid == self_pid || is_own_task(pid) ? std::string("this process") : "process " + parts[1]) +
             ": it reads (or writes) memory or registers without looking at protection keys";
    }
    if (Writable(flags) && pid != self_pid && !is_own_task(pid)) {
      return "a procfs file of another process, open for writing";
    }
    return "";
  }
  if (parts.size() == 2 && (parts[1] == "kcore" || StartsWith(parts[1], "kpage"))) {
    return "the kernel's view of physical memory";
  }
  if (Writable(flags)) {
    return "a procfs file outside this process's directory open for writing (/proc/sys sets core_pattern "
           "and suid_dumpable, which bring core dumps and their helpers back)";
  }
  return "";
}

}  // namespace

std::string WhyDescriptorIsUnsafe(const DescriptorFacts& fd, pid_t self_pid, bool (*is_own_task)(long pid)) {
  if (StartsWith(fd.target, "anon_inode:")) {
    const std::string kind = fd.target.substr(strlen("anon_inode:"));
    if (kind == "[pidfd]" || fd.pidfd_pid >= 0) {
      const bool own = fd.pidfd_pid == self_pid || (fd.pidfd_pid > 0 && is_own_task(fd.pidfd_pid));
      return own ? AnonReason("[pidfd]") : "";
    }
    for (const char* ok : kHarmlessAnon) {
      if (kind == ok) return "";
    }
    return AnonReason(kind);
  }
  if (S_ISCHR(fd.mode)) {
    if (HarmlessCharDevice(fd.rdev)) return "";
    return "the character device " + std::to_string(major(fd.rdev)) + ":" + std::to_string(minor(fd.rdev)) +
           ": only null, zero, full, random, urandom and terminals may stay open (others map or copy "
           "memory without protection keys: /dev/mem, /dev/kvm, vfio, GPUs)";
  }
  if (S_ISBLK(fd.mode)) {
    return "a block device: a disk can hold trusted pages that were swapped out";
  }
  switch (fd.fs_magic) {
    case PROC_SUPER_MAGIC: {
      const std::vector<std::string> parts = Split(fd.target);
      if (parts.empty() || parts[0] != "proc") return "a procfs file outside /proc";
      return ProcReason(parts, fd.flags, self_pid, is_own_task);
    }
    case TRACEFS_MAGIC:
    case DEBUGFS_MAGIC:
      return "a tracefs or debugfs file: uprobes and trace buffers read registers and memory of this process";
    case BPF_FS_MAGIC:
      return "a pinned bpf object";
    case SYSFS_MAGIC:
    case SECURITYFS_MAGIC:
    case kConfigFsMagic:
      if (Writable(fd.flags))
        return "a sysfs, securityfs or configfs file open for writing (kernel settings)";
      return "";
    default:
      return "";
  }
}

namespace {

bool IsOwnTask(long pid) {
  return access(("/proc/self/task/" + std::to_string(pid)).c_str(), F_OK) == 0;
}

// The value after "key:" on its line of a /proc status-like text; "" if none.
std::string Field(const std::string& text, const char* key) {
  const std::string k = std::string("\n") + key + ":";
  size_t at = ("\n" + text).find(k);
  if (at == std::string::npos) return "";
  at += k.size() - 1;  // index into text
  size_t end = text.find('\n', at);
  std::string v = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
  const size_t first = v.find_first_not_of(" \t");
  return first == std::string::npos ? "" : v.substr(first);
}

}  // namespace

std::string AuditDescriptors(int audit_fd) {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir("/proc/self/fd"), closedir);
  if (!dir) return std::string("cannot list /proc/self/fd: ") + strerror(errno);
  const int own = dirfd(dir.get());
  const pid_t self = getpid();
  struct stat audit_st {};
  const bool audited = audit_fd >= 0 && fstat(audit_fd, &audit_st) == 0;
  while (dirent* e = readdir(dir.get())) {
    if (!IsNumber(e->d_name)) continue;
    const int fd = atoi(e->d_name);
    if (fd == own) continue;
    DescriptorFacts facts;
    char target[4096];
    const ssize_t n =
        readlink(("/proc/self/fd/" + std::string(e->d_name)).c_str(), target, sizeof target - 1);
    if (n < 0) continue;  // closed meanwhile
    facts.target.assign(target, static_cast<size_t>(n));
    struct stat st;
    if (fstat(fd, &st) == 0) {
      facts.mode = st.st_mode;
      facts.rdev = st.st_rdev;
      // The audit stream's file only through its own descriptor, which
      // the filter guards: another (a dup, or a pipe's read end) would
      // write forged records or take real ones out (docs/audit.md).
      if (audited && fd != audit_fd && st.st_dev == audit_st.st_dev && st.st_ino == audit_st.st_ino &&
          !S_ISCHR(st.st_mode)) {
        return "descriptor " + std::to_string(fd) + " (" + facts.target +
               ") reaches the audit stream's file (" + "descriptor " + std::to_string(audit_fd) +
               "), and only that descriptor, which the filter guards, may reach it after cordon_lockdown(): "
               "close it first (docs/audit.md)";
      }
    }
    struct statfs sfs;
    if (fstatfs(fd, &sfs) == 0) facts.fs_magic = static_cast<long>(sfs.f_type);
    const std::string info = ReadWholeFile("/proc/self/fdinfo/" + std::string(e->d_name));
    facts.flags = static_cast<int>(strtol(Field(info, "flags").c_str(), nullptr, 8));
    if (const std::string pid = Field(info, "Pid"); !pid.empty()) facts.pidfd_pid = atol(pid.c_str());
    const std::string why = WhyDescriptorIsUnsafe(facts, self, IsOwnTask);
    if (!why.empty()) {
      return "descriptor " + std::to_string(fd) + " (" + facts.target + ") is " + why +
             "; descriptors opened before cordon_lockdown() keep working after it, so close it first "
             "(docs/lockdown.md, Descriptors)";
    }
  }
  return "";
}

std::string AuditChildren() {
  // Every descendant, through each thread's children list.
  std::deque<std::string> pending{"self"};
  std::set<std::string> seen;
  while (!pending.empty()) {
    const std::string pid = pending.front();
    pending.pop_front();
    std::unique_ptr<DIR, int (*)(DIR*)> tasks(opendir(("/proc/" + pid + "/task").c_str()), closedir);
    if (!tasks) continue;  // gone
    while (dirent* t = readdir(tasks.get())) {
      if (!IsNumber(t->d_name)) continue;
      const std::string file = "/proc/" + pid + "/task/" + t->d_name + "/children";
      // Fail closed where the kernel cannot list children (no
      // CONFIG_PROC_CHILDREN): this process's own list must be readable.
      if (pid == "self" && access(file.c_str(), R_OK) != 0) {
        return "cannot read " + file + " to look for child processes: " + strerror(errno);
      }
      const std::string list = ReadWholeFile(file);
      size_t i = 0;
      while (i < list.size()) {
        const size_t j = list.find(' ', i);
        const std::string child = list.substr(i, j == std::string::npos ? std::string::npos : j - i);
        i = j == std::string::npos ? list.size() : j + 1;
        if (IsNumber(child) && seen.insert(child).second) pending.push_back(child);
      }
    }
  }
  for (const std::string& pid : seen) {
    const std::string status = ReadWholeFile("/proc/" + pid + "/status");
    if (status.empty() || Field(status, "State")[0] == 'Z') continue;  // gone, or a zombie
    const auto caps = [&](const char* k) { return strtoull(Field(status, k).c_str(), nullptr, 16); };
    const bool nnp = Field(status, "NoNewPrivs") == "1";
    if (caps("CapPrm") != 0 || caps("CapEff") != 0 || caps("CapAmb") != 0 || (caps("CapBnd") != 0 && !nnp)) {
      return "child process " + pid + " (" + Field(status, "Name") +
             ") holds or can regain capabilities and is not confined; as root it could ptrace this process "
             "after the lockdown and set its registers and PKRU. Let it exit, or have it drop its "
             "capabilities and set no_new_privs, before cordon_lockdown(); processes forked after the "
             "lockdown inherit it (docs/lockdown.md, Child processes)";
    }
  }
  return "";
}

std::string AuditSignalSources(const std::vector<int>& signals) {
  if (signals.empty()) return "";
  const auto listed = [&signals](long sig) {
    for (const int s : signals) {
      if (s == sig) return true;
    }
    return false;
  };
  const std::string advice =
      ": on this kernel (before 6.12) only a faulting instruction may raise it after lockdown "
      "(docs/signals.md); undo it before cordon_lockdown()";
  int pdeath = 0;
  if (prctl(PR_GET_PDEATHSIG, &pdeath) != 0) return std::string("PR_GET_PDEATHSIG: ") + strerror(errno);
  if (listed(pdeath)) return "the parent-death signal is " + std::to_string(pdeath) + advice;
  // POSIX timers: "ID:", "signal: N/...", "notify: signal/pid.P" (or
  // thread/tid.T, none/...), "ClockID:" per timer.
  if (access("/proc/self/timers", R_OK) != 0) {
    return std::string("cannot read /proc/self/timers to look for timers that deliver signals: ") +
           strerror(errno);
  }
  {
    const std::string timers = ReadWholeFile("/proc/self/timers");
    long signal = 0;
    size_t at = 0;
    while (at < timers.size()) {
      size_t end = timers.find('\n', at);
      if (end == std::string::npos) end = timers.size();
      const std::string line = timers.substr(at, end - at);
      at = end + 1;
      if (StartsWith(line, "signal:")) signal = strtol(line.c_str() + 7, nullptr, 10);
      if (StartsWith(line, "notify:") && line.find("none/") == std::string::npos && listed(signal)) {
        return "a POSIX timer delivers signal " + std::to_string(signal) + advice;
      }
    }
  }
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir("/proc/self/fd"), closedir);
  if (!dir) return std::string("cannot list /proc/self/fd: ") + strerror(errno);
  const int own = dirfd(dir.get());
  while (dirent* e = readdir(dir.get())) {
    if (!IsNumber(e->d_name)) continue;
    const int fd = atoi(e->d_name);
    if (fd == own) continue;
    const int sig = fcntl(fd, F_GETSIG);
    if (sig > 0 && listed(sig)) {
      return "descriptor " + std::to_string(fd) + " delivers signal " + std::to_string(sig) + " (F_SETSIG)" +
             advice;
    }
    struct statfs sfs;
    if (fstatfs(fd, &sfs) == 0 && static_cast<long>(sfs.f_type) == 0x19800202 /* MQUEUE_MAGIC */) {
      // Reading a message queue descriptor gives its state:
      // "QSIZE:n NOTIFY:k SIGNO:s NOTIFY_PID:p".
      char state[256] = {};
      const ssize_t n = pread(fd, state, sizeof state - 1, 0);
      if (n <= 0) {
        return "descriptor " + std::to_string(fd) +
               " is a message queue whose notification cannot be read (write-only?)" + advice;
      }
      const char* signo = strstr(state, "SIGNO:");
      const char* owner = strstr(state, "NOTIFY_PID:");
      if (signo != nullptr && owner != nullptr && strtol(owner + 11, nullptr, 10) != 0 &&
          listed(strtol(signo + 6, nullptr, 10))) {
        return "message queue descriptor " + std::to_string(fd) + " notifies with signal " +
               std::to_string(strtol(signo + 6, nullptr, 10)) + advice;
      }
    }
  }
  // A child's exit signal goes to this process (field 38 of its stat).
  std::string children;
  std::unique_ptr<DIR, int (*)(DIR*)> tasks(opendir("/proc/self/task"), closedir);
  while (dirent* t = tasks ? readdir(tasks.get()) : nullptr) {
    if (IsNumber(t->d_name))
      children += ReadWholeFile(std::string("/proc/self/task/") + t->d_name + "/children") + " ";
  }
  size_t i = 0;
  while (i < children.size()) {
    const size_t j = children.find(' ', i);
    const std::string child = children.substr(i, j == std::string::npos ? std::string::npos : j - i);
    i = j == std::string::npos ? children.size() : j + 1;
    if (!IsNumber(child)) continue;
    const std::string stat = ReadWholeFile("/proc/" + child + "/stat");
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;  // gone
    // Fields after the command name start at 3 (the state).
    size_t p = paren + 2;
    for (int field = 3; field < 38 && p != std::string::npos; ++field) {
      p = stat.find(' ', p);
      if (p != std::string::npos) ++p;
    }
    if (p != std::string::npos && listed(strtol(stat.c_str() + p, nullptr, 10))) {
      return "child process " + child + " has exit signal " +
             std::to_string(strtol(stat.c_str() + p, nullptr, 10)) + advice;
    }
  }
  return "";
}

}  // namespace cordon::lockdown
