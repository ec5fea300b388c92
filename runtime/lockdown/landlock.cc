// Landlock rules for the lockdown (see landlock.h).
#include "runtime/lockdown/landlock.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "runtime/base/file.h"

namespace cordon::lockdown {
namespace {

constexpr uint64_t kRead = LANDLOCK_ACCESS_FS_READ_FILE;
constexpr uint64_t kAccess = kRead | LANDLOCK_ACCESS_FS_WRITE_FILE;

// A directory on the way to denied files: children named here are walked
// into (or skipped when they map to nullptr); children named in read_only
// are granted reading only; every other child is granted, unless
// skip_other says no (procfs's other processes) or only_named is set (then
// only the children in granted are).
struct Node {
  std::map<std::string, std::unique_ptr<Node>> children;
  std::set<std::string> read_only;
  std::set<std::string> granted;  // with only_named: the children granted
  bool (*skip_other)(const std::string& name) = nullptr;
  bool only_named = false;
};

bool IsNumber(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

void Deny(Node* dir, const std::string& name) {
  dir->children[name] = nullptr;
}

// The files of one task directory that expose its memory or registers
// (the descriptor audit refuses the same ones, audit.cc).
void DenyTaskFiles(Node* task) {
  for (const char* f : {"mem", "pagemap", "syscall", "stack"}) Deny(task, f);
}

class Walker {
 public:
  // grant: what every other child of a walked directory gets.
  Walker(int ruleset, uint64_t grant) : ruleset_(ruleset), grant_(grant) {}

  Expected<bool> Walk(const std::string& path, const Node& node) {
    std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir(path.c_str()), closedir);
    if (!dir) return Error{"cannot list " + path + ": " + strerror(errno)};
    while (dirent* e = readdir(dir.get())) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      const std::string child = (path == "/" ? "" : path) + "/" + name;
      const auto it = node.children.find(name);
      if (it != node.children.end()) {
        if (!it->second) continue;  // denied
        auto walked = Walk(child, *it->second);
        if (!walked.ok()) return walked;
        continue;
      }
      if (node.read_only.count(name) != 0) {
        auto granted = Grant(child, kRead);
        if (!granted.ok()) return granted;
        continue;
      }
      if ((node.only_named && node.granted.count(name) == 0) ||
          (node.skip_other != nullptr && node.skip_other(name)))
        continue;
      auto granted = Grant(child, grant_);
      if (!granted.ok()) return granted;
    }
    return true;
  }

 private:
  Expected<bool> Grant(const std::string& path, uint64_t access) {
    Fd fd(open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (fd.get() < 0) {
      // Gone since listing it (a thread that ended): nothing to grant.
      if (errno == ENOENT) return true;
      return Error{"cannot open " + path + ": " + strerror(errno)};
    }
    struct stat st;
    if (fstat(fd.get(), &st) != 0) return Error{"cannot stat " + path + ": " + strerror(errno)};
    // A symbolic link grants nothing: access is checked on what it names.
    if (S_ISLNK(st.st_mode)) return true;
    landlock_path_beneath_attr rule{};
    rule.allowed_access = access;
    rule.parent_fd = fd.get();
    if (syscall(SYS_landlock_add_rule, ruleset_, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) != 0) {
      return Error{"landlock_add_rule(" + path + "): " + strerror(errno)};
    }
    return true;
  }

  int ruleset_;
  uint64_t grant_;
};

// A ruleset that handles `handled`, walked from / along `root`'s tree, then
// applied to the calling thread.
Expected<bool> Restrict(uint64_t handled, const Node& root) {
  landlock_ruleset_attr attr{};
  attr.handled_access_fs = handled;
  Fd ruleset(static_cast<int>(syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0)));
  if (ruleset.get() < 0) return Error{std::string("landlock_create_ruleset: ") + strerror(errno)};
  auto walked = Walker(ruleset.get(), handled).Walk("/", root);
  if (!walked.ok()) return walked;
  if (syscall(SYS_landlock_restrict_self, ruleset.get(), 0) != 0) {
    return Error{std::string("landlock_restrict_self: ") + strerror(errno)};
  }
  return true;
}

}  // namespace

int LandlockAbi() {
  const long abi = syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return abi < 0 ? 0 : static_cast<int>(abi);
}

Expected<bool> OnlyOneProcMount() {
  std::unique_ptr<FILE, int (*)(FILE*)> f(fopen("/proc/self/mountinfo", "re"), fclose);
  if (!f) return Error{std::string("cannot read /proc/self/mountinfo: ") + strerror(errno)};
  char line[4096];
  while (fgets(line, sizeof line, f.get()) != nullptr) {
    // "<id> <parent> <maj:min> <root> <mount point> <options> ... - <fstype> ..."
    char point[1024], fstype[64];
    const char* dash = strstr(line, " - ");
    if (dash == nullptr || sscanf(line, "%*s %*s %*s %*s %1023s", point) != 1 ||
        sscanf(dash, " - %63s", fstype) != 1) {
      continue;
    }
    if (strcmp(fstype, "proc") == 0 && strcmp(point, "/proc") != 0) {
      return Error{std::string("a procfs is also mounted at ") + point +
                   ", where its memory files would escape the rules; unmount it before cordon_lockdown()"};
    }
  }
  return true;
}

Expected<bool> RestrictMemoryFiles(pid_t pid, const std::vector<ClosedFile>& closed) {
  Node root;
  Node* proc = (root.children["proc"] = std::make_unique<Node>()).get();
  // Other processes (children hold copies of trusted memory), and the
  // kernel's memory image.
  proc->skip_other = IsNumber;
  for (const char* f : {"kcore", "kpagecount", "kpageflags", "kpagecgroup", "sysrq-trigger"}) Deny(proc, f);
  // Kernel settings stay readable, never writable: as root (uid 0 keeps
  // owner rights on root's files even without capabilities) /proc/sys
  // would set core_pattern and suid_dumpable, which bring core dumps and
  // their helpers back; /sys holds tracefs (uprobes read registers and
  // memory) and writable kernel parameters.
  proc->read_only.insert("sys");
  root.read_only.insert("sys");
  Node* self = (proc->children[std::to_string(pid)] = std::make_unique<Node>()).get();
  DenyTaskFiles(self);
  Node* tasks = (self->children["task"] = std::make_unique<Node>()).get();
  // Threads that do not exist yet get no rules at all: their directories
  // stay closed.
  {
    std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir(("/proc/" + std::to_string(pid) + "/task").c_str()),
                                            closedir);
    if (!dir) return Error{std::string("cannot list this process's threads: ") + strerror(errno)};
    while (dirent* e = readdir(dir.get())) {
      if (!IsNumber(e->d_name)) continue;
      DenyTaskFiles((tasks->children[e->d_name] = std::make_unique<Node>()).get());
    }
  }
  // Devices: only those that reach no memory. Every other device may map
  // or copy this process's memory without protection keys (/dev/mem,
  // /dev/kvm, vfio, GPUs, vhost, /dev/userfaultfd) or hold swapped-out
  // trusted pages (disks), so a device the list does not name stays closed.
  Node* dev = (root.children["dev"] = std::make_unique<Node>()).get();
  dev->only_named = true;
  for (const char* f : {"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "mqueue"}) {
    dev->granted.insert(f);
  }
  // The terminal the process writes to, when it is not a pty (a serial or
  // virtual console: /dev/console, /dev/ttyS0, /dev/tty1): the fatal path
  // reopens fd 2 to write a violation's message without blocking, which
  // Landlock would refuse there, and the message would be lost. A terminal
  // reaches no memory.
  for (const int fd : {1, 2}) {
    char target[256];
    const ssize_t n =
        isatty(fd) ? readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), target, sizeof target - 1)
                   : -1;
    if (n <= 0) continue;
    const std::string path(target, static_cast<size_t>(n));
    if (path.rfind("/dev/", 0) == 0 && path.find('/', 5) == std::string::npos)
      dev->granted.insert(path.substr(5));
  }

  if (auto r = Restrict(kAccess, root); !r.ok()) return r;

  // Files closed at the lockdown (closed_files.h), in a second layer that
  // handles reading only: absolute paths with no link, none under /proc,
  // /sys or /dev (AddClosedFile refuses those). Every directory on the way
  // is walked, so a file made in one of them later gets no rule and cannot
  // be read either; it can still be written (`openssl req -out cert.pem`
  // beside the key), which is why this layer leaves writing alone.
  Node secrets;
  bool any = false;
  for (const ClosedFile& f : closed) {
    if (f.by_permissions) continue;
    any = true;
    Node* node = &secrets;
    size_t at = 1;
    while (node != nullptr) {
      const size_t slash = f.path.find('/', at);
      const std::string name = f.path.substr(at, slash == std::string::npos ? std::string::npos : slash - at);
      if (slash == std::string::npos) {
        Deny(node, name);
        break;
      }
      auto it = node->children.find(name);
      if (it == node->children.end()) it = node->children.emplace(name, std::make_unique<Node>()).first;
      node = it->second.get();  // nullptr: denied already, whole
      at = slash + 1;
    }
  }
  if (any) return Restrict(kRead, secrets);
  return true;
}

}  // namespace cordon::lockdown
