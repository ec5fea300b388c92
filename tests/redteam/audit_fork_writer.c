// Claim 1/5 (fail closed; fork children): the writer lock of the audit
// stream (State::writer, runtime/audit/audit.cc) is copied into a fork()
// child. A fork made while another thread is writing a record gives the
// child a lock held by a thread id it does not have: its first record,
// whatever it is (a refused call in kill mode, a key fault, a fatal death),
// spins for ever. No signal handler is needed. Here the parent's thread
// records without pause (gate_calls through audit::Call); the main thread
// forks; each child checks with a probe thread whether a record still gets
// through, and the first child in which it does not makes a refused call
// (ptrace) and keeps a heartbeat thread running.
// Judge: the parent holds the stream and the children's stdout; success =
// a child made the violation, no syscall_refused record came, and its
// heartbeat went on for 3 s.
#include <cordon/cordon.h>
#include <pthread.h>
#include <sys/syscall.h>

#include "audit_judge.h"

extern uint64_t audit_call(uint64_t op, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3) __asm__(
    "_ZN6cordon5audit4CallEmmmmm");
enum { kOpGateCalls = 0x105 };

static volatile int g_probe_done;

static void* flusher(void* arg) {
  (void)arg;
  for (;;) audit_call(kOpGateCalls, 1, 0, (uint64_t) "flusher", 0);
  return NULL;
}
static void* probe(void* arg) {
  (void)arg;
  audit_call(kOpGateCalls, 1, 0, (uint64_t) "probe", 0);
  g_probe_done = 1;
  return NULL;
}
static void* heartbeat(void* arg) {
  (void)arg;
  for (int i = 0;; i++) {
    printf("heartbeat %d (pid %d)\n", i, getpid());
    usleep(100000);
  }
  return NULL;
}

static int child(int argc, char** argv) {
  // argv[1] control: no recording thread, so no fork lands inside a write;
  // the child's violation is then recorded (its first record: the probe's).
  const int control = argc > 1 && strcmp(argv[1], "control") == 0;
  setpgid(0, 0);
  cordon_options o;
  cordon_options_init(&o);
  o.audit_fd = AUDIT_FD;
  if (cordon_init(&o) != 0) { printf("init failed\n"); return 11; }
  if (cordon_lockdown() != 0) { printf("lockdown failed\n"); return 14; }
  pthread_t f;
  if (!control) pthread_create(&f, NULL, flusher, NULL);
  for (int attempt = 1; attempt <= 200; attempt++) {
    usleep(1000);
    pid_t c = fork();
    if (c < 0) { printf("fork failed\n"); return 15; }
    if (c == 0) {
      pthread_t p;
      pthread_create(&p, NULL, probe, NULL);
      for (int i = 0; i < 30 && !g_probe_done; i++) usleep(10000);
      if (g_probe_done && !control) _exit(0);
      if (control) {
        printf("VIOLATION ptrace (control, probe %s)\n", g_probe_done ? "done" : "stuck");
        syscall(SYS_ptrace, 16, getppid(), 0, 0);
        _exit(99);
      }
      printf("fork child %d: stranded at attempt %d\n", getpid(), attempt);
      pthread_t hb;
      pthread_create(&hb, NULL, heartbeat, NULL);
      usleep(150000);
      printf("VIOLATION ptrace\n");
      syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, getppid(), 0, 0);
      printf("VIOLATION RETURNED\n");
      for (;;) pause();
    }
    int st;
    waitpid(c, &st, 0);
    if (control) {
      printf("control child: %s %d\n", WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
      return 0;
    }
  }
  printf("never stranded\n");
  return 20;
}

static int after_violation(const char* out) {
  const char* v = strstr(out, "VIOLATION ");
  return v && judge_count(v, "heartbeat") >= 30;
}

int main(int argc, char** argv) {
  judged_run r = judge_run(child, argc, argv, 120, after_violation);
  judge_describe(&r);
  const char* s = strstr(r.out, "fork child");
  if (s) printf("child: %.*s\n", (int)(strchr(s, '\n') - s), s);
  const char* v = strstr(r.out, "VIOLATION ");
  int beats = v ? judge_count(v, "heartbeat") : 0;
  int recs = judge_count(r.stream, "\"eventName\":\"syscall_refused\"");
  printf("judge: violation made: %s; heartbeats after it: %d; syscall_refused records: %d\n", v ? "yes" : "no",
         beats, recs);
  int open = v && recs == 0 && beats >= 30;
  printf("RESULT: %s\n", open ? "OPEN (a fork child's violation unrecorded, the child alive)" : "held");
  return open ? 0 : 1;
}
