/* A plugin that keeps a random secret in Cordon's trusted domain, written
 * against the C API only and linked without libcordon: its cordon_* calls
 * bind to the libcordon.so the program preloads (host.c). The secret is
 * drawn inside the domain and written, before the lockdown, to the judge's
 * descriptor, which the test reads outside this process. The attack, in a
 * child, reads the secret directly: it must fault with SEGV_PKUERR on the
 * trusted domain's key at the secret's address, and prints whatever it
 * read otherwise, for the judge to compare. */
#define _GNU_SOURCE /* siginfo_t, MAP_ANONYMOUS under -std=c11 */
#include <cordon/cordon.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

enum { kSecretBytes = 32 };
/* The vault, in the trusted heap. Its address is kept in this plugin's
 * .bss, which untrusted code can write: the entries take it only when it
 * names a whole vault in the trusted domain that carries the magic only
 * trusted code writes (red-team shared/oracle_host.c aimed the pointer
 * inside the secret and read it back one byte at a time through Digest). */
struct Vault {
  uint64_t magic;
  unsigned char secret[kSecretBytes];
};
static const uint64_t kVaultMagic = 0x636f72646f6e5631ull;
static struct Vault* vault;

static struct Vault* CheckedVault(void) {
  struct Vault* v = vault;
  const cordon_domain_t trusted = cordon_trusted_domain();
  if (v == NULL || cordon_domain_of(v) != trusted || cordon_domain_of((char*)v + sizeof *v - 1) != trusted ||
      v->magic != kVaultMagic) {
    return NULL;
  }
  return v;
}
static cordon_entry fill_entry, digest_entry;
static int judge_fd = -1;

static uint64_t Fill(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a, (void)b, (void)c, (void)d, (void)e;
  struct Vault* v = vault;
  /* Set-up only (the config page says whether the lockdown came), once, on
   * a whole vault in the domain. */
  if (cordon_is_locked_down() || v == NULL || cordon_domain_of(v) != cordon_trusted_domain() ||
      cordon_domain_of((char*)v + sizeof *v - 1) != cordon_trusted_domain() || v->magic != 0) {
    return 1;
  }
  if (cordon_random_bytes(v->secret, kSecretBytes) != CORDON_OK) return 1;
  v->magic = kVaultMagic;
  const unsigned char* secret = v->secret;
  char hex[2 * kSecretBytes + 2];
  for (int i = 0; i < kSecretBytes; ++i) snprintf(hex + 2 * i, 3, "%02x", secret[i]);
  hex[2 * kSecretBytes] = '\n';
  return write(judge_fd, hex, 2 * kSecretBytes + 1) == 2 * kSecretBytes + 1 ? 0 : 1;
}

static uint64_t Digest(uint64_t nonce, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)b, (void)c, (void)d, (void)e;
  const struct Vault* v = CheckedVault();
  if (v == NULL) return 0;
  uint64_t h = 1469598103934665603ull ^ nonce; /* FNV-1a over the secret */
  for (int i = 0; i < kSecretBytes; ++i) h = (h ^ v->secret[i]) * 1099511628211ull;
  return h;
}

int plugin_start(int fd) {
  judge_fd = fd;
  int s = cordon_init(NULL);
  if (s != CORDON_OK) {
    fprintf(stderr, "plugin: cordon_init: %s\n", cordon_strerror(s));
    return 1;
  }
  if (cordon_calloc(1, sizeof *vault, (void**)&vault) != CORDON_OK ||
      cordon_register(cordon_trusted_domain(), Fill, "fill", &fill_entry) != CORDON_OK ||
      cordon_register(cordon_trusted_domain(), Digest, "digest", &digest_entry) != CORDON_OK ||
      cordon_call(fill_entry, 0, 0, 0, 0, 0) != 0) {
    fprintf(stderr, "plugin: set-up failed\n");
    return 1;
  }
  close(judge_fd);
  s = cordon_lockdown();
  if (s != CORDON_OK) {
    fprintf(stderr, "plugin: cordon_lockdown: %s\n", cordon_strerror(s));
    return 1;
  }
  printf("plugin: cordon %s, secret in domain %d (key %d), locked down\n", cordon_version(),
         cordon_domain_of(vault), cordon_domain_pkey(cordon_trusted_domain()));
  return 0;
}

uint64_t plugin_digest(uint64_t nonce) {
  return cordon_call(digest_entry, nonce, 0, 0, 0, 0);
}

struct Report {
  int signal, code, pkey;
  uintptr_t addr;
};
static struct Report* report;

static void OnFault(int sig, siginfo_t* info, void* context) {
  (void)context;
  report->signal = sig;
  report->code = info->si_code;
  report->pkey = (int)info->si_pkey;
  report->addr = (uintptr_t)info->si_addr;
  _exit(90);
}

/* 1 when the direct read stopped as it must. */
int plugin_attack(void) {
  report = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (report == MAP_FAILED) return 0;
  fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = OnFault;
    sa.sa_flags = SA_SIGINFO;
    if (cordon_sigaction(SIGSEGV, &sa, NULL) != CORDON_OK) _exit(91);
    char hex[2 * kSecretBytes + 1];
    for (int i = 0; i < kSecretBytes; ++i)
      snprintf(hex + 2 * i, 3, "%02x", ((volatile unsigned char*)vault->secret)[i]);
    printf("plugin: LEAKED %s\n", hex);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  const int ok = WIFEXITED(status) && WEXITSTATUS(status) == 90 && report->signal == SIGSEGV &&
                 report->code == 4 /* SEGV_PKUERR */ &&
                 report->pkey == cordon_domain_pkey(cordon_trusted_domain()) &&
                 report->addr == (uintptr_t)vault->secret;
  printf("plugin: direct read of the secret: signal %d, si_code %d, si_pkey %d, at the secret %s\n",
         report->signal, report->code, report->pkey, report->addr == (uintptr_t)vault->secret ? "yes" : "no");
  return ok;
}
