// Target 2, a violation that the keyed stream never records: the fatal
// record (event 11) is written only when g_recording (runtime/core/fatal.cc)
// was 0, and from outside the trusted domain only when the die path's
// .Ldie_stack_taken bit (gate.S) was clear: both are key-0 .bss, which
// untrusted code writes. docs/audit.md: "No key-0 memory decides what a
// record says or whether it is written."
// Also, after lockdown: a scan of every readable untrusted mapping (and
// /proc/self/environ) for the key, as its 64 hex digits (the environment's
// form) or as its 32 bytes (tested against the judge's FNV hash of them).
// Judge (parent): random key in CORDON_AUDIT_KEY and a key file; holds the
// socket; then runs `cordon-audit validate --key-file` and `summary` on the
// stream. OPEN: the child exited 70 after the bad call, the stream has no
// fatal record for it, and validate accepts the stream.
// argv[1]: g_recording's offset from cordon_gate_die (nm; see the .sh).
#include <cordon/cordon.h>
#include <fcntl.h>
#include <sys/random.h>

#include "audit_judge.h"

extern char cordon_gate_die[];
static uint64_t fnv(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}
static uint64_t e_nop(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a, (void)b, (void)c, (void)d, (void)e;
  return 0;
}
static uint64_t g_keyhash, g_hexhash;
static int ishex(const uint8_t* p) {
  for (int i = 0; i < 64; i++)
    if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f') || (p[i] >= 'A' && p[i] <= 'F'))) return 0;
  return 1;
}
static int g_pipe[2];

static unsigned pkru(void) {
  unsigned a, d, c = 0;
  __asm__ volatile("rdpkru" : "=a"(a), "=d"(d) : "c"(c));
  return a;
}
// Every mapping whose key this PKRU can read: search it.
static void scan(void) {
  FILE* f = fopen("/proc/self/smaps", "r");
  char line[512];
  unsigned long lo = 0, hi = 0;
  char perms[8] = "";
  unsigned p = pkru();
  int hits = 0;
  size_t scanned = 0;
  while (f && fgets(line, sizeof line, f)) {
    unsigned long a, b;
    int key;
    if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3) { lo = a, hi = b; continue; }
    if (sscanf(line, "ProtectionKey: %d", &key) != 1) continue;
    if (perms[0] != 'r' || (p >> (2 * key)) & 1 || strstr(line, "vvar")) continue;
    if (lo >= 0xffffffffff600000ul) continue;
    // Page by page through a pipe: a page that would fault (SIGBUS past a
    // file's end) gives EFAULT instead. Windows across pages: 64 bytes kept.
    static uint8_t buf[4096 + 64];
    memset(buf, 0, sizeof buf);
    for (unsigned long pg = lo; pg < hi; pg += 4096) {
      memmove(buf, buf + 4096, 64);
      if (write(g_pipe[1], (void*)pg, 4096) != 4096) { memset(buf, 0, sizeof buf); continue; }
      if (read(g_pipe[0], buf + 64, 4096) != 4096) return;
      scanned += 4096;
      for (unsigned long i = 0; i < 4096 + 32; i++) {
        unsigned long at = pg - 64 + i;
        if (i + 64 <= sizeof buf && ishex(buf + i) && fnv(buf + i, 64) == g_hexhash) { printf("HEX at %lx\n", at); hits++; }
        if (fnv(buf + i, 32) == g_keyhash) { printf("RAW at %lx\n", at); hits++; }
      }
    }
  }
  if (f) fclose(f);
  int e = open("/proc/self/environ", O_RDONLY);
  char env[65536];
  ssize_t n = e >= 0 ? read(e, env, sizeof env) : -1;
  for (ssize_t i = 0; i + 64 <= n; i++)
    if (fnv((uint8_t*)env + i, 64) == g_hexhash) { printf("HEX in /proc/self/environ\n"); hits++; }
  printf("scanned %zu bytes, %d key hits; getenv: \"%s\"\n", scanned, hits,
         getenv("CORDON_AUDIT_KEY") ? getenv("CORDON_AUDIT_KEY") : "(none)");
}

static int child(int argc, char** argv) {
  dup2(1, 2);
  // The judge's knowledge, for the scan's verdict only: FNV hashes of the
  // key's bytes and of its hex digits (the child never handles the key).
  g_keyhash = strtoull(getenv("A2_RAWHASH"), NULL, 16);
  g_hexhash = strtoull(getenv("A2_HEXHASH"), NULL, 16);
  cordon_options o;
  cordon_options_init(&o);
  o.audit_fd = AUDIT_FD;
  if (cordon_init(&o) != 0) { printf("init failed\n"); return 11; }
  cordon_entry e;
  cordon_register(cordon_trusted_domain(), e_nop, "nop", &e);
  if (pipe(g_pipe) != 0) return 12;
  if (cordon_lockdown() != 0) { printf("lockdown failed\n"); return 14; }
  scan();
  if (argc > 1 && strcmp(argv[1], "scan") != 0) {
    *(volatile int*)(cordon_gate_die + strtol(argv[1], NULL, 0)) = 1;  // g_recording
    const unsigned char* p = (const unsigned char*)cordon_gate_die;
    size_t i = 0;
    while (i < 0x200 && !(p[i] == 0x48 && p[i + 1] == 0x8d && p[i + 2] == 0x25)) i++;
    int32_t disp;
    memcpy(&disp, p + i + 3, 4);
    *(volatile int*)(p + i + 7 + disp - 16384 - 64) = 1;  // .Ldie_stack_taken
  }
  printf("calling unregistered entry 777\n");
  e.id = 777;
  cordon_call(e, 0, 0, 0, 0, 0);
  return 0;
}
int main(int argc, char** argv) {
  uint8_t key[32];
  if (getrandom(key, 32, 0) != 32) return 2;
  char hex[65];
  for (int i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", key[i]);
  setenv("CORDON_AUDIT_KEY", hex, 1);
  char h[32];
  snprintf(h, sizeof h, "%llx", (unsigned long long)fnv(key, 32));
  setenv("A2_RAWHASH", h, 1);
  snprintf(h, sizeof h, "%llx", (unsigned long long)fnv((uint8_t*)hex, 64));
  setenv("A2_HEXHASH", h, 1);
  FILE* kf = fopen("/tmp/attack2.key", "w");
  fprintf(kf, "%s\n", hex);
  fclose(kf);
  // The child is a fork of this judge: none of the key on this stack.
  explicit_bzero(key, sizeof key);
  explicit_bzero(hex, sizeof hex);
  fflush(stdout);
  judged_run r = judge_run(child, argc, argv, 30, NULL);
  printf("%s", r.out);
  judge_describe(&r);
  FILE* sf = fopen("/tmp/attack2.stream", "w");
  fwrite(r.stream, 1, r.stream_len, sf);
  fclose(sf);
  int fatal = judge_count(r.stream, "\"eventName\":\"fatal\"");
  printf("judge: fatal records: %d\n", fatal);
  fflush(stdout);
  int v = system("/work/main/build/tools/cordon-audit validate --key-file /tmp/attack2.key /tmp/attack2.stream");
  printf("judge: validate exit %d\n", WEXITSTATUS(v));
  fflush(stdout);
  (void)!system("/work/main/build/tools/cordon-audit summary --key-file /tmp/attack2.key /tmp/attack2.stream | tail -8");
  int leaked = strstr(r.out, "HEX ") || strstr(r.out, "RAW ");
  int silent = WIFEXITED(r.status) && WEXITSTATUS(r.status) == 70 && fatal == 0 && WEXITSTATUS(v) == 0;
  printf("RESULT key: %s\n", leaked ? "OPEN (key bytes readable after lockdown)" : "held");
  printf("RESULT record: %s\n", silent ? "OPEN (violation death, no fatal record, stream validates)" : "held");
  return leaked || silent ? 0 : 1;
}
