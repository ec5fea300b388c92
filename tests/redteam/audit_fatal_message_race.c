// Claim 2, the fatal record: a real fatal death (a gate call to an
// unregistered entry id) recorded with a message of the attacker's. The
// fatal path builds its message in g_messages (runtime/core/fatal.cc,
// key-0 .bss) and hands the trusted domain a pointer to it (kOpDieFatal),
// which copies it later; a second thread rewrites the slot in between.
// argv[1]: the offset of g_messages from g_anchor in this executable (the
// attacker knows its own binary: see audit_fatal_message_race.sh).
// Judge: the parent holds the stream: success = the child made the bad
// call, exited 70, and the fatal record's message is the forged one.
#include <cordon/cordon.h>
#include <pthread.h>

#include "audit_judge.h"

char g_anchor[16];
static char* g_slots;
static volatile int g_go;
static const char kForged[] = "cordon: all is well (forged)\n";

static void* racer(void* arg) {
  (void)arg;
  while (!g_go) {}
  for (;;) {
    // Blindly, over and over: the last write before the trusted copy wins.
    for (int i = 0; i < 4; i++) {
      volatile char* s = g_slots + 512 * i;
      for (size_t k = 0; k < sizeof kForged - 1; k++) s[k] = kForged[k];
    }
  }
  return NULL;
}

static uint64_t e_nop(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a, (void)b, (void)c, (void)d, (void)e;
  return 0;
}

static int child(int argc, char** argv) {
  if (argc < 2) return 9;
  g_slots = g_anchor + strtol(argv[1], NULL, 0);
  cordon_options o;
  cordon_options_init(&o);
  o.audit_fd = AUDIT_FD;
  if (cordon_init(&o) != 0) { printf("init failed\n"); return 11; }
  cordon_entry e;
  cordon_register(cordon_trusted_domain(), e_nop, "nop", &e);
  if (cordon_lockdown() != 0) { printf("lockdown failed\n"); return 14; }
  pthread_t b;
  pthread_create(&b, NULL, racer, NULL);
  g_go = 1;
  for (volatile int i = 0; i < 1000000; i++) {}
  printf("calling unregistered entry 777\n");
  e.id = 777;
  cordon_call(e, 0, 0, 0, 0, 0);
  return 0;
}

static int judge_once(int argc, char** argv) {
  judged_run r = judge_run(child, argc, argv, 30, NULL);
  judge_describe(&r);
  const char* rec = strstr(r.stream, "\"eventName\":\"fatal\"");
  if (rec) printf("record: %.*s\n", (int)(strchr(rec, '\n') - rec), rec);
  int forged = rec && strstr(rec, "all is well (forged)") && strstr(r.out, "calling unregistered");
  int exited70 = !r.timed_out && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 70;
  int open = forged && exited70;
  printf("RESULT: %s\n", open ? "OPEN (a real fatal death recorded with a forged message)" : "held");
  return open;
}

int main(int argc, char** argv) {
  for (int run = 1; run <= 20; run++) {
    printf("-- run %d\n", run);
    if (judge_once(argc, argv)) return 0;
  }
  return 1;
}
