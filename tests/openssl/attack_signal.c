/* attack_signal: signals that arrive while the cordon provider signs
 * (attacker review of issue 16). The attacked process: it loads a key with
 * OSSL_STORE ("cordon:/path", argv[1]) through the provider, installs a
 * SIGALRM handler of its own (sigaction, before the first signature, so the
 * provider's first-use lockdown takes it over), arms setitimer(ITIMER_REAL)
 * at a short interval and signs argv[3] messages with EVP_DigestSign.
 *
 * The handler is the attacker's reading of the interrupted state: its
 * first instructions store xmm0-15 and the upper halves of ymm0-15 (before
 * the compiler's code can touch them), then it writes to the dump (argv[2])
 * those registers, the whole ucontext, the XSAVE area fpregs points to (if
 * any), and the stack around its own stack pointer (64 KiB above, 16 KiB
 * below: the untrusted stack the runtime put it on, where an interrupted
 * trusted frame would be if it leaked). write(2) from an unreadable page
 * fails with EFAULT, so nothing but readable bytes get in.
 *
 * It also writes every signature (DER) to argv[2].sigs, one per line in hex,
 * so that the judge can check ECDSA's r never repeats. stdout: counts
 * ("signals N, with an empty context M, signatures K"), and the lockdown's
 * state. The judge is attack_signal_test.cc, outside this process. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/store.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

#include "cordon/cordon.h"

static int g_dump = -1;
static volatile sig_atomic_t g_signals, g_empty;
static uint8_t g_vec[16 * 32] __attribute__((aligned(64)));

static void DumpRange(const uint8_t* p, size_t n) {
  /* page by page: an unmapped or unreadable page fails alone */
  uintptr_t a = (uintptr_t)p & ~(uintptr_t)4095;
  uintptr_t end = (uintptr_t)p + n;
  for (; a < end; a += 4096) (void)!write(g_dump, (const void*)a, 4096);
}

static void OnAlarm(int sig, siginfo_t* si, void* ctx) {
  /* First: the vector registers as the handler found them. */
  __asm__ volatile(
      "vmovdqu %%ymm0, 0(%0)\n vmovdqu %%ymm1, 32(%0)\n vmovdqu %%ymm2, 64(%0)\n"
      "vmovdqu %%ymm3, 96(%0)\n vmovdqu %%ymm4, 128(%0)\n vmovdqu %%ymm5, 160(%0)\n"
      "vmovdqu %%ymm6, 192(%0)\n vmovdqu %%ymm7, 224(%0)\n vmovdqu %%ymm8, 256(%0)\n"
      "vmovdqu %%ymm9, 288(%0)\n vmovdqu %%ymm10, 320(%0)\n vmovdqu %%ymm11, 352(%0)\n"
      "vmovdqu %%ymm12, 384(%0)\n vmovdqu %%ymm13, 416(%0)\n vmovdqu %%ymm14, 448(%0)\n"
      "vmovdqu %%ymm15, 480(%0)\n"
      :
      : "r"(g_vec)
      : "memory");
  (void)sig;
  (void)si;
  g_signals++;
  ucontext_t* uc = ctx;
  (void)!write(g_dump, g_vec, sizeof g_vec);
  (void)!write(g_dump, uc, sizeof *uc);
  if (uc->uc_mcontext.fpregs != NULL) {
    DumpRange((const uint8_t*)uc->uc_mcontext.fpregs, 4096);
  }
  int all_zero = uc->uc_mcontext.fpregs == NULL;
  for (int i = 0; i < NGREG && all_zero; ++i) all_zero = uc->uc_mcontext.gregs[i] == 0;
  if (all_zero) g_empty++;
  uint8_t here;
  DumpRange(&here - 16384, 16384 + 65536);
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: attack_signal cordon:/path/key.pem DUMP COUNT\n");
    return 2;
  }
  const int count = atoi(argv[3]);
  g_dump = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  char sigs_path[4096];
  snprintf(sigs_path, sizeof sigs_path, "%s.sigs", argv[2]);
  FILE* sigs = fopen(sigs_path, "we");
  if (g_dump < 0 || sigs == NULL) {
    perror("attack_signal: dump");
    return 2;
  }
  OSSL_STORE_CTX* st = OSSL_STORE_open(argv[1], NULL, NULL, NULL, NULL);
  EVP_PKEY* key = NULL;
  for (OSSL_STORE_INFO* info; st != NULL && key == NULL && (info = OSSL_STORE_load(st)) != NULL;) {
    if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY) key = OSSL_STORE_INFO_get1_PKEY(info);
    OSSL_STORE_INFO_free(info);
  }
  OSSL_STORE_close(st);
  if (key == NULL) {
    fprintf(stderr, "attack_signal: cannot load %s\n", argv[1]);
    ERR_print_errors_fp(stderr);
    return 3;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = OnAlarm;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  if (sigaction(SIGALRM, &sa, NULL) != 0) {
    perror("attack_signal: sigaction");
    return 2;
  }
  const int ed = EVP_PKEY_is_a(key, "ED25519");
  int signed_ok = 0, armed = 0;
  for (int i = 0; i < count; ++i) {
    unsigned char msg[64];
    snprintf((char*)msg, sizeof msg, "message %d", i);
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t sig_len = sizeof sig;
    int ok = EVP_DigestSignInit_ex(md, NULL, ed ? NULL : "SHA256", NULL, NULL, key, NULL) == 1 &&
             EVP_DigestSign(md, sig, &sig_len, msg, strlen((char*)msg)) == 1;
    EVP_MD_CTX_free(md);
    if (!ok) {
      printf("attack_signal: signature %d failed (locked down: %d)\n", i, cordon_is_locked_down());
      ERR_print_errors_fp(stdout);
      break;
    }
    signed_ok++;
    for (size_t j = 0; j < sig_len; ++j) fprintf(sigs, "%02x", sig[j]);
    fprintf(sigs, " %s\n", (char*)msg);
    if (!armed) {
      /* After the first signature (the lockdown): a timer armed before it
       * is one of the refused signal sources before 6.12. */
      const char* us_env = getenv("ATTACK_SIGNAL_US");
      const long us = us_env != NULL ? atol(us_env) : 1500;
      struct itimerval it = {{us / 1000000, us % 1000000}, {us / 1000000, us % 1000000}};
      if (setitimer(ITIMER_REAL, &it, NULL) != 0) {
        printf("attack_signal: setitimer: %s\n", strerror(errno));
        break;
      }
      armed = 1;
    }
  }
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  fclose(sigs);
  close(g_dump);
  printf("attack_signal: locked down %d; signals %d, with an empty context %d; signatures %d of %d\n",
         cordon_is_locked_down(), (int)g_signals, (int)g_empty, signed_ok, count);
  return signed_ok == count ? 0 : 4;
}
