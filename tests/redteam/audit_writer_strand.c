// Claim 1 (records cannot be suppressed; fail closed): the writer's
// one-writer lock (State::writer in runtime/audit/audit.cc) is a thread id
// that Record::Emit() sets before it numbers and writes a record and clears
// after. A signal that arrives while a thread holds it runs the program's
// handler (the runtime parks the trusted frame and leaves the domain,
// docs/signals.md); a handler that never returns (here: it ends its thread
// with SYS_exit) leaves the lock held by a thread that no longer exists.
// Every later record of every other thread then spins for ever in Emit():
// a refused system call (kill mode), a pkey fault without a handler, or a
// fatal death hangs with all signals blocked, writes no record and no
// message, and the rest of the process runs on.
// argv[1]: syscall | fault | fatal (the violation made once the lock is stranded);
// or publish: a thread publishes code (cordon_code_publish) after the lock
// is stranded; the publish takes effect, its thread hangs in the record, and
// the main thread runs the new code: code runs that the stream never shows;
// argv[2] control: the same violation with the lock left alone (it is recorded and kills).
// Judge: the parent holds the stream; success = the child made its
// violation, no record of it came, and the child's heartbeat thread went on
// printing for 3 s after it.
#include <cordon/cordon.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>

#include "audit_judge.h"

extern uint64_t audit_call(uint64_t op, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3) __asm__(
    "_ZN6cordon5audit4CallEmmmmm");
enum { kOpGateCalls = 0x105 };

static volatile int g_probe_done;
static uint8_t* g_secret;

static uint64_t e_gen(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a, (void)b, (void)c, (void)d, (void)e;
  void* p = 0;
  if (cordon_malloc(32, &p) != 0) return 0;
  if (getrandom(p, 32, 0) != 32) return 0;
  return (uint64_t)p;
}

static void on_usr1(int sig, siginfo_t* si, void* uc) {
  (void)sig, (void)si, (void)uc;
  syscall(SYS_exit, 0);  // this thread only; never returns to the parked frame
}

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

static void* volatile g_block;
static void* publisher(void* arg) {
  (void)arg;
  static const unsigned char code[] = {0xb8, 42, 0, 0, 0, 0xc3};  // mov eax, 42; ret
  void* b = NULL;
  if (cordon_code_reserve(8192, &b) != 0) { printf("reserve failed\n"); return NULL; }
  g_block = b;  // the publish below goes through before its record hangs
  printf("publish: %d\n", cordon_code_publish(b, code, sizeof code));
  return NULL;
}

static void* heartbeat(void* arg) {
  (void)arg;
  for (int i = 0;; i++) {
    printf("heartbeat %d\n", i);
    usleep(100000);
  }
  return NULL;
}

static int child(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "syscall";
  cordon_options o;
  cordon_options_init(&o);
  o.audit_fd = AUDIT_FD;
  if (cordon_init(&o) != 0) { printf("init failed\n"); return 11; }
  cordon_entry gen;
  cordon_register(cordon_trusted_domain(), e_gen, "gen", &gen);
  g_secret = (uint8_t*)cordon_call(gen, 0, 0, 0, 0, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_usr1;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGUSR1, &sa, 0) != 0) { printf("sigaction failed\n"); return 12; }
  if (cordon_lockdown() != 0) { printf("lockdown failed\n"); return 14; }
  int attempt;
  // argv[2] "control": the same violation without stranding the lock first.
  const int control = argc > 2 && strcmp(argv[2], "control") == 0;
  for (attempt = 1; !control && attempt <= 2000; attempt++) {
    pthread_t f;
    pthread_create(&f, NULL, flusher, NULL);
    unsigned r;
    getrandom(&r, sizeof r, 0);
    usleep(200 + r % 2000);
    pthread_kill(f, SIGUSR1);
    pthread_join(f, NULL);
    g_probe_done = 0;
    pthread_t p;
    pthread_create(&p, NULL, probe, NULL);
    for (int i = 0; i < 50 && !g_probe_done; i++) usleep(10000);
    if (!g_probe_done) break;  // the probe waits for a writer that is gone
    pthread_join(p, NULL);
  }
  if (attempt > 2000) { printf("never stranded\n"); return 20; }
  if (!control) printf("stranded after %d attempts\n", attempt);
  pthread_t hb;
  pthread_create(&hb, NULL, heartbeat, NULL);
  usleep(150000);
  if (strcmp(mode, "publish") == 0) {
    printf("VIOLATION (not one: a publish) %s\n", mode);
    pthread_t pt;
    pthread_create(&pt, NULL, publisher, NULL);
    for (int i = 0; i < 100 && g_block == NULL; i++) usleep(10000);
    usleep(100000);
    printf("ran published code at %p: %d\n", g_block, ((int (*)(void))g_block)());
    for (;;) pause();
  }
  printf("VIOLATION %s\n", mode);
  if (strcmp(mode, "fault") == 0) {
    printf("read %d\n", *(volatile uint8_t*)g_secret);  // SEGV_PKUERR, no handler: should die
  } else if (strcmp(mode, "fatal") == 0) {
    cordon_entry bad = gen;
    bad.id = 777;
    cordon_call(bad, 0, 0, 0, 0, 0);  // an unregistered entry id: the fatal path
  } else {
    syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, getppid(), 0, 0);  // refused in kill mode
  }
  printf("VIOLATION RETURNED\n");
  for (;;) pause();
}

static int after_violation(const char* out) {
  const char* v = strstr(out, "VIOLATION ");
  return v && judge_count(v, "heartbeat") >= 30;  // 3 s of life after it
}

int main(int argc, char** argv) {
  judged_run r = judge_run(child, argc, argv, 120, after_violation);
  judge_describe(&r);
  const char* v = strstr(r.out, "VIOLATION ");
  const char* s = strstr(r.out, "stranded after");
  if (s) printf("child: %.*s\n", (int)(strchr(s, '\n') - s), s);
  int beats = v ? judge_count(v, "heartbeat") : 0;
  int recs = judge_count(r.stream, "\"eventName\":\"code_publish\"") + judge_count(r.stream, "\"eventName\":\"syscall_refused\"") +
             judge_count(r.stream, "\"eventName\":\"pkey_fault\"") + judge_count(r.stream, "\"eventName\":\"fatal\"");
  printf("judge: violation made: %s; heartbeats after it: %d; syscall_refused/pkey_fault/fatal records: %d\n",
         v ? "yes" : "no", beats, recs);
  int ran = strstr(r.out, ": 42\n") != NULL;
  if (strcmp(argc > 1 ? argv[1] : "", "publish") == 0) printf("judge: published code ran: %s\n", ran ? "yes" : "no");
  int open = v && recs == 0 && beats >= 30 && r.timed_out && (strcmp(argc > 1 ? argv[1] : "", "publish") != 0 || ran);
  printf("RESULT: %s\n", open ? "OPEN (violation unrecorded, process alive)" : "held");
  return open ? 0 : 1;
}
