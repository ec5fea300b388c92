// An outside review's attacks on the files closed at the lockdown
// (cordon_lockdown_close_file, docs/lockdown.md "Secrets' files"). Each
// attack runs in a judged child: the secret is the judge's, drawn at run
// time, written to the file by trusted code; whatever a route reads is
// handed to the judge, which looks for the secret outside the child.
//
// The file system cases need modules that Debian's kernels build as
// modules and the VM does not carry (overlay, loop, btrfs and its xor,
// raid6_pq, libcrc32c, zstd_compress), and two images. Without them those
// cases are skipped, saying so, and ctest leaves them out (GTEST_FILTER in
// tests/CMakeLists.txt); their checks of mountinfo and /proc/swaps are host
// tests too (ClosedFilesHost). To run them in the VM:
//   for each kernel package (apt-get download linux-image-<release>):
//     dpkg-deb --fsys-tarfile *.deb | tar -x ./lib/modules; put each .ko
//     (xz -d the 6.12 ones) in $MODS/<release>/
//   truncate -s 48M $MODS/ext4.img && mkfs.ext4 -F $MODS/ext4.img
//   truncate -s 128M $MODS/btrfs.img && mkfs.btrfs -f $MODS/btrfs.img
//   tools/cordon-pku-run --kernel 6.12 --file $MODS --env CORDON_ATTACK_MODULES=$MODS -- \
//       build/tests/pku_closed_files_attack_tests
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/btrfs.h>
#include <linux/loop.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cordon/cordon.h"
#include "tests/support/child.h"
#include "tests/support/judge.h"
#include "tests/support/temp_dir.h"

namespace {

using cordon::testing::Evidence;
using cordon::testing::ExpectHeldToTheEnd;
using cordon::testing::ExposeToJudge;
using cordon::testing::ExposeWhatOpened;
using cordon::testing::JudgeAttack;
using cordon::testing::kJudgeSecretSize;
using cordon::testing::LoadJudgeSecret;
using cordon::testing::LockDownForAttack;
using cordon::testing::TempDir;
using cordon::testing::WriteSecretToFile;

constexpr int kErrnoMode = CORDON_VIOLATION_ERRNO_FOR_TESTS;

// cordon_init() must have run. Trusted code writes the judge's secret to
// path; untrusted memory never holds it.
void WriteSecret(const std::string& path) {
  WriteSecretToFile(LoadJudgeSecret(), path);
}

bool HasFileSystem(const char* name) {
  std::ifstream f("/proc/filesystems");
  std::string line;
  while (std::getline(f, line)) {
    if (line.size() > strlen(name) &&
        line.compare(line.size() - strlen(name), std::string::npos, name) == 0 &&
        line[line.size() - strlen(name) - 1] == '\t')
      return true;
  }
  return false;
}

// A module from $CORDON_ATTACK_MODULES/<release>/<name>.ko, unless the
// kernel has what it provides (`present`) already (the test runs as root).
// "" or why not.
std::string EnsureModule(const char* name, bool present) {
  if (present) return "";
  const char* dir = getenv("CORDON_ATTACK_MODULES");
  if (dir == nullptr) return std::string(name) + " is not loaded and CORDON_ATTACK_MODULES is not set";
  utsname u{};
  uname(&u);
  const std::string ko = std::string(dir) + "/" + u.release + "/" + name + ".ko";
  const int fd = open(ko.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "cannot open " + ko + ": " + strerror(errno);
  const long r = syscall(SYS_finit_module, fd, "", 0);
  const int e = errno;
  close(fd);
  if (r != 0 && e != EEXIST) return "finit_module(" + ko + "): " + strerror(e);
  return "";
}

std::string EnsureOverlay() {
  if (std::string why = EnsureModule("overlay", HasFileSystem("overlay")); !why.empty()) return why;
  return HasFileSystem("overlay") ? "" : "overlay still missing from /proc/filesystems";
}

// In the child's own mount namespace: a tmpfs at base holding lower/,
// upper/, work/ and an overlay of them at merged/ (the layout of an
// overlay root, `overlayroot`, a live system or a container whose layers
// are visible: the upper and lower directories stay reachable).
void MountOverlay(const std::string& base) {
  CHILD_CHECK(unshare(CLONE_NEWNS) == 0);
  CHILD_CHECK(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
  CHILD_CHECK(mount("tmpfs", base.c_str(), "tmpfs", 0, "mode=0700") == 0);
  for (const char* d : {"lower", "upper", "work", "merged"})
    CHILD_CHECK(mkdir((base + "/" + d).c_str(), 0700) == 0);
  const std::string opts =
      "lowerdir=" + base + "/lower,upperdir=" + base + "/upper,workdir=" + base + "/work";
  if (mount("overlay", (base + "/merged").c_str(), "overlay", 0, opts.c_str()) != 0) {
    fprintf(stderr, "mount overlay: %s\n", strerror(errno));
    _exit(1);
  }
}

// The closed path itself must be refused, or the case proves nothing.
void ExpectClosed(const std::string& path) {
  errno = 0;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) ExposeWhatOpened(fd, path + " (the closed path itself)");
  CHILD_CHECK(errno == EACCES);
}

// The program names the secret's path on an overlay (on an overlay root
// that is every path: /etc/ssl/private/server.key). One link, one mount of
// the overlay, but its bytes live in the upper layer's file, a different
// inode on a different file system, which this process can reach: refused
// when named (it was accepted, and read after the lockdown, before the
// review's fix).
TEST(ClosedFilesAttack, AnOverlaysUpperLayerCannotReadAClosedFile) {
  if (const std::string why = EnsureOverlay(); !why.empty()) GTEST_SKIP() << why;
  const TempDir t("cordon-closed-attack");
  ASSERT_FALSE(t.path().empty());
  ExpectHeldToTheEnd(JudgeAttack([base = t.path()] {
    MountOverlay(base);
    CHILD_CHECK(cordon_init(nullptr) == CORDON_OK);
    const std::string named = base + "/merged/secret";
    WriteSecret(named);  // copied up: the bytes are in upper/secret
    // Held: refused when named (the overlay's layers are reachable here).
    const int c = cordon_lockdown_close_file(named.c_str());
    if (c == CORDON_OK) {
      LockDownForAttack(kErrnoMode);
      ExpectClosed(named);
      const std::string upper = base + "/upper/secret";
      const int fd = open(upper.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) ExposeWhatOpened(fd, upper + " (the overlay's upper layer)");
    }
    CHILD_CHECK(c == CORDON_E_FILE_REACHABLE);
  }));
}

// The other way round: the program names the real file (a key on the
// lower layer's file system), and the overlay shows it. Opening it there
// would pass Landlock on the overlay's path (granted: it is elsewhere), and
// overlayfs opens the real file with its mounter's credentials, from
// before the lockdown, which no Landlock domain restricts: refused when
// named.
TEST(ClosedFilesAttack, AnOverlayOfItsDirectoryCannotReadAClosedFile) {
  if (const std::string why = EnsureOverlay(); !why.empty()) GTEST_SKIP() << why;
  const TempDir t("cordon-closed-attack");
  ASSERT_FALSE(t.path().empty());
  ExpectHeldToTheEnd(JudgeAttack([base = t.path()] {
    MountOverlay(base);
    CHILD_CHECK(cordon_init(nullptr) == CORDON_OK);
    // Written beneath the overlay's back: the lower layer, as an image
    // built before the system started would hold it.
    const std::string named = base + "/lower/secret";
    WriteSecret(named);
    // Held: refused when named (an overlay's layer holds it).
    const int c = cordon_lockdown_close_file(named.c_str());
    if (c == CORDON_OK) {
      LockDownForAttack(kErrnoMode);
      ExpectClosed(named);
      const std::string merged = base + "/merged/secret";
      const int fd = open(merged.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) ExposeWhatOpened(fd, merged + " (an overlay whose lower layer holds it)");
    }
    CHILD_CHECK(c == CORDON_E_FILE_REACHABLE);
  }));
}

// Routes that need no second mount: every descriptor the process can still
// get on the file (writing stays open, O_PATH opens) and every system call
// that could move its bytes without a new open for reading.
TEST(ClosedFilesAttack, NoDescriptorTheProcessCanStillGetReadsIt) {
  const TempDir t("cordon-closed-attack");
  ASSERT_FALSE(t.path().empty());
  ExpectHeldToTheEnd(JudgeAttack([dir = t.path()] {
    CHILD_CHECK(cordon_init(nullptr) == CORDON_OK);
    const std::string named = dir + "/secret";
    WriteSecret(named);
    CHILD_CHECK(cordon_lockdown_close_file(named.c_str()) == CORDON_OK);
    LockDownForAttack(kErrnoMode);
    ExpectClosed(named);
    // Write-only and O_PATH descriptors open.
    const int w = open(named.c_str(), O_WRONLY | O_CLOEXEC);
    CHILD_CHECK(w >= 0);
    const int p = open(named.c_str(), O_PATH | O_CLOEXEC);
    CHILD_CHECK(p >= 0);
    // Mapping needs a readable descriptor, shared or private.
    for (const int flags : {MAP_SHARED, MAP_PRIVATE}) {
      void* m = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, flags, w, 0);
      if (m != MAP_FAILED) {
        Evidence(m, kJudgeSecretSize);
        ExposeToJudge();
        _exit(2);
      }
      CHILD_CHECK(errno == EACCES);
    }
    // Moving the bytes from it: each needs it readable.
    int pipefd[2];
    CHILD_CHECK(pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) == 0);
    // A memfd: no path, so the rules leave it readable.
    const int sink = memfd_create("sink", MFD_CLOEXEC);
    CHILD_CHECK(sink >= 0);
    for (const int src : {w, p}) {
      off_t off = 0;
      const ssize_t s = sendfile(sink, src, &off, kJudgeSecretSize);
      const ssize_t sp = splice(src, &off, pipefd[1], nullptr, kJudgeSecretSize, 0);
      loff_t in = 0, out = 0;
      const ssize_t c = copy_file_range(src, &in, sink, &out, kJudgeSecretSize, 0);
      char buf[64] = {};
      const ssize_t r = pread(src, buf, sizeof buf, 0);
      if (s > 0 || sp > 0 || c > 0 || r > 0) {
        Evidence(buf, sizeof buf);
        char back[64] = {};
        (void)!pread(sink, back, sizeof back, 0);
        Evidence(back, sizeof back);
        (void)!read(pipefd[0], back, sizeof back);
        Evidence(back, sizeof back);
        fprintf(stderr, "moved bytes: sendfile %zd splice %zd copy_file_range %zd pread %zd\n", s, sp, c, r);
        ExposeToJudge();
        _exit(2);
      }
    }
    // Reopened for reading through /proc/self/fd, from either descriptor.
    for (const int fd : {w, p}) {
      const std::string again = "/proc/self/fd/" + std::to_string(fd);
      const int r = open(again.c_str(), O_RDONLY | O_CLOEXEC);
      if (r >= 0) ExposeWhatOpened(r, again);
      CHILD_CHECK(errno == EACCES);
    }
    // openat2 with every resolution flag that changes the walk.
    struct {
      uint64_t flags, mode, resolve;
    } how = {O_RDONLY | O_CLOEXEC, 0, 0};
    // RESOLVE_NO_MAGICLINKS 0x02, NO_SYMLINKS 0x04, BENEATH 0x08, IN_ROOT 0x10,
    // relative to the file's directory.
    const int dfd = open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    CHILD_CHECK(dfd >= 0);
    for (const uint64_t resolve : {0x00ull, 0x02ull, 0x04ull, 0x08ull, 0x10ull}) {
      how.resolve = resolve;
      const long r = syscall(SYS_openat2, dfd, "secret", &how, sizeof how);
      if (r >= 0) ExposeWhatOpened(static_cast<int>(r), "openat2");
      CHILD_CHECK(errno == EACCES);
    }
    // A new user and mount namespace: every capability there, but mounts
    // (which would put a granted path above the file) stay refused.
    int back[2];
    CHILD_CHECK(pipe2(back, O_CLOEXEC) == 0);
    const pid_t kid = fork();
    CHILD_CHECK(kid >= 0);
    if (kid == 0) {
      // What the grandchild reads goes back to the judged child.
      auto hand_back = [&](const char* path, const char* how) {
        const int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return;
        char buf[64] = {};
        (void)!pread(fd, buf, sizeof buf, 0);
        (void)!write(back[1], buf, sizeof buf);
        fprintf(stderr, "read the closed file through %s\n", how);
        _exit(3);
      };
      if (unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0) {
        if (mount(dir.c_str(), "/mnt", nullptr, MS_BIND, nullptr) == 0)
          hand_back("/mnt/secret", "a bind mount in a new user namespace");
        if (chroot(dir.c_str()) == 0) hand_back("/secret", "a chroot in a new user namespace");
      }
      _exit(0);
    }
    close(back[1]);
    int st = 0;
    CHILD_CHECK(waitpid(kid, &st, 0) == kid);
    char got[64] = {};
    if (read(back[0], got, sizeof got) > 0) {
      Evidence(got, sizeof got);
      ExposeToJudge();
      _exit(2);
    }
    CHILD_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }));
}

// docs/lockdown.md: "at the lockdown each file is checked again: ... still
// one path to it". A file that the process, once it runs as another user,
// cannot reach because a directory on the way is another user's is not
// checked again (ClosedFilesForLockdown skips Resolve when by_permissions):
// a hard link made after it was named, outside that directory, goes
// unnoticed, and the lockdown succeeds with the file open through it. The
// set-up of a server: root loads the key, a worker drops to nobody and
// locks down later.
// A file that only a directory locks (the file itself 0644) cannot be
// checked again by a process that cannot search that directory, and a link
// elsewhere would pass the lock: the lockdown refuses it.
TEST(ClosedFilesAttack, ALinkMadeAfterNamingIsRefusedWhenADirectoryLocksTheFile) {
  const TempDir t("cordon-closed-attack");
  ASSERT_FALSE(t.path().empty());
  ASSERT_EQ(geteuid(), 0u) << "needs root: the worker drops to nobody";
  ExpectHeldToTheEnd(JudgeAttack([base = t.path()] {
    CHILD_CHECK(chmod(base.c_str(), 0755) == 0);
    const std::string locked = base + "/locked", open_dir = base + "/open";
    CHILD_CHECK(mkdir(locked.c_str(), 0700) == 0 && mkdir(open_dir.c_str(), 0755) == 0);
    CHILD_CHECK(cordon_init(nullptr) == CORDON_OK);
    const std::string named = locked + "/secret";
    WriteSecret(named);
    CHILD_CHECK(chmod(named.c_str(), 0644) == 0);  // the directory is the lock
    CHILD_CHECK(cordon_lockdown_close_file(named.c_str()) == CORDON_OK);
    // After naming: a second path, which the lockdown is documented to refuse.
    const std::string alias = open_dir + "/alias";
    CHILD_CHECK(link(named.c_str(), alias.c_str()) == 0);
    CHILD_CHECK(setresgid(65534, 65534, 65534) == 0 && setgroups(0, nullptr) == 0);
    CHILD_CHECK(setresuid(65534, 65534, 65534) == 0);
    // As nginx's worker does after setuid(): otherwise the lockdown fails
    // ("PLT pinning: cannot copy the pages: Permission denied").
    CHILD_CHECK(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == 0);
    cordon::testing::ReportFaultsOnTheCurrentStack();
    cordon_lockdown_options o;
    cordon_lockdown_options_init(&o);
    o.violation = kErrnoMode;
    const int s = cordon_lockdown_ex(&o);
    if (s == CORDON_OK) {
      fprintf(stderr, "the lockdown took a file with 2 links\n");
      const int fd = open(alias.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) ExposeWhatOpened(fd, alias + " (a hard link made after the file was named)");
    }
    CHILD_CHECK(s == CORDON_E_FILE_REACHABLE);  // refused, set-up still open
    CHILD_CHECK(!cordon_is_locked_down());
  }));
}

// A legitimate set-up that fails: a server that loads its key as root and
// drops to another user before cordon_lockdown() (the layout the docs give
// for closed files: "an nginx worker running as nobody for a key that root
// loaded"). setuid() makes the process non-dumpable, and the lockdown then
// fails on its own /proc/self/mem use with a message that does not say why
// ("PLT pinning: cannot copy the pages: Permission denied"); nginx happens
// to call prctl(PR_SET_DUMPABLE, 1) after setuid(), other servers do not,
// and no document asks for it.
TEST(ClosedFilesAttack, ALockdownAfterDroppingToAnotherUserSucceeds) {
  ASSERT_EQ(geteuid(), 0u) << "needs root: the worker drops to nobody";
  const auto o = cordon::testing::RunInChild([] {
    CHILD_CHECK(cordon_init(nullptr) == CORDON_OK);
    CHILD_CHECK(setresgid(65534, 65534, 65534) == 0 && setgroups(0, nullptr) == 0);
    CHILD_CHECK(setresuid(65534, 65534, 65534) == 0);
    CHILD_CHECK(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0);  // the kernel's doing
    cordon::testing::ReportFaultsOnTheCurrentStack();
    cordon_lockdown_options lo;
    cordon_lockdown_options_init(&lo);
    lo.violation = kErrnoMode;
    const int s = cordon_lockdown_ex(&lo);
    if (s != CORDON_OK) fprintf(stderr, "lockdown as nobody: %s\n", cordon_strerror(s));
    CHILD_CHECK(s == CORDON_OK);
    _exit(0);
  });
  EXPECT_TRUE(o.exited) << o.err;
  EXPECT_EQ(o.exit_code, 0) << o.err;
}

// A legitimate set-up that fails: /proc/swaps is not namespaced, so a
// process in a container (its own mount namespace and root) sees the
// host's swap files under the host's paths. The lockdown closes every swap
// file named there and refuses when one cannot be resolved: a container on
// a host that swaps to a file (Ubuntu's /swap.img by default) cannot lock
// down at all. Here the host is an ext4 image on a loop device with a swap
// file, and the container's view hides it under a tmpfs.
TEST(ClosedFilesAttack, AHostsSwapFileDoesNotStopALockdownInAContainer) {
  ASSERT_EQ(geteuid(), 0u) << "needs root: swapon and mounts";
  if (const std::string why = EnsureModule("loop", access("/dev/loop-control", F_OK) == 0); !why.empty())
    GTEST_SKIP() << why;
  const char* dir = getenv("CORDON_ATTACK_MODULES");
  if (dir == nullptr) GTEST_SKIP() << "CORDON_ATTACK_MODULES (with ext4.img, made by mkfs.ext4) is not set";
  const std::string image = std::string(dir) + "/ext4.img";
  const TempDir t("cordon-closed-attack");
  ASSERT_FALSE(t.path().empty());
  const auto o = cordon::testing::RunInChild([base = t.path(), image] {
    CHILD_CHECK(unshare(CLONE_NEWNS) == 0);
    CHILD_CHECK(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
    const int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    CHILD_CHECK(ctl >= 0);
    const int n = ioctl(ctl, LOOP_CTL_GET_FREE);
    CHILD_CHECK(n >= 0);
    const std::string dev = "/dev/loop" + std::to_string(n);
    int lfd = -1;
    for (int i = 0; i < 100 && lfd < 0; ++i) {
      lfd = open(dev.c_str(), O_RDWR | O_CLOEXEC);
      if (lfd < 0) usleep(10000);
    }
    CHILD_CHECK(lfd >= 0);
    const int ifd = open(image.c_str(), O_RDWR | O_CLOEXEC);
    CHILD_CHECK(ifd >= 0 && ioctl(lfd, LOOP_SET_FD, ifd) == 0);
    const std::string host = base + "/host";
    CHILD_CHECK(mkdir(host.c_str(), 0755) == 0);
    CHILD_CHECK(mount(dev.c_str(), host.c_str(), "ext4", 0, "") == 0);
    const std::string swapfile = host + "/swapfile";
    {
      constexpr size_t kPages = 1024;  // 4 MiB
      const int fd = open(swapfile.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      CHILD_CHECK(fd >= 0);
      static char page[4096];
      for (size_t i = 0; i < kPages; ++i) {
        memset(page, 0, sizeof page);
        if (i == 0) {  // mkswap's header: version 1, the last page, the signature
          const uint32_t version = 1, last = kPages - 1;
          memcpy(page + 1024, &version, 4);
          memcpy(page + 1028, &last, 4);
          memcpy(page + 4096 - 10, "SWAPSPACE2", 10);
        }
        CHILD_CHECK(write(fd, page, sizeof page) == static_cast<ssize_t>(sizeof page));
      }
      CHILD_CHECK(fsync(fd) == 0 && close(fd) == 0);
    }
    if (syscall(SYS_swapon, swapfile.c_str(), 0) != 0) {
      fprintf(stderr, "swapon(%s): %s\n", swapfile.c_str(), strerror(errno));
      _exit(1);
    }
    CHILD_CHECK(close(ifd) == 0 && close(lfd) == 0 && close(ctl) == 0);
    // The container's view: the host's file system is not in it.
    CHILD_CHECK(mount("tmpfs", host.c_str(), "tmpfs", 0, "") == 0);
    const pid_t kid = fork();
    CHILD_CHECK(kid >= 0);
    if (kid == 0) {
      CHILD_CHECK(cordon_init(nullptr) == CORDON_OK);
      cordon::testing::ReportFaultsOnTheCurrentStack();
      cordon_lockdown_options lo;
      cordon_lockdown_options_init(&lo);
      lo.violation = kErrnoMode;
      const int s = cordon_lockdown_ex(&lo);
      if (s != CORDON_OK) fprintf(stderr, "lockdown in the container: %s\n", cordon_strerror(s));
      _exit(s == CORDON_OK ? 0 : 3);
    }
    int st = 0;
    CHILD_CHECK(waitpid(kid, &st, 0) == kid);
    CHILD_CHECK(umount(host.c_str()) == 0);
    if (syscall(SYS_swapoff, swapfile.c_str()) != 0) fprintf(stderr, "swapoff: %s\n", strerror(errno));
    CHILD_CHECK(umount2(host.c_str(), MNT_DETACH) == 0);
    const int l2 = open(dev.c_str(), O_RDWR | O_CLOEXEC);
    if (l2 >= 0) (void)ioctl(l2, LOOP_CLR_FD, 0);
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 4);
  });
  EXPECT_TRUE(o.exited) << o.err;
  EXPECT_EQ(o.exit_code, 0) << o.err;
}

// A loop device bound to image, in the calling process's own mount
// namespace; its path. Exits 1 on failure (child side).
std::string AttachLoop(const std::string& image) {
  const int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  CHILD_CHECK(ctl >= 0);
  const int n = ioctl(ctl, LOOP_CTL_GET_FREE);
  CHILD_CHECK(n >= 0);
  const std::string dev = "/dev/loop" + std::to_string(n);
  int lfd = -1;
  for (int i = 0; i < 100 && lfd < 0; ++i) {
    lfd = open(dev.c_str(), O_RDWR | O_CLOEXEC);
    if (lfd < 0) usleep(10000);
  }
  CHILD_CHECK(lfd >= 0);
  const int ifd = open(image.c_str(), O_RDWR | O_CLOEXEC);
  CHILD_CHECK(ifd >= 0 && ioctl(lfd, LOOP_SET_FD, ifd) == 0);
  CHILD_CHECK(close(ifd) == 0 && close(lfd) == 0 && close(ctl) == 0);
  return dev;
}

std::string EnsureBtrfs() {
  if (HasFileSystem("btrfs")) return "";
  for (const char* m : {"xor", "raid6_pq", "libcrc32c", "zstd_compress", "btrfs"}) {
    const std::string why = EnsureModule(m, false);
    if (!why.empty() && strcmp(m, "zstd_compress") != 0) return why;  // built in on 6.12
  }
  return HasFileSystem("btrfs") ? "" : "btrfs still missing from /proc/filesystems";
}

// btrfs, the default of Fedora and openSUSE: the key's directory is on a
// subvolume mounted by itself (subvol=), the top level not mounted.
// stat() gives a subvolume's own device number, which no line of
// mountinfo carries, so the file is refused ("no mount of its file system
// in /proc/self/mountinfo holds it"): the provider cannot load a key on
// such a system. Were it accepted, the top level mounted as well would be
// a second route, and the lockdown must then refuse or close it.
TEST(ClosedFilesAttack, ABtrfsSubvolumeKeyIsClosedOrRefused) {
  ASSERT_EQ(geteuid(), 0u) << "needs root: mounts";
  if (const std::string why = EnsureModule("loop", access("/dev/loop-control", F_OK) == 0); !why.empty())
    GTEST_SKIP() << why;
  if (const std::string why = EnsureBtrfs(); !why.empty()) GTEST_SKIP() << why;
  const char* dir = getenv("CORDON_ATTACK_MODULES");
  if (dir == nullptr) GTEST_SKIP() << "CORDON_ATTACK_MODULES (with btrfs.img, made by mkfs.btrfs) is not set";
  const std::string image = std::string(dir) + "/btrfs.img";
  const TempDir t("cordon-closed-attack");
  ASSERT_FALSE(t.path().empty());
  const auto v = JudgeAttack([base = t.path(), image] {
    CHILD_CHECK(unshare(CLONE_NEWNS) == 0);
    CHILD_CHECK(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
    const std::string dev = AttachLoop(image);
    const std::string top = base + "/top", keys = base + "/keys";
    CHILD_CHECK(mkdir(top.c_str(), 0755) == 0 && mkdir(keys.c_str(), 0755) == 0);
    CHILD_CHECK(mount(dev.c_str(), top.c_str(), "btrfs", 0, "") == 0);
    {
      const int tfd = open(top.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      CHILD_CHECK(tfd >= 0);
      btrfs_ioctl_vol_args args{};
      strcpy(args.name, "@keys");
      CHILD_CHECK(ioctl(tfd, BTRFS_IOC_SUBVOL_CREATE, &args) == 0);
      CHILD_CHECK(close(tfd) == 0);
    }
    CHILD_CHECK(mount(dev.c_str(), keys.c_str(), "btrfs", 0, "subvol=@keys") == 0);
    // Fedora's layout: only the subvolumes are mounted.
    CHILD_CHECK(umount(top.c_str()) == 0);
    CHILD_CHECK(cordon_init(nullptr) == CORDON_OK);
    const std::string named = keys + "/secret";
    WriteSecret(named);
    struct stat st;
    CHILD_CHECK(stat(named.c_str(), &st) == 0);
    fprintf(stderr, "st_dev of the key %u:%u\n", major(st.st_dev), minor(st.st_dev));
    const int c = cordon_lockdown_close_file(named.c_str());
    if (c != CORDON_OK) {
      // A legitimate layout refused: the test fails on the exit code.
      fprintf(stderr, "cordon_lockdown_close_file(%s): %s\n", named.c_str(), cordon_strerror(c));
      _exit(4);
    }
    // Accepted. With the top level mounted too (openSUSE's snapshots, an
    // admin's /mnt/top) there is a second route, which the lockdown sees:
    // refused, set-up still open.
    CHILD_CHECK(mount(dev.c_str(), top.c_str(), "btrfs", 0, "") == 0);
    {
      cordon::testing::ReportFaultsOnTheCurrentStack();
      cordon_lockdown_options o;
      cordon_lockdown_options_init(&o);
      o.violation = kErrnoMode;
      const int s = cordon_lockdown_ex(&o);
      if (s == CORDON_OK) {
        const std::string other = top + "/@keys/secret";
        const int fd = open(other.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0) ExposeWhatOpened(fd, other + " (the top level of the subvolume's file system)");
      }
      CHILD_CHECK(s == CORDON_E_FILE_REACHABLE);
    }
    // Without it, locked down and closed.
    CHILD_CHECK(umount(top.c_str()) == 0);
    LockDownForAttack(kErrnoMode);
    ExpectClosed(named);
  });
  ExpectHeldToTheEnd(v);
}

// Swap closed at the lockdown covers swap files (/proc/swaps type "file")
// and, through /dev, swap partitions. A swap area on a loop device is a
// "partition" in /proc/swaps, and its backing file is an ordinary file,
// readable by its owner (root, with or without capabilities) and by no
// rule closed. Untrusted code allocates until the kernel swaps pages out,
// then reads the backing file. Before the fix the file read (64 MiB after
// the lockdown; with the 8 MiB of swap the VM allows here the secret's page
// was not among those swapped out); the lockdown now closes a loop swap
// area's backing file like a swap file, and the open must be refused.
TEST(ClosedFilesAttack, ASwapAreaOnALoopDeviceHoldsTrustedPagesInAReadableFile) {
  ASSERT_EQ(geteuid(), 0u) << "needs root: swapon";
  if (const std::string why = EnsureModule("loop", access("/dev/loop-control", F_OK) == 0); !why.empty())
    GTEST_SKIP() << why;
  const TempDir t("cordon-closed-attack");
  ASSERT_FALSE(t.path().empty());
  ASSERT_EQ(chmod(t.path().c_str(), 0755), 0);
  const std::string backing = t.path() + "/swap.img";
  constexpr size_t kSwapPages = 16384;  // 64 MiB
  {
    const int fd = open(backing.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    static char page[4096];
    for (size_t i = 0; i < kSwapPages; ++i) {
      memset(page, 0, sizeof page);
      if (i == 0) {
        const uint32_t version = 1, last = kSwapPages - 1;
        memcpy(page + 1024, &version, 4);
        memcpy(page + 1028, &last, 4);
        memcpy(page + 4096 - 10, "SWAPSPACE2", 10);
      }
      ASSERT_EQ(write(fd, page, sizeof page), static_cast<ssize_t>(sizeof page));
    }
    ASSERT_EQ(close(fd), 0);
  }
  // The loop device, bound in a helper child (AttachLoop exits on failure).
  std::string dev;
  {
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    const pid_t k = fork();
    ASSERT_GE(k, 0);
    if (k == 0) {
      const std::string d = AttachLoop(backing);
      (void)!write(p[1], d.c_str(), d.size());
      _exit(0);
    }
    close(p[1]);
    char buf[64] = {};
    const ssize_t n = read(p[0], buf, sizeof buf - 1);
    close(p[0]);
    int st = 0;
    waitpid(k, &st, 0);
    ASSERT_GT(n, 0);
    dev = buf;
  }
  ASSERT_EQ(syscall(SYS_swapon, dev.c_str(), 0), 0) << strerror(errno);
  const auto v = JudgeAttack([backing] {
    CHILD_CHECK(cordon_init(nullptr) == CORDON_OK);
    (void)LoadJudgeSecret();  // in trusted memory, which nothing locks in RAM
    LockDownForAttack(kErrnoMode);
    auto swap_used = [] {
      std::ifstream f("/proc/meminfo");
      std::string k;
      long total = 0, free_kb = 0, val;
      std::string unit;
      while (f >> k >> val) {
        if (k == "SwapTotal:") total = val;
        if (k == "SwapFree:") free_kb = val;
        std::getline(f, unit);
      }
      return total - free_kb;
    };
    // Pressure: untrusted memory, touched, until 8 MiB went to swap (more hangs the 256 MiB VM past its
    // time-out).
    std::vector<void*> chunks;
    constexpr size_t kChunk = 16 << 20;
    for (int i = 0; i < 24 && swap_used() < 8 * 1024; ++i) {
      void* c = mmap(nullptr, kChunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (c == MAP_FAILED) break;
      memset(c, 0x5a, kChunk);
      chunks.push_back(c);
    }
    fprintf(stderr, "swap used: %ld KiB after %zu MiB\n", swap_used(), chunks.size() * 16);
    for (void* c : chunks) munmap(c, kChunk);
    const int fd = open(backing.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      fprintf(stderr, "open(%s): %s\n", backing.c_str(), strerror(errno));
      CHILD_CHECK(errno == EACCES);  // held: the lockdown closed the backing file
      return;
    }
    const size_t size = kSwapPages * 4096;
    auto* buf =
        static_cast<char*>(mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    CHILD_CHECK(buf != MAP_FAILED);
    size_t got = 0;
    ssize_t r;
    while (got < size && (r = pread(fd, buf + got, size - got, static_cast<off_t>(got))) > 0)
      got += static_cast<size_t>(r);
    fprintf(stderr, "read %zu bytes of the swap area's backing file %s\n", got, backing.c_str());
    // The judge scans this process's untrusted memory, buf included; the
    // file should not have opened at all.
    ExposeToJudge();
    _exit(2);
  });
  EXPECT_EQ(syscall(SYS_swapoff, dev.c_str()), 0) << strerror(errno);
  {
    const int l = open(dev.c_str(), O_RDWR | O_CLOEXEC);
    if (l >= 0) {
      (void)ioctl(l, LOOP_CLR_FD, 0);
      close(l);
    }
  }
  fprintf(stderr, "%s", v.outcome.err.c_str());  // how much went to swap, what was read
  ExpectHeldToTheEnd(v);
}

}  // namespace
