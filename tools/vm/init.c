/* cordon-vm guest init: PID 1 inside the PKU virtual machine.
 *
 * It mounts the pseudo file systems, puts the program's stdout/stderr serial
 * lines (ttyS1/ttyS2) in raw mode, runs /cordon/prog with the argv and envp
 * that cordon-vm packed into /cordon/argv and /cordon/envp (NUL-separated)
 * and standard input from /cordon/stdin (or /dev/null),
 * brings up the loopback interface (servers under test listen on 127.0.0.1),
 * prints the outcome on the console as a marker line that cordon-vm parses,
 * and powers the machine off. It is linked statically so that it needs
 * nothing from the program's library closure. */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static void console(const char* msg) {
  int fd = open("/dev/ttyS0", O_WRONLY | O_NOCTTY);
  if (fd < 0) fd = 2;
  (void)!write(fd, msg, strlen(msg));
  if (fd != 2) close(fd);
}

static void power_off(void) {
  sync();
  reboot(RB_POWER_OFF);
  for (;;) pause();
}

static void fail(const char* what) {
  char buf[512];
  snprintf(buf, sizeof buf, "\nCORDON-VM-INIT-ERROR %s: %s\n", what, strerror(errno));
  console(buf);
  power_off();
}

/* Reads a NUL-separated list into a NULL-terminated vector. */
static char** read_list(const char* path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) fail(path);
  struct stat st;
  if (fstat(fd, &st) != 0) fail(path);
  char* data = malloc((size_t)st.st_size + 1);
  size_t got = 0;
  while (got < (size_t)st.st_size) {
    ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
    if (n <= 0) fail(path);
    got += (size_t)n;
  }
  close(fd);
  size_t count = 0;
  for (size_t i = 0; i < got; i++) count += data[i] == '\0';
  char** vec = calloc(count + 1, sizeof *vec);
  size_t k = 0, start = 0;
  for (size_t i = 0; i < got; i++)
    if (data[i] == '\0') {
      vec[k++] = data + start;
      start = i + 1;
    }
  return vec;
}

/* lo starts down in a fresh kernel; a TLS server under test listens on it. */
static void loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) fail("socket for the loopback interface");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) fail("read the loopback interface's flags");
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) fail("bring the loopback interface up");
  close(s);
}

static int open_raw(const char* tty) {
  int fd = open(tty, O_RDWR | O_NOCTTY);
  if (fd < 0) return -1;
  struct termios t;
  if (tcgetattr(fd, &t) == 0) {
    cfmakeraw(&t);
    tcsetattr(fd, TCSANOW, &t);
  }
  return fd;
}

int main(void) {
  mkdir("/proc", 0755);
  mkdir("/dev", 0755);
  mkdir("/sys", 0755);
  mkdir("/tmp", 01777);
  /* mkdir applies the umask (022): without this /tmp is 01755, and a
   * program that drops to another uid (nginx's worker, as nobody) cannot
   * create files there (tmpfile(), the lockdown's filter export). */
  chmod("/tmp", 01777);
  if (mount("proc", "/proc", "proc", 0, NULL) != 0) fail("mount /proc");
  if (mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) != 0 && errno != EBUSY) fail("mount /dev");
  mount("sysfs", "/sys", "sysfs", 0, NULL);
  /* Pseudo-terminals (/dev/ptmx opens the devpts instance at /dev/pts). */
  mkdir("/dev/pts", 0755);
  mount("devpts", "/dev/pts", "devpts", 0, "ptmxmode=0666");
  loopback_up();

  int out = open_raw("/dev/ttyS1");
  int err = open_raw("/dev/ttyS2");
  if (out < 0 || err < 0) fail("open program serial lines /dev/ttyS1 and /dev/ttyS2");

  char** argv = read_list("/cordon/argv");
  char** envp = read_list("/cordon/envp");
  console("\nCORDON-VM-START\n");
  pid_t pid = fork();
  if (pid < 0) fail("fork");
  if (pid == 0) {
    /* cordon-vm packs its standard input into /cordon/stdin when it had one. */
    int in = open("/cordon/stdin", O_RDONLY);
    if (in < 0) in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    chdir("/");
    execve("/cordon/prog", argv, envp);
    int e = errno;
    dprintf(2, "cordon-vm: cannot execute %s: %s\n", argv[0], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
  }
  int status = 0;
  for (;;) {
    pid_t w = wait(&status);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) fail("wait");
  }
  /* Let the serial lines drain before reporting. */
  tcdrain(out);
  tcdrain(err);
  char buf[128];
  if (WIFEXITED(status))
    snprintf(buf, sizeof buf, "\nCORDON-VM-EXIT status=%d\n", WEXITSTATUS(status));
  else
    snprintf(buf, sizeof buf, "\nCORDON-VM-EXIT signal=%d\n", WTERMSIG(status));
  console(buf);
  power_off();
  return 0;
}
