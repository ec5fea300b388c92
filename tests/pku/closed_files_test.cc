// Files closed at the lockdown (cordon_lockdown_close_file, docs/lockdown.md
// "Secrets' files"): a domain reads its secret from a file during set-up;
// after the lockdown no code of the process can open that file again, under
// any spelling, while the rest of the file system keeps working. Each attack
// runs in a judged child: the secret is the judge's, written to the file by
// trusted code, so a file that opens hands the judge its bytes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cordon/cordon.h"
#include "tests/support/child.h"
#include "tests/support/judge.h"
#include "tests/support/temp_dir.h"

namespace {

using cordon::testing::TempDir;

using cordon::testing::Evidence;
using cordon::testing::ExpectHeldToTheEnd;
using cordon::testing::ExposeToJudge;
using cordon::testing::ExposeWhatOpened;
using cordon::testing::JudgeAttack;
using cordon::testing::kJudgeSecretSize;
using cordon::testing::LoadJudgeSecret;
using cordon::testing::LockDownForAttack;
using cordon::testing::RunInChild;
using cordon::testing::WriteSecretToFile;

constexpr int kErrnoMode = CORDON_VIOLATION_ERRNO_FOR_TESTS;

// cordon_init(), the judge's secret, and DIR/secret holding it.
std::string SecretFile(const std::string& dir) {
  CHILD_CHECK(cordon_init(nullptr) == CORDON_OK);
  const std::string path = dir + "/secret";
  WriteSecretToFile(LoadJudgeSecret(), path);
  return path;
}

void ExpectCannotOpen(const std::string& path, int dirfd = AT_FDCWD) {
  // Reading is what is closed; writing stays open (docs/lockdown.md).
  for (const int flags : {O_RDONLY, O_RDWR, O_RDONLY | O_PATH}) {
    errno = 0;
    const int fd = openat(dirfd, path.c_str(), flags | O_CLOEXEC);
    if (fd >= 0 && (flags & O_PATH) != 0) {
      // An O_PATH descriptor reads nothing; reopening it through
      // /proc/self/fd must be refused like the file.
      const std::string again = "/proc/self/fd/" + std::to_string(fd);
      const int rfd = open(again.c_str(), O_RDONLY | O_CLOEXEC);
      if (rfd >= 0) ExposeWhatOpened(rfd, again + " (from an O_PATH descriptor of " + path + ")");
      CHILD_CHECK(errno == EACCES);
      close(fd);
      continue;
    }
    if (fd >= 0) ExposeWhatOpened(fd, path);
    if (errno != EACCES) {
      fprintf(stderr, "open(%s, %#x): %s, not EACCES\n", path.c_str(), flags, strerror(errno));
      _exit(1);
    }
  }
}

TEST(ClosedFiles, ASecretsFileCannotBeOpenedAfterTheLockdownUnderAnySpelling) {
  const TempDir a("cordon-closed"), b("cordon-closed");
  ASSERT_FALSE(a.path().empty() || b.path().empty());
  ExpectHeldToTheEnd(JudgeAttack([dir = a.path(), other_dir = b.path()] {
    const std::string secret = SecretFile(dir);
    // A sibling, which stays open; a link to the secret made now would be
    // a second path (the next test).
    const std::string sibling = dir + "/sibling";
    {
      const int fd = open(sibling.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
      CHILD_CHECK(fd >= 0 && write(fd, "ok", 2) == 2 && close(fd) == 0);
    }
    CHILD_CHECK(cordon_lockdown_close_file(secret.c_str()) == CORDON_OK);
    // Naming it twice, or by another spelling, is the same file.
    CHILD_CHECK(cordon_lockdown_close_file((dir + "/./secret").c_str()) == CORDON_OK);
    // Readable until the lockdown.
    {
      const int fd = open(secret.c_str(), O_RDONLY | O_CLOEXEC);
      CHILD_CHECK(fd >= 0 && close(fd) == 0);
    }
    LockDownForAttack(kErrnoMode);
    CHILD_CHECK(cordon_lockdown_close_file(sibling.c_str()) == CORDON_E_LOCKED);

    char cwd_up[4096] = "";
    CHILD_CHECK(getcwd(cwd_up, sizeof cwd_up) != nullptr);
    std::string up;
    for (const char* c = cwd_up; *c != '\0'; ++c) {
      if (*c != '/' && (c == cwd_up || c[-1] == '/')) up += "../";
    }
    const std::string tail = secret.substr(1);
    for (const std::string& path :
         {secret, "/" + tail, "//" + tail, dir + "/../" + dir.substr(5) + "/secret",
          "/proc/self/root/" + tail, "/proc/self/cwd/" + up + tail, "/proc/thread-self/root/" + tail}) {
      ExpectCannotOpen(path);
    }
    // Relative to a descriptor of its directory, and from inside it.
    const int d = open(dir.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    CHILD_CHECK(d >= 0);
    ExpectCannotOpen("secret", d);
    CHILD_CHECK(chdir(dir.c_str()) == 0);
    ExpectCannotOpen("secret");
    ExpectCannotOpen("./secret");
    // A symbolic link elsewhere: access is checked on what it names.
    const std::string link = other_dir + "/link";
    CHILD_CHECK(symlink(secret.c_str(), link.c_str()) == 0);
    ExpectCannotOpen(link);
    // A hard link in another directory, or the file moved there: refused
    // (a link across directories would be a second path).
    CHILD_DENIED(::link(secret.c_str(), (other_dir + "/hard").c_str()), EXDEV);
    CHILD_DENIED(rename(secret.c_str(), (other_dir + "/moved").c_str()), EXDEV);
    // A hard link beside it is a new name, which no rule opens.
    if (::link(secret.c_str(), (dir + "/beside").c_str()) == 0) ExpectCannotOpen(dir + "/beside");
    // Renamed in place: the rules follow the file, not its name.
    if (rename(secret.c_str(), (dir + "/renamed").c_str()) == 0) {
      ExpectCannotOpen(dir + "/renamed");
      CHILD_CHECK(rename((dir + "/renamed").c_str(), secret.c_str()) == 0);
    }
    // Its directory renamed (the same parent): the file's path changes,
    // the file stays closed.
    const std::string moved_dir = dir + "-moved";
    if (rename(dir.c_str(), moved_dir.c_str()) == 0) {
      ExpectCannotOpen(moved_dir + "/secret");
      CHILD_CHECK(rename(moved_dir.c_str(), dir.c_str()) == 0);
    }
    // What stays open: the sibling, and files elsewhere, old and new.
    {
      const int fd = open(sibling.c_str(), O_RDONLY | O_CLOEXEC);
      CHILD_CHECK(fd >= 0);
      char buf[2];
      CHILD_CHECK(read(fd, buf, 2) == 2 && memcmp(buf, "ok", 2) == 0 && close(fd) == 0);
      const int fresh = open((other_dir + "/fresh").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      CHILD_CHECK(fresh >= 0 && write(fresh, "x", 1) == 1 && close(fresh) == 0);
    }
    // A file made later in the secret's own directory can be written (a
    // certificate beside its key) but gets no rule, so it cannot be read
    // (docs/lockdown.md): keep secrets in a directory of their own.
    const std::string later = dir + "/later";
    const int w = open(later.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    CHILD_CHECK(w >= 0 && write(w, "x", 1) == 1 && close(w) == 0);
    CHILD_DENIED(open(later.c_str(), O_RDONLY | O_CLOEXEC), EACCES);
  }));
}

// Every way the lockdown would leave a second path to the file.
TEST(ClosedFiles, AFileThatAnotherPathReachesIsRefused) {
  const TempDir a("cordon-closed"), b("cordon-closed");
  ASSERT_FALSE(a.path().empty() || b.path().empty());
  const auto o = RunInChild([dir = a.path(), other = b.path()] {
    CHILD_CHECK(cordon_lockdown_close_file("/etc/hostname") == CORDON_E_NOT_INITIALIZED);
    CHILD_CHECK(cordon_init(nullptr) == CORDON_OK);
    const std::string f = dir + "/key";
    const int fd = open(f.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    CHILD_CHECK(fd >= 0 && close(fd) == 0);
    // Bad input.
    CHILD_CHECK(cordon_lockdown_close_file(nullptr) == CORDON_E_INVALID_ARGUMENT);
    CHILD_CHECK(cordon_lockdown_close_file("") == CORDON_E_INVALID_ARGUMENT);
    CHILD_CHECK(cordon_lockdown_close_file(dir.c_str()) == CORDON_E_INVALID_ARGUMENT);
    CHILD_CHECK(cordon_lockdown_close_file((dir + "/missing").c_str()) == CORDON_E_INVALID_ARGUMENT);
    CHILD_CHECK(cordon_lockdown_close_file("/proc/self/status") == CORDON_E_INVALID_ARGUMENT);
    // A second hard link, in another directory.
    CHILD_CHECK(link(f.c_str(), (other + "/alias").c_str()) == 0);
    CHILD_CHECK(cordon_lockdown_close_file(f.c_str()) == CORDON_E_FILE_REACHABLE);
    CHILD_CHECK(unlink((other + "/alias").c_str()) == 0);
    // A bind mount of its directory (in a mount namespace of the child's
    // own; the tests run as root natively and in the VM).
    CHILD_CHECK(unshare(CLONE_NEWNS) == 0);
    CHILD_CHECK(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
    CHILD_CHECK(mount(dir.c_str(), other.c_str(), nullptr, MS_BIND, nullptr) == 0);
    CHILD_CHECK(cordon_lockdown_close_file(f.c_str()) == CORDON_E_FILE_REACHABLE);
    CHILD_CHECK(umount(other.c_str()) == 0);
    // Bind-mounted alone.
    const std::string single = other + "/single";
    const int sfd = open(single.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    CHILD_CHECK(sfd >= 0 && close(sfd) == 0);
    CHILD_CHECK(mount(f.c_str(), single.c_str(), nullptr, MS_BIND, nullptr) == 0);
    CHILD_CHECK(cordon_lockdown_close_file(f.c_str()) == CORDON_E_FILE_REACHABLE);
    CHILD_CHECK(umount(single.c_str()) == 0);
    // With one path it is taken.
    CHILD_CHECK(cordon_lockdown_close_file(f.c_str()) == CORDON_OK);
    // A link made after it was named: the lockdown checks again, and set-up
    // stays open.
    CHILD_CHECK(link(f.c_str(), (other + "/late").c_str()) == 0);
    CHILD_CHECK(cordon_lockdown_ex(nullptr) == CORDON_E_FILE_REACHABLE);
    CHILD_CHECK(!cordon_is_locked_down());
    CHILD_CHECK(unlink((other + "/late").c_str()) == 0);
    // Open in a descriptor, then mapped: refused too, each named.
    const int held = open(f.c_str(), O_RDONLY | O_CLOEXEC);
    CHILD_CHECK(held >= 0);
    CHILD_CHECK(cordon_lockdown_ex(nullptr) == CORDON_E_LOCKDOWN_FAILED);
    const int wfd = open(f.c_str(), O_RDWR | O_CLOEXEC);
    CHILD_CHECK(wfd >= 0 && write(wfd, "abcd", 4) == 4);
    void* map = mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, held, 0);
    CHILD_CHECK(map != MAP_FAILED);
    CHILD_CHECK(close(held) == 0 && close(wfd) == 0);
    CHILD_CHECK(cordon_lockdown_ex(nullptr) == CORDON_E_LOCKDOWN_FAILED);
    CHILD_CHECK(munmap(map, 4096) == 0);
    // Replaced by another file under the same name.
    CHILD_CHECK(rename(f.c_str(), (dir + "/old").c_str()) == 0);
    const int nfd = open(f.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    CHILD_CHECK(nfd >= 0 && close(nfd) == 0);
    CHILD_CHECK(cordon_lockdown_ex(nullptr) == CORDON_E_LOCKDOWN_FAILED);
    CHILD_CHECK(!cordon_is_locked_down());
    _exit(0);
  });
  EXPECT_TRUE(o.exited) << o.err;
  EXPECT_EQ(o.exit_code, 0) << o.err;
  // Each refusal says what and why, on stderr.
  for (const char* line : {"has 2 hard links", "is reachable through 2 mounts", "descriptor ", "is mapped at",
                           "is another file now", "not a regular file",
                           "cordon_lockdown_close_file(): no path", "cannot be named"}) {
    EXPECT_NE(o.err.find(line), std::string::npos) << line << "\n" << o.err;
  }
}

}  // namespace
