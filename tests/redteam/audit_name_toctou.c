// Claim 3 (nothing secret leaks into the stream), confused deputy through a
// TOCTOU: the writer's UntrustedString() (runtime/audit/audit.cc) measures
// an untrusted string with strnlen, checks [s, s+n+1) with
// IsUntrustedRange, and later Line::String() reads it again up to NUL or
// 400 bytes, with the trusted domain's rights. Another thread removes the
// NUL in between: the record then carries the bytes after the string. The
// string ends at the last bytes of an untrusted page right below a page the
// program tagged with the trusted key (docs/lockdown.md "Pages the program
// tagged itself"), where a trusted entry keeps 32 random bytes.
// The record is a gate_calls one, made by calling the runtime's
// audit::Call(kOpGateCalls, 1, 0, name, 0) directly after the lockdown.
// Judge: the parent holds the stream's other end; it compares the FNV hash
// of the 32 bytes found after "AB" in any entry_name with the hash the
// trusted entry printed at set-up.
#include <cordon/cordon.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>

#include "audit_judge.h"

extern uint64_t audit_call(uint64_t op, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3) __asm__(
    "_ZN6cordon5audit4CallEmmmmm");
enum { kOpGateCalls = 0x105 };

static uint8_t* g_pages;  // page 0 untrusted, page 1 tagged with the trusted key
static volatile int g_stop;

static uint64_t fnv(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

static uint64_t e_gen(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a, (void)b, (void)c, (void)d, (void)e;
  uint8_t* s = g_pages + 4096;
  if (getrandom(s, 32, 0) != 32) return 0;
  for (int i = 0; i < 32; i++)
    if (s[i] == 0) s[i] = 0x5a;
  s[32] = 0;
  return fnv(s, 32);
}

static void* racer(void* arg) {
  volatile char* c = (volatile char*)arg;
  // Each state held for a varying time, so that some toggle period matches
  // the window whatever the speed (natively, or in the VM's TCG).
  for (unsigned n = 0; !g_stop; n = n * 1103515245u + 12345u) {
    const unsigned hold = (n >> 16) & 255;
    *c = 'B';
    for (volatile unsigned i = 0; i < hold; i++) {}
    *c = 0;
    for (volatile unsigned i = 0; i < hold; i++) {}
  }
  return NULL;
}

static int child(int argc, char** argv) {
  int tries = argc > 1 ? atoi(argv[1]) : 20000;
  g_pages = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (g_pages == MAP_FAILED) return 10;
  memset(g_pages, 0, 8192);
  cordon_options o;
  cordon_options_init(&o);
  o.audit_fd = AUDIT_FD;
  if (cordon_init(&o) != 0) { printf("init failed\n"); return 11; }
  cordon_domain_t t = cordon_trusted_domain();
  if (syscall(SYS_pkey_mprotect, g_pages + 4096, 4096, PROT_READ | PROT_WRITE, cordon_domain_pkey(t)) != 0) {
    printf("pkey_mprotect failed\n");
    return 12;
  }
  cordon_entry gen;
  if (cordon_register(t, e_gen, "gen", &gen) != 0) return 13;
  printf("hash %016llx\n", (unsigned long long)cordon_call(gen, 0, 0, 0, 0, 0));
  if (cordon_lockdown() != 0) { printf("lockdown failed\n"); return 14; }
  // Untrusted code cannot read the page (check it really is trusted): a
  // fork child that tries dies of SIGSEGV.
  pid_t c = fork();
  if (c == 0) {
    printf("untrusted read of the tagged page: %d\n", *(volatile uint8_t*)(g_pages + 4096));
    _exit(0);
  }
  int st;
  waitpid(c, &st, 0);
  printf("untrusted read of the tagged page: %s %d\n", WIFSIGNALED(st) ? "died of signal" : "exited",
         WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
  char* s = (char*)g_pages + 4096 - 2;
  s[0] = 'A';
  s[1] = 0;
  pthread_t th;
  pthread_create(&th, NULL, racer, s + 1);
  uint64_t bad = 0;
  for (int i = 0; i < tries; i++) {
    uint64_t r = audit_call(kOpGateCalls, 1, 0, (uint64_t)s, 0);
    if (r != 0) bad++;
  }
  g_stop = 1;
  pthread_join(th, NULL);
  printf("done %d calls, %llu non-zero results\n", tries, (unsigned long long)bad);
  return 0;
}

static int hexval(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; }

int main(int argc, char** argv) {
  judged_run r = judge_run(child, argc, argv, 60, NULL);
  judge_describe(&r);
  printf("child says: %s", r.out);
  unsigned long long want = 0;
  const char* h = strstr(r.out, "hash ");
  if (!h || sscanf(h, "hash %llx", &want) != 1) { printf("RESULT: no hash from the child\n"); return 2; }
  const char* key = "\"name\":\"entry_name\",\"type\":\"const char*\",\"value\":\"";
  int names = 0, longer = 0, leaked = 0;
  for (const char* p = r.stream; (p = strstr(p, key)) != NULL;) {
    p += strlen(key);
    uint8_t v[512];
    size_t n = 0;
    while (*p && *p != '"' && n < sizeof v) {
      if (p[0] == '\\' && p[1] == 'u') { v[n++] = (uint8_t)(hexval(p[4]) * 16 + hexval(p[5])); p += 6; }
      else if (p[0] == '\\') { v[n++] = (uint8_t)p[1]; p += 2; }
      else v[n++] = (uint8_t)*p++;
    }
    names++;
    if (n > 2) longer++;
    if (n >= 34 && v[0] == 'A' && v[1] == 'B' && fnv(v + 2, 32) == want) {
      if (!leaked) {
        printf("leaked bytes: ");
        for (int i = 2; i < 34; i++) printf("%02x", v[i]);
        printf("\n");
      }
      leaked++;
    }
  }
  printf("judge: %d gate_calls names, %d longer than the string, %d with the secret (hash %016llx)\n", names,
         longer, leaked, want);
  printf("RESULT: %s\n", leaked ? "OPEN (trusted bytes in the stream)" : "held");
  return leaked ? 0 : 1;
}
