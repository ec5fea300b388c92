/* api_icount: exact user-mode instruction count of one cordon_call() round
 * trip through the C API only, so that the same source measures the static
 * library (api_icount) and libcordon.so (api_icount_shared). A child
 * process runs the call between two markers; the parent single-steps it
 * with ptrace and counts. Run it in the PKU VM or natively:
 *   tools/cordon-pku-run -- build/bench/api_icount
 *   tools/cordon-pku-run -- build/bench/api_icount_shared
 * Prints "cordon_call round trip: N instructions, W WRPKRU (static|shared)".
 * With --max N it exits 1 when the count is above N (a budget test). */
#define _GNU_SOURCE
#include <cordon/cordon.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef CORDON_ICOUNT_SHARED
#define BUILD "shared"
#else
#define BUILD "static"
#endif

/* The WRPKRU bytes as data: as an immediate in a compare they would be an
 * unintended WRPKRU in this program's code, which cordon_init() refuses. */
static const unsigned char kWrpkruBytes[3] = {0x0f, 0x01, 0xef};

static uint64_t Twice(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)b, (void)c, (void)d, (void)e;
  return 2 * a;
}

/* The markers, each a lone ret: the parent counts every instruction after
 * icount_begin's ret and before the call into icount_end. */
void icount_begin(void);
void icount_end(void);
__asm__(".text\n"
        ".type icount_begin, @function\nicount_begin:\n\tret\n.size icount_begin, 1\n"
        ".type icount_end, @function\nicount_end:\n\tret\n.size icount_end, 1\n");

static int Child(void) {
  if (cordon_init(NULL) != CORDON_OK) return 10;
  cordon_entry e;
  if (cordon_register(cordon_trusted_domain(), Twice, "twice", &e) != CORDON_OK) return 11;
  if (cordon_call(e, 1, 0, 0, 0, 0) != 2) return 12; /* attach the thread, warm up */
  if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0) return 13;
  raise(SIGSTOP);
  icount_begin();
  const uint64_t r = cordon_call(e, 21, 0, 0, 0, 0);
  icount_end();
  return r == 42 ? 0 : 14;
}

int main(int argc, char** argv) {
  long max = -1;
  if (argc == 3 && strcmp(argv[1], "--max") == 0) {
    max = strtol(argv[2], NULL, 10);
  } else if (argc != 1) {
    fprintf(stderr, "usage: %s [--max N]\n", argv[0]);
    return 2;
  }
  fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) _exit(Child());
  int status = 0;
  if (waitpid(pid, &status, 0) < 0 || !WIFSTOPPED(status)) {
    fprintf(stderr, "api_icount: the child did not stop (status %#x): cordon_init failed?\n", status);
    return 3;
  }
  const uintptr_t begin = (uintptr_t)&icount_begin, end = (uintptr_t)&icount_end;
  long count = 0, wrpkru = 0;
  int counting = 0, done = 0;
  while (ptrace(PTRACE_SINGLESTEP, pid, NULL, NULL) == 0) {
    if (waitpid(pid, &status, 0) < 0 || WIFEXITED(status) || WIFSIGNALED(status)) break;
    struct user_regs_struct regs;
    if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) != 0) break;
    if (!counting) {
      /* About to run icount_begin's ret: count from the next step. */
      counting = regs.rip == begin;
      continue;
    }
    if (regs.rip == end) {
      done = 1;
      break;
    }
    count += 1;
    errno = 0;
    const long text = ptrace(PTRACE_PEEKTEXT, pid, (void*)regs.rip, NULL);
    if (memcmp(&text, kWrpkruBytes, sizeof kWrpkruBytes) == 0) wrpkru += 1;
  }
  if (!done) {
    fprintf(stderr, "api_icount: the child ended before the end marker\n");
    kill(pid, SIGKILL);
    return 4;
  }
  ptrace(PTRACE_CONT, pid, NULL, NULL);
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "api_icount: the child failed (status %#x)\n", status);
    return 5;
  }
  printf("cordon_call round trip: %ld instructions, %ld WRPKRU (%s)\n", count, wrpkru, BUILD);
  if (max >= 0 && count > max) {
    fprintf(stderr, "api_icount: %ld instructions, over the budget of %ld\n", count, max);
    return 1;
  }
  return 0;
}
