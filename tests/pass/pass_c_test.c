/* End-to-end test of the pass plugin from C, run in the PKU VM: a program
 * whose trusted state is reachable only through CORDON_TRUSTED functions.
 * Each check prints "ok" or "FAIL" with what it saw; exit status 0 only if
 * all passed. Faults are provoked in forked children, whose SIGSEGV handler
 * reports si_code and si_pkey through a shared page. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vault_api.h"

static const uint64_t kSecret = 0x5ec7e75ec7e75ec7ull;
static uint64_t* g_secret; /* where vault_init put it (in trusted memory) */
static int g_failures;

static void check(int ok, const char* what, long long seen) {
  printf("%s: %s (saw %lld)\n", ok ? "ok" : "FAIL", what, seen);
  if (!ok) ++g_failures;
}

/* ---- trusted ---- */

CORDON_TRUSTED int vault_init(uint64_t secret) {
  void* p = NULL;
  if (g_secret != NULL || cordon_malloc(sizeof(uint64_t), &p) != CORDON_OK) return -1;
  g_secret = (uint64_t*)p;
  *g_secret = secret;
  return 0;
}

CORDON_TRUSTED const uint64_t* vault_secret_address(void) {
  return g_secret;
}

CORDON_TRUSTED int vault_check(uint64_t guess) {
  return *g_secret == guess;
}

CORDON_TRUSTED long vault_add6(long a, long b, long c, long d, long e, long f) {
  return (long)(*g_secret & 0xff) + a + b * 10 + c * 100 + d * 1000 + e * 10000 + f * 100000;
}

CORDON_TRUSTED double vault_scale(double x, int times, float y) {
  return x * times + y + (double)(*g_secret != 0);
}

/* ---- untrusted ---- */

struct report {
  int signal, code;
  uint32_t pkey;
  uint64_t leaked;
};
static struct report* g_report;

static void on_segv(int sig, siginfo_t* info, void* ctx) {
  (void)ctx;
  g_report->signal = sig;
  g_report->code = info->si_code;
  g_report->pkey = info->si_pkey;
  _exit(90);
}

/* Runs fn in a child; the report says how it ended. */
static struct report in_child(void (*fn)(void)) {
  struct report* shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  memset(shared, 0, sizeof *shared);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    g_report = shared;
    sigaction(SIGSEGV, &sa, NULL);
    fn();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  struct report r = *shared;
  if (WIFEXITED(status) && WEXITSTATUS(status) != 90) r.signal = -WEXITSTATUS(status);
  munmap(shared, 4096);
  return r;
}

static uint32_t read_pkru(void) {
  uint32_t eax, edx;
  __asm__ volatile("rdpkru" : "=a"(eax), "=d"(edx) : "c"(0));
  return eax;
}

static void read_secret_directly(void) {
  g_report->leaked = *(volatile const uint64_t*)vault_secret_address();
}

/* The generated entry named name, or one with zero addresses. */
static cordon_generated_entry entry_named(const char* name) {
  cordon_generated_entry e = {0};
  for (size_t i = 0; i < cordon_generated_entry_count(); ++i) {
    cordon_generated_entry x;
    if (cordon_generated_entry_get(i, &x) == CORDON_OK && strcmp(x.name, name) == 0) e = x;
  }
  return e;
}

typedef int (*check_fn)(uint64_t);
static void call_body_directly(void) {
  /* The body's own address, as untrusted code could find it: no gate. */
  const cordon_generated_entry e = entry_named("vault_check");
  if (e.body != 0) g_report->leaked = (uint64_t)((check_fn)e.body)(kSecret);
}

int main(void) {
  /* Before cordon_init, a gated entry stops the process with a message. */
  fflush(stdout);
  pid_t early = fork();
  if (early == 0) {
    (void)vault_check(1);
    _exit(0);
  }
  int status = 0;
  waitpid(early, &status, 0);
  check(WIFEXITED(status) && WEXITSTATUS(status) == CORDON_VIOLATION_EXIT,
        "calling a trusted function before cordon_init() stops with the violation status",
        WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));

  int s = cordon_init(NULL);
  if (s != CORDON_OK) {
    fprintf(stderr, "cordon_init: %s\n", cordon_strerror(s));
    return 2;
  }
  const int pkey = cordon_domain_pkey(cordon_trusted_domain());
  check(cordon_generated_entry_count() == 8, "cordon_init registered the 8 generated entry points",
        (long long)cordon_generated_entry_count());
  check(vault_init(kSecret) == 0, "vault_init through its gate", 0);
  check(cordon_domain_of(g_secret) == cordon_trusted_domain(), "the secret lies in trusted memory",
        cordon_domain_of(g_secret));
  check(vault_check(kSecret) == 1 && vault_check(kSecret + 1) == 0, "vault_check answers through its gate",
        0);
  check(vault_add6(1, 2, 3, 4, 5, 6) == 0xc7 + 654321, "six integer arguments cross",
        vault_add6(1, 2, 3, 4, 5, 6));
  const double scaled = vault_scale(1.5, 4, 0.25f);
  check(scaled == 7.25, "double, int and float arguments and a double result cross",
        (long long)(scaled * 100));
  check(vault_check_twice(kSecret) == 2, "trusted-to-trusted call across files", vault_check_twice(kSecret));

  /* A pointer to a trusted function is its gate, not its body. */
  check_fn pointer = vault_check;
  const cordon_generated_entry e = entry_named("vault_check");
  check((uintptr_t)pointer == e.gate && e.gate != e.body, "&vault_check is the gated entry", 0);
  check(pointer(kSecret) == 1, "a call through a function pointer goes through the gate", 0);
  check(vault_check_indirect(vault_check, kSecret) == 1,
        "trusted code calls through a pointer without a second gate", 0);
  const uint32_t inside = vault_pkru_inside();
  check(((inside >> (2 * pkey)) & 3) == 0 && ((read_pkru() >> (2 * pkey)) & 1) == 1,
        "the body runs with the domain's key open, the caller with it closed", inside);
  /* The entry is registered in the runtime table too. */
  check(cordon_call(e.entry, kSecret, 0, 0, 0, 0) == 1, "cordon_call reaches the same body", 0);

  /* Untrusted code cannot read the secret, nor run the body without the gate. */
  struct report r = in_child(read_secret_directly);
  check(r.signal == SIGSEGV && r.code == 4 /* SEGV_PKUERR */ && (int)r.pkey == pkey && r.leaked == 0,
        "a direct read of the secret faults with SEGV_PKUERR on the trusted key", r.code * 100 + r.pkey);
  r = in_child(call_body_directly);
  check(r.signal == SIGSEGV && r.code == 4 && (int)r.pkey == pkey && r.leaked == 0,
        "calling the body without its gate faults with SEGV_PKUERR", r.code * 100 + r.pkey);

  /* Every WRPKRU in the program is a listed gate site: 335 runtime + 2 per entry. */
  size_t in_gates = 0;
  for (size_t i = 0; i < cordon_inspection_count(); ++i) {
    cordon_inspection_entry ie;
    if (cordon_inspection_get(i, &ie) == CORDON_OK && ie.verdict == 0 && ie.action == 0) ++in_gates;
  }
  check(cordon_gate_site_count() == 335 + 2 * 8 && in_gates == cordon_gate_site_count(),
        "the inspector found every gate site, generated ones included, and treated them as safe",
        (long long)in_gates);

  printf("%s\n", g_failures == 0 ? "all passed" : "FAILED");
  return g_failures == 0 ? 0 : 1;
}
