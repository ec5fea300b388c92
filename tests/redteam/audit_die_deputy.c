// Claim 3, confused deputy through the death operations: kOpDieFatal(a0, a1)
// called by untrusted code with a0 = the secret's address (trusted heap):
// the record's message is copied only from untrusted memory, and
// cordon_internal_die(a0, a1) writes a1 bytes from a0 to fd 2. Does the
// trusted domain write the secret to stderr (here a pipe the judge reads)?
// Judge: the parent reads the child's stderr and the stream, and compares
// the FNV hash of every 32-byte window of stderr with the trusted hash.
#include <cordon/cordon.h>
#include <sys/random.h>

#include "audit_judge.h"

extern uint64_t audit_call(uint64_t op, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3) __asm__(
    "_ZN6cordon5audit4CallEmmmmm");
enum { kOpDieFatal = 0x107 };

static uint8_t* g_secret;
static uint64_t fnv(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}
static uint64_t e_gen(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)b, (void)c, (void)d, (void)e;
  if (a == 1) return fnv(g_secret, 32);
  void* p = 0;
  if (cordon_malloc(32, &p) != 0 || getrandom(p, 32, 0) != 32) return 0;
  return (uint64_t)p;
}
static int child(int argc, char** argv) {
  (void)argc, (void)argv;
  dup2(1, 2);  // stderr to the judge's pipe too
  cordon_options o;
  cordon_options_init(&o);
  o.audit_fd = AUDIT_FD;
  if (cordon_init(&o) != 0) return 11;
  cordon_entry gen;
  cordon_register(cordon_trusted_domain(), e_gen, "gen", &gen);
  g_secret = (uint8_t*)cordon_call(gen, 0, 0, 0, 0, 0);
  printf("hash %016llx\n", (unsigned long long)cordon_call(gen, 1, 0, 0, 0, 0));
  if (cordon_lockdown() != 0) return 14;
  printf("MARK\n");
  audit_call(kOpDieFatal, (uint64_t)g_secret, 32, 1, 0);
  return 0;
}
int main(int argc, char** argv) {
  judged_run r = judge_run(child, argc, argv, 30, NULL);
  judge_describe(&r);
  unsigned long long want = 0;
  const char* h = strstr(r.out, "hash ");
  if (h) sscanf(h, "hash %llx", &want);
  const char* m = strstr(r.out, "MARK\n");
  size_t after = m ? r.out_len - (size_t)(m + 5 - r.out) : 0;
  int leaked = 0;
  for (size_t i = 0; m && i + 32 <= after; i++) leaked |= fnv((const uint8_t*)m + 5 + i, 32) == want;
  const char* rec = strstr(r.stream, "\"eventName\":\"fatal\"");
  if (rec) printf("record: %.*s\n", (int)(strchr(rec, '\n') - rec), rec);
  printf("judge: %zu bytes on stderr after the call\n", after);
  printf("RESULT: %s\n", leaked ? "OPEN (secret on stderr)" : "held");
  return leaked ? 0 : 1;
}
