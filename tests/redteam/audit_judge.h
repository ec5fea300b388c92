// Outside judge for the audit-stream attacks: the parent holds the other
// end of a socketpair (the stream, as docs/audit.md recommends) and a pipe
// of the child's stdout; it collects both until the child ends or a
// deadline passes, then kills it. The child (the attacked process) gets
// the stream as fd AUDIT_FD.
#pragma once
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AUDIT_FD 3

typedef struct {
  char* stream;  // everything read from the stream
  size_t stream_len;
  char* out;  // the child's stdout
  size_t out_len;
  int status;      // wait status, or -1 when the judge killed it
  int timed_out;   // 1: the deadline passed with the child alive
} judged_run;

static double judge_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void judge_append(char** buf, size_t* len, const char* p, size_t n) {
  *buf = (char*)realloc(*buf, *len + n + 1);
  memcpy(*buf + *len, p, n);
  *len += n;
  (*buf)[*len] = 0;
}

// Runs child_main in a child process; returns what was seen. stop_when:
// optional predicate on the child's stdout so far, making the judge stop
// waiting early (it still gives the stream 300 ms more).
static judged_run judge_run(int (*child_main)(int, char**), int argc, char** argv, double deadline_s,
                            int (*stop_when)(const char* out)) {
  judged_run r = {0};
  int sv[2], op[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || pipe(op) != 0) { perror("judge"); exit(2); }
  pid_t pid = fork();
  if (pid == 0) {
    close(sv[0]);
    close(op[0]);
    if (dup2(sv[1], AUDIT_FD) < 0) _exit(2);
    if (sv[1] != AUDIT_FD) close(sv[1]);
    dup2(op[1], 1);
    close(op[1]);
    setvbuf(stdout, NULL, _IONBF, 0);
    _exit(child_main(argc, argv));
  }
  close(sv[1]);
  close(op[1]);
  double end = judge_now() + deadline_s, stop_at = 0;
  int open_s = 1, open_o = 1;
  char buf[65536];
  while (open_s || open_o) {
    double t = judge_now();
    if (stop_at == 0 && stop_when && r.out && stop_when(r.out)) stop_at = t + 0.3;
    if (t > end || (stop_at != 0 && t > stop_at)) break;
    struct pollfd p[2] = {{open_s ? sv[0] : -1, POLLIN, 0}, {open_o ? op[0] : -1, POLLIN, 0}};
    if (poll(p, 2, 50) < 0 && errno != EINTR) break;
    if (p[0].revents) {
      ssize_t n = read(sv[0], buf, sizeof buf);
      if (n <= 0) open_s = 0; else judge_append(&r.stream, &r.stream_len, buf, (size_t)n);
    }
    if (p[1].revents) {
      ssize_t n = read(op[0], buf, sizeof buf);
      if (n <= 0) open_o = 0; else judge_append(&r.out, &r.out_len, buf, (size_t)n);
    }
  }
  int st, got = 0;
  // The descriptors close as the child exits, a moment before it is a zombie.
  for (int i = 0; i < 20 && !(got = waitpid(pid, &st, WNOHANG) == pid); i++) usleep(50000);
  if (got) {
    r.status = st;
  } else {
    r.timed_out = 1;
    kill(-pid, SIGKILL);  // its process group, if it made one (fork children)
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    r.status = -1;
  }
  if (!r.stream) judge_append(&r.stream, &r.stream_len, "", 0);
  if (!r.out) judge_append(&r.out, &r.out_len, "", 0);
  return r;
}

static int judge_count(const char* hay, const char* needle) {
  int n = 0;
  for (const char* p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
  return n;
}

static void judge_describe(const judged_run* r) {
  if (r->timed_out) printf("judge: child still alive at the deadline (killed by the judge)\n");
  else if (WIFEXITED(r->status)) printf("judge: child exited with %d\n", WEXITSTATUS(r->status));
  else if (WIFSIGNALED(r->status)) printf("judge: child died of signal %d\n", WTERMSIG(r->status));
  printf("judge: %zu bytes of stream, %d records\n", r->stream_len, judge_count(r->stream, "\n"));
}
