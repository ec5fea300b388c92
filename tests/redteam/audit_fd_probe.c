// Claim 5 (the audit descriptor after lockdown), breadth probe in errno
// mode: system calls that act on a descriptor's file and are not in the
// filter's list (runtime/lockdown/seccomp_filter.cc, GuardAuditDescriptor),
// tried on the stream's descriptor. The stream is a regular file here
// (argv[1] file, the default) or a socket (argv[1] socket); each call's
// result is printed, and the judge (the parent) then checks the file's
// metadata and whether its content is still only the runtime's records.
#include <cordon/cordon.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include "audit_judge.h"

#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

struct xattr_args {
  uint64_t value;
  uint32_t size;
  uint32_t flags;
};

static void try(const char* what, long r) {
  printf("%-52s -> %ld%s%s\n", what, r, r < 0 ? " " : "", r < 0 ? strerror(errno) : "");
}

int main(int argc, char** argv) {
  const int sock = argc > 1 && strcmp(argv[1], "socket") == 0;
  char path[] = "/tmp/audit_fd_probe.XXXXXX";
  int sv[2] = {-1, -1};
  int fd;
  if (sock) {
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 2;
    fd = sv[1];
  } else {
    fd = mkstemp(path);
  }
  pid_t pid = fork();
  if (pid == 0) {
    if (sock) close(sv[0]);
    if (fd != AUDIT_FD) {
      dup2(fd, AUDIT_FD);
      close(fd);
    }
    cordon_options o;
    cordon_options_init(&o);
    o.audit_fd = AUDIT_FD;
    if (cordon_init(&o) != 0) _exit(11);
    cordon_lockdown_options lo;
    cordon_lockdown_options_init(&lo);
    lo.violation = CORDON_VIOLATION_ERRNO_FOR_TESTS;
    if (cordon_lockdown_ex(&lo) != 0) { printf("lockdown failed\n"); _exit(14); }
    setvbuf(stdout, NULL, _IONBF, 0);
    try("fchmodat2(fd, \"\", 0, AT_EMPTY_PATH)", syscall(452, AUDIT_FD, "", 0, AT_EMPTY_PATH));
    try("fchownat(fd, \"\", 65534, 65534, AT_EMPTY_PATH)", syscall(SYS_fchownat, AUDIT_FD, "", 65534, 65534, AT_EMPTY_PATH));
    struct timespec ts[2] = {{1, 0}, {1, 0}};
    try("utimensat(fd, NULL, {1,1}, 0)", syscall(SYS_utimensat, AUDIT_FD, NULL, ts, 0));
    struct timeval tv[2] = {{2, 0}, {2, 0}};
    try("futimesat(fd, NULL, {2,2})", syscall(SYS_futimesat, AUDIT_FD, NULL, tv));
    struct xattr_args xa = {(uint64_t) "forged", 6, 0};
    try("setxattrat(fd, \"\", AT_EMPTY_PATH, user.x)", syscall(463, AUDIT_FD, "", AT_EMPTY_PATH, "user.x", &xa, sizeof xa));
    try("fsetxattr(fd, user.y) [listed]", syscall(SYS_fsetxattr, AUDIT_FD, "user.y", "v", 1, 0));
    char lp[64];
    snprintf(lp, sizeof lp, "/tmp/audit_fd_probe_link.%d", getpid());
    try("linkat(fd, \"\", AT_FDCWD, /tmp/..., AT_EMPTY_PATH)", syscall(SYS_linkat, AUDIT_FD, "", AT_FDCWD, lp, AT_EMPTY_PATH));
    int wfd = open(lp, O_WRONLY | O_APPEND);
    try("open(the new link, O_WRONLY)", wfd);
    if (wfd >= 0) try("write(that, a forged line)", write(wfd, "{\"forged\":1}\n", 13));
    unlink(lp);
    try("fcntl(fd, F_GETFL) [listed]", syscall(SYS_fcntl, AUDIT_FD, F_GETFL));
    try("close_range(fd+1, ~0U, 0)", syscall(SYS_close_range, AUDIT_FD + 1, ~0U, 0));
    try("close_range(0, fd, CLOSE_RANGE_CLOEXEC) [listed]", syscall(SYS_close_range, 0, AUDIT_FD, 4));
    _exit(0);
  }
  if (sock) {  // the judge reads the stream (a reader that stops stalls the writer)
    close(sv[1]);
    char b[65536];
    while (read(sv[0], b, sizeof b) > 0) {}
  }
  int st;
  waitpid(pid, &st, 0);
  printf("judge: child %s %d\n", WIFEXITED(st) ? "exited" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
  if (!sock) {
    struct stat s;
    fstat(fd, &s);
    printf("judge: the stream's file: mode %o uid %d mtime %ld\n", s.st_mode & 07777, (int)s.st_uid, (long)s.st_mtime);
    char buf[1 << 16];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    printf("judge: forged line in the stream: %s\n", strstr(buf, "\"forged\"") ? "YES" : "no");
    unlink(path);
  }
  return 0;
}
