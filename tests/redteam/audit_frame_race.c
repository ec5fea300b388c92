// Claim 2 (no false records through the runtime's writer): a real refused
// system call recorded as another one. In kill mode the SIGSYS frame of a
// call made by untrusted code is copied by the runtime to the untrusted
// stack (docs/signals.md), and the violation handler hands that copy to
// kOpDieSyscall, which reads it later (runtime/audit/audit.cc, DieSyscall):
// docs/audit.md says the record is "only as true as that memory was when
// the signal arrived", but a second thread rewrites it in between. Here
// thread T calls ptrace(PTRACE_ATTACH, parent) on a stack of the program's
// own; thread B scans that stack for the copied siginfo (si_signo SIGSYS,
// si_code SYS_SECCOMP) and rewrites si_syscall to getpid (39) and
// si_call_addr to 0x4141414141.
// Judge: the parent holds the stream: success = a syscall_refused record
// whose syscall is not 101, while the child said it called ptrace and died
// with exit 70 (the death itself is real).
#include <cordon/cordon.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "audit_judge.h"

#define STACK (256 * 1024)
static uint8_t* g_stack;
static volatile int g_go;

static void* racer(void* arg) {
  (void)arg;
  while (!g_go) {}
  for (;;) {
    for (size_t off = 0; off + 32 <= STACK; off += 4) {
      volatile int* w = (volatile int*)(g_stack + off);
      if (w[0] == SIGSYS && w[2] == 1 /* SYS_SECCOMP */ && w[6] == 101) {
        *(volatile uint64_t*)(g_stack + off + 16) = 0x4141414141ull;  // si_call_addr
        w[6] = 39;                                                      // si_syscall: getpid
      }
    }
  }
  return NULL;
}

static void* violator(void* arg) {
  (void)arg;
  printf("calling ptrace\n");
  g_go = 1;
  for (volatile int i = 0; i < 1000000; i++) {}
  syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, getppid(), 0, 0);
  printf("ptrace returned\n");
  return NULL;
}

static int child(int argc, char** argv) {
  (void)argc, (void)argv;
  cordon_options o;
  cordon_options_init(&o);
  o.audit_fd = AUDIT_FD;
  if (cordon_init(&o) != 0) { printf("init failed\n"); return 11; }
  g_stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (cordon_lockdown() != 0) { printf("lockdown failed\n"); return 14; }
  pthread_t b, t;
  pthread_create(&b, NULL, racer, NULL);
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setstack(&a, g_stack, STACK);
  pthread_create(&t, &a, violator, NULL);
  pthread_join(t, NULL);
  return 0;
}

static int judge_once(int argc, char** argv) {
  judged_run r = judge_run(child, argc, argv, 30, NULL);
  judge_describe(&r);
  const char* key = "\"eventName\":\"syscall_refused\"";
  const char* rec = strstr(r.stream, key);
  int said = strstr(r.out, "calling ptrace") != NULL;
  if (rec) {
    const char* end = strchr(rec, '\n');
    printf("record: %.*s\n", (int)(end ? end - rec : 300), rec);
  }
  int nr = -1;
  const char* s = rec ? strstr(rec, "\"name\":\"syscall\",\"type\":\"int\",\"value\":") : NULL;
  if (s) nr = atoi(s + strlen("\"name\":\"syscall\",\"type\":\"int\",\"value\":"));
  int exited70 = !r.timed_out && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 70;
  printf("judge: child called ptrace: %s; recorded syscall: %d; exit 70: %s\n", said ? "yes" : "no", nr,
         exited70 ? "yes" : "no");
  int open = said && rec && nr != 101 && exited70;
  printf("RESULT: %s\n", open ? "OPEN (the refused ptrace recorded as another call)" : "held");
  return open;
}

// Each run is one real death; the race is won in about a third of them.
int main(int argc, char** argv) {
  for (int run = 1; run <= 20; run++) {
    printf("-- run %d\n", run);
    if (judge_once(argc, argv)) return 0;
  }
  return 1;
}
