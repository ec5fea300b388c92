// Files closed at the lockdown (see closed_files.h).
#include "runtime/lockdown/closed_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>

#include "cordon/cordon.h"
#include "runtime/base/file.h"

namespace cordon::lockdown {
namespace {

std::mutex g_mu;
std::vector<ClosedFile> g_files;

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const std::string oct = s.substr(i + 1, 3);
      if (oct.find_first_not_of("01234567") == std::string::npos) {
        out += static_cast<char>(strtol(oct.c_str(), nullptr, 8));
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

struct Mount {
  int id = -1;
  dev_t dev = 0;
  std::string root;                 // the mount's root inside its file system
  std::string point;                // where it is mounted
  std::string fstype;               // "ext4", "overlay", ...
  std::vector<std::string> layers;  // an overlay's lower, upper and data directories
};

// An overlay's layer directories from its super options
// ("lowerdir=/a:/b,upperdir=/u,workdir=/w", or the new mount API's
// "lowerdir+=/a,...,datadir+=/d"), still escaped as mountinfo escapes
// (octal: a ',' in a path is "\054").
std::vector<std::string> OverlayLayers(const std::string& options) {
  std::vector<std::string> out;
  std::istringstream fields(options);
  std::string f;
  while (std::getline(fields, f, ',')) {
    for (const char* key : {"lowerdir=", "lowerdir+=", "upperdir=", "datadir+="}) {
      const size_t n = strlen(key);
      if (f.compare(0, n, key) != 0) continue;
      std::istringstream dirs(f.substr(n));
      std::string d;
      // Only lowerdir= lists several, with ':'.
      while (std::getline(dirs, d, strcmp(key, "lowerdir=") == 0 ? ':' : '\0')) {
        if (!d.empty()) out.push_back(d);
      }
    }
  }
  return out;
}

std::vector<Mount> ParseMounts(const std::string& text) {
  std::vector<Mount> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream f(line);
    std::string id, parent, majmin, root, point;
    if (!(f >> id >> parent >> majmin >> root >> point)) continue;
    unsigned maj = 0, min = 0;
    if (sscanf(majmin.c_str(), "%u:%u", &maj, &min) != 2) continue;
    Mount m;
    m.id = atoi(id.c_str());
    m.dev = makedev(maj, min);
    m.root = Unescape(root);
    m.point = Unescape(point);
    // "... - <fstype> <source> <super options>"
    const size_t dash = line.find(" - ");
    if (dash != std::string::npos) {
      std::istringstream tail(line.substr(dash + 3));
      std::string source, options;
      tail >> m.fstype >> source >> options;
      if (m.fstype == "overlay") {
        for (const std::string& l : OverlayLayers(options)) m.layers.push_back(Unescape(l));
      }
    }
    out.push_back(m);
  }
  return out;
}

// Whether dir is path or one of its ancestors, by whole components.
bool IsAtOrAbove(const std::string& dir, const std::string& path) {
  if (dir == "/") return !path.empty() && path[0] == '/';
  return path == dir ||
         (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
}

std::string Join(const std::string& base, const std::string& rest) {
  if (rest.empty()) return base;
  return (base == "/" ? "" : base) + rest;
}

// The file's facts, or an Error for the person who named it.
Expected<ClosedFile> Resolve(const std::string& named) {
  char real[PATH_MAX];
  if (realpath(named.c_str(), real) == nullptr) {
    return Error{"cannot close " + named + " at the lockdown: " + strerror(errno), CORDON_E_INVALID_ARGUMENT};
  }
  ClosedFile f;
  f.path = real;
  struct stat st;
  if (stat(real, &st) != 0) {
    return Error{"cannot close " + f.path + " at the lockdown: " + strerror(errno),
                 CORDON_E_INVALID_ARGUMENT};
  }
  if (!S_ISREG(st.st_mode)) {
    return Error{"cannot close " + f.path + " at the lockdown: it is not a regular file",
                 CORDON_E_INVALID_ARGUMENT};
  }
  // The lockdown's rules for /proc, /sys and /dev are its own (landlock.cc).
  for (const char* top : {"/proc", "/sys", "/dev"}) {
    if (IsAtOrAbove(top, f.path)) {
      return Error{
          "cannot close " + f.path + " at the lockdown: files under " + std::string(top) + " cannot be named",
          CORDON_E_INVALID_ARGUMENT};
    }
  }
  f.dev = st.st_dev;
  f.known = true;
  f.mode = st.st_mode;
  f.uid = st.st_uid;
  f.gid = st.st_gid;
  // An access ACL may grant more than the mode says.
  f.has_acl = getxattr(real, "system.posix_acl_access", nullptr, 0) >= 0;
  f.ino = st.st_ino;
  // Landlock closes a path, not a file: any other way to the same inode
  // would stay open.
  if (st.st_nlink != 1) {
    return Error{f.path + " has " + std::to_string(st.st_nlink) +
                     " hard links: the lockdown can close one path to a file, and the others would stay "
                     "open; keep the secret in a file with a single link",
                 CORDON_E_FILE_REACHABLE};
  }
  const std::string mounts = ReadWholeFile("/proc/self/mountinfo");
  struct statx sx {};
  const int mount_id = statx(AT_FDCWD, real, 0, STATX_MNT_ID, &sx) == 0 && (sx.stx_mask & STATX_MNT_ID) != 0
                           ? static_cast<int>(sx.stx_mnt_id)
                           : -1;
  dev_t fs_dev = f.dev;
  const std::string fs_path = FileSystemPath(mounts, mount_id, f.dev, f.path, &fs_dev);
  if (fs_path.empty()) {
    return Error{"cannot close " + f.path +
                     " at the lockdown: no mount of its file system in "
                     "/proc/self/mountinfo holds it, so other paths to it cannot be ruled out",
                 CORDON_E_FILE_REACHABLE};
  }
  if (const int routes = MountRoutes(mounts, fs_dev, fs_path); routes != 1) {
    return Error{f.path + " is reachable through " + std::to_string(routes) +
                     " mounts of its file system (a bind mount shows it elsewhere): the lockdown can "
                     "close one path to a file; keep the secret where only one mount shows it",
                 CORDON_E_FILE_REACHABLE};
  }
  const std::string overlay = OverlayRoute(mounts, mount_id, f.path, [](const std::string& dir) {
    struct stat st;
    return stat(dir.c_str(), &st) == 0;
  });
  if (!overlay.empty()) {
    return Error{f.path + " has another path: " + overlay +
                     ", and the lockdown can close one path to a file; keep the secret off overlays",
                 CORDON_E_FILE_REACHABLE};
  }
  return f;
}

// Every open descriptor and mapping of the file: they would outlive the rules.
std::string OpenElsewhere(const ClosedFile& f) {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir("/proc/self/fd"), closedir);
  if (!dir) return std::string("cannot list /proc/self/fd: ") + strerror(errno);
  const int own = dirfd(dir.get());
  while (dirent* e = readdir(dir.get())) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const int fd = atoi(e->d_name);
    struct stat st;
    if (fd == own || fstat(fd, &st) != 0) continue;
    if (st.st_dev == f.dev && st.st_ino == f.ino) {
      return "descriptor " + std::to_string(fd) + " is open on " + f.path +
             ", which cordon_lockdown_close_file() named: it would keep reading the file after the "
             "lockdown, so close it first";
    }
  }
  const std::string maps = ReadWholeFile("/proc/self/maps");
  std::istringstream lines(maps);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string range, perms, offset, majmin;
    unsigned long long inode = 0;
    if (!(fields >> range >> perms >> offset >> majmin >> inode) || inode == 0) continue;
    unsigned maj = 0, min = 0;
    if (sscanf(majmin.c_str(), "%x:%x", &maj, &min) != 2) continue;
    if (makedev(maj, min) == f.dev && inode == f.ino) {
      return f.path + ", which cordon_lockdown_close_file() named, is mapped at " + range +
             ": the mapping would show its contents after the lockdown, so unmap it first";
    }
  }
  return "";
}

// Whether this process cannot open path for reading because of a permission
// it cannot change: a directory on the way it may not search, or the file
// it may not read, owned by another user. Only the owner (or a capability,
// and the lockdown drops them all) may change a mode or an ACL, and the
// lockdown refuses every set*id call, so it stays closed.
// Whether the permissions f was named with let this process read it.
bool ReadableTo(const ClosedFile& f) {
  const uid_t uid = geteuid();
  if (uid == f.uid) return (f.mode & S_IRUSR) != 0;
  bool in_group = getegid() == f.gid;
  gid_t groups[256];
  const int n = getgroups(256, groups);
  for (int i = 0; i < n && !in_group; ++i) in_group = groups[i] == f.gid;
  if (n < 0) return true;  // unknown: assume the worst
  return (f.mode & (in_group ? S_IRGRP : S_IROTH)) != 0;
}

bool ClosedByPermissions(const std::string& path) {
  const uid_t me = geteuid();
  auto locked_by_other = [me](const std::string& p, int mode) {
    struct stat st;
    return faccessat(AT_FDCWD, p.c_str(), mode, AT_EACCESS) != 0 && errno == EACCES &&
           stat(p.c_str(), &st) == 0 && st.st_uid != me;
  };
  for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    const std::string dir = path.substr(0, slash);
    if (locked_by_other(dir, X_OK)) return true;
    if (faccessat(AT_FDCWD, dir.c_str(), X_OK, AT_EACCESS) != 0) return false;  // ours, or gone: not for good
  }
  return locked_by_other(path, R_OK);
}

}  // namespace

std::string FileSystemPath(const std::string& mountinfo, int mount_id, dev_t dev, const std::string& path,
                           dev_t* fs_dev) {
  const std::vector<Mount> mounts = ParseMounts(mountinfo);
  const Mount* best = nullptr;
  for (const Mount& m : mounts) {
    // By the mount's id where statx gave it: a btrfs subvolume's files have
    // a device number of their own, which no mountinfo line carries.
    if (mount_id >= 0 ? m.id != mount_id : m.dev != dev) continue;
    if (!IsAtOrAbove(m.point, path)) continue;
    if (best == nullptr || m.point.size() >= best->point.size()) best = &m;
  }
  if (best == nullptr) return "";
  *fs_dev = best->dev;
  const std::string rest = best->point == "/" ? path : path.substr(best->point.size());
  return Join(best->root, rest);
}

std::string OverlayRoute(const std::string& mountinfo, int mount_id, const std::string& path,
                         bool (*reachable)(const std::string& dir)) {
  for (const Mount& m : ParseMounts(mountinfo)) {
    if (m.fstype != "overlay") continue;
    for (const std::string& layer : m.layers) {
      // A layer that holds the file: the overlay shows its bytes under an
      // inode of its own, at its mount point.
      if (IsAtOrAbove(layer, path))
        return "the overlay at " + m.point + " shows it (its layer " + layer + ")";
      // The file is on the overlay: its bytes are a layer's file, which a
      // path through that layer reaches.
      if (m.id == mount_id && reachable(layer))
        return "it lives on the overlay at " + m.point + ", whose layer " + layer + " this process can reach";
    }
  }
  return "";
}

int MountRoutes(const std::string& mountinfo, dev_t dev, const std::string& fs_path) {
  int routes = 0;
  // A mount whose root is the file itself (a bind mount of one file) shows
  // it too.
  for (const Mount& m : ParseMounts(mountinfo)) {
    if (m.dev == dev && IsAtOrAbove(m.root, fs_path)) ++routes;
  }
  return routes;
}

Expected<void> AddClosedFile(const char* path) {
  if (path == nullptr || path[0] == '\0') {
    return Error{"cordon_lockdown_close_file(): no path", CORDON_E_INVALID_ARGUMENT};
  }
  auto f = Resolve(path);
  if (!f.ok()) return f.failure();
  std::lock_guard<std::mutex> lock(g_mu);
  for (const ClosedFile& known : g_files) {
    if (known.dev == f->dev && known.ino == f->ino) return {};
  }
  g_files.push_back(*f);
  return {};
}

std::vector<std::string> SwapFiles(const std::string& proc_swaps) {
  std::vector<std::string> out;
  std::istringstream lines(proc_swaps);
  std::string line;
  std::getline(lines, line);  // "Filename Type Size Used Priority"
  while (std::getline(lines, line)) {
    std::istringstream f(line);
    std::string name, type;
    if (!(f >> name >> type)) continue;
    name = Unescape(name);
    if (type == "file") {
      out.push_back(name);
    } else if (name.compare(0, 9, "/dev/loop") == 0 && name.find('/', 5) == std::string::npos) {
      // A swap area on a loop device is a "partition", but its pages are in
      // the loop's backing file, an ordinary file.
      const std::string backing = ReadWholeFile("/sys/block/" + name.substr(5) + "/loop/backing_file");
      const std::string path = backing.substr(0, backing.find('\n'));
      if (!path.empty() && path[0] == '/') out.push_back(path);
    }
  }
  return out;
}

Expected<std::vector<ClosedFile>> ClosedFilesForLockdown() {
  std::vector<ClosedFile> files;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    files = g_files;
  }
  // Swap files hold swapped-out pages of every process, trusted memory
  // included, in the clear: closed like a secret's file. (Swap partitions
  // are block devices, which the lockdown's first layer closes.)
  for (const std::string& swap : SwapFiles(ReadWholeFile("/proc/swaps"))) {
    struct stat st;
    if (stat(swap.c_str(), &st) != 0) {
      // /proc/swaps is not per mount namespace: a host's swap file that
      // this process's namespace does not show (a container) has no path
      // from here.
      if (errno == ENOENT || errno == ENOTDIR) continue;
      if (ClosedByPermissions(swap)) {
        ClosedFile f;
        f.path = swap;
        files.push_back(f);  // by_permissions, checked again below
        continue;
      }
      return Error{"cannot check the swap file " + swap +
                       ", which holds swapped-out trusted memory: " + strerror(errno),
                   CORDON_E_LOCKDOWN_FAILED};
    }
    auto f = Resolve(swap);
    if (!f.ok()) {
      return Error{
          "the swap file " + swap + " holds swapped-out trusted memory and cannot be closed: " + f.error() +
              " (or turn it off with swapoff before the lockdown)",
          f.status() == CORDON_E_FILE_REACHABLE ? CORDON_E_FILE_REACHABLE : CORDON_E_LOCKDOWN_FAILED};
    }
    bool known = false;
    for (const ClosedFile& k : files) known |= k.dev == f->dev && k.ino == f->ino;
    if (!known) files.push_back(*f);
  }
  for (ClosedFile& f : files) {
    if (f.ino != 0) {
      if (const std::string why = OpenElsewhere(f); !why.empty()) return Error{why, CORDON_E_LOCKDOWN_FAILED};
    }
    // A process that set up as root and runs as another user (a server's
    // worker) may not reach the file at all; that is closed for good when
    // the lock is another user's.
    f.by_permissions = ClosedByPermissions(f.path);
    if (f.by_permissions) {
      // A directory on the way is the lock, so this process cannot check
      // the file again (a second link elsewhere would pass that lock): it
      // must be its own lock too, by the permissions it was named with,
      // which no link can change (links share the inode).
      struct stat st;
      if (stat(f.path.c_str(), &st) != 0 && (!f.known || f.has_acl || ReadableTo(f))) {
        return Error{"cannot check " + f.path +
                         " again (a directory on its path is closed to this process), " +
                         "and the file itself " +
                         (!f.known    ? std::string("was never seen")
                          : f.has_acl ? std::string("has an ACL")
                                      : std::string("is readable to this process's user")) +
                         ": a second link to it elsewhere would stay open; make the file unreadable to this "
                         "user (chmod 600, or 640 with another group)",
                     CORDON_E_FILE_REACHABLE};
      }
      continue;
    }
    auto now = Resolve(f.path);
    if (!now.ok()) {
      return Error{
          "a file named to cordon_lockdown_close_file() changed since: " + now.error(),
          now.status() == CORDON_E_FILE_REACHABLE ? CORDON_E_FILE_REACHABLE : CORDON_E_LOCKDOWN_FAILED};
    }
    if (now->path != f.path || now->dev != f.dev || now->ino != f.ino) {
      return Error{f.path +
                       ", which cordon_lockdown_close_file() named, is another file now (renamed or "
                       "replaced since): name it again",
                   CORDON_E_LOCKDOWN_FAILED};
    }
    // The rules grant every other entry of each directory on the way, so
    // each must be listable.
    for (size_t slash = f.path.find('/', 1); slash != std::string::npos;
         slash = f.path.find('/', slash + 1)) {
      const std::string dir = f.path.substr(0, slash);
      std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
      if (!d) {
        return Error{"cannot list " + dir + " (" + strerror(errno) + "), which the lockdown walks to close " +
                         f.path + " (every other entry there is granted): let this process read it",
                     CORDON_E_LOCKDOWN_FAILED};
      }
    }
  }
  return files;
}

std::string CheckFilesClosed(const std::vector<ClosedFile>& files) {
  for (const ClosedFile& f : files) {
    Fd fd(open(f.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (fd.get() >= 0 || errno != EACCES) {
      return f.path + " can still be opened after the Landlock rules that close it (" +
             (fd.get() >= 0 ? std::string("opened") : std::string(strerror(errno))) + ")";
    }
  }
  return "";
}

}  // namespace cordon::lockdown
