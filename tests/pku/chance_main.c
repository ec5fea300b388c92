/* chance_main: a program whose own code holds WRPKRU bytes in three
 * displacements the link chose (tests/scan/chance_fixture.S: a call's
 * rel32, a RIP-relative load's disp32, a jz's rel32). Checks, natively and
 * in the VM:
 *   1. under CORDON_INSPECT_REFUSE (in a child), cordon_init refuses with
 *      CORDON_E_UNSAFE_CODE and changes no byte;
 *   2. by default cordon_init succeeds, reports each occurrence as
 *      relocated (action 3), and the bytes at each one no longer form a
 *      WRPKRU: the instruction now points at a thunk;
 *   3. the three functions return what they returned before;
 *   4. the thunks are not writable (a write faults with SEGV_ACCERR) and
 *      the process's inspection finds nothing unsafe.
 * Exit 0 if all hold; a failing check prints what and exits with its
 * number. */
#define _GNU_SOURCE
#include <cordon/cordon.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/numbered_check.h"

int chance_call(void);
uint64_t chance_load(void);
int chance_branch(void);


/* The pattern as data: spelled as constants, the compiler folds the three
 * compares into one immediate that holds the same bytes, in this very
 * program's code, where nothing can relocate them. */
static volatile uint8_t g_wrpkru[3] = {0x0f, 0x01, 0xef};
static int IsWrpkru(const uint8_t* p) {
  return p[0] == g_wrpkru[0] && p[1] == g_wrpkru[1] && p[2] == g_wrpkru[2];
}

static sigjmp_buf g_jump;
static volatile sig_atomic_t g_code;
static void OnSegv(int sig, siginfo_t* info, void* ctx) {
  (void)sig;
  (void)ctx;
  g_code = info->si_code;
  siglongjmp(g_jump, 1);
}

/* Where a relative branch of 5 (or 6, jcc) bytes at p goes. */
static const uint8_t* BranchTarget(const uint8_t* p, size_t len) {
  int32_t rel;
  memcpy(&rel, p + len - 4, 4);
  return p + len + rel;
}

int main(void) {
  /* The occurrences: the call's rel32 at +1, the load's disp32 at +3, the
   * jz's rel32 at +2 (after xor eax, eax), its 0f 01 ef at +4. */
  const uint8_t* call_site = (const uint8_t*)chance_call;
  const uint8_t* load_site = (const uint8_t*)chance_load;
  const uint8_t* jz_site = (const uint8_t*)chance_branch + 2;
  const uint8_t* hits[3] = {call_site + 1, load_site + 3, jz_site + 2};
  uint8_t before[3][8];
  for (int i = 0; i < 3; ++i) {
    memcpy(before[i], hits[i] - 2, 8);
    if (!IsWrpkru(hits[i])) {
      fprintf(stderr, "FAIL 1: the fixture's occurrence %d is not there (was it rebuilt?)\n", i);
      return 1;
    }
  }
  const int call_before = chance_call();
  const uint64_t load_before = chance_load();
  const int branch_before = chance_branch();
  CHECK(2, call_before == 42 && load_before == 0x5eed5eed5eed5eedULL && branch_before == 7,
        "the fixture runs before init: %d, %#llx, %d", call_before, (unsigned long long)load_before,
        branch_before);

  /* 1. The refusing policy, in a child: refused, nothing changed. */
  fflush(stdout);
  const pid_t child = fork();
  if (child == 0) {
    cordon_options o;
    cordon_options_init(&o);
    o.inspect_policy = CORDON_INSPECT_REFUSE;
    const int s = cordon_init(&o);
    int same = 1;
    for (int i = 0; i < 3; ++i) same &= memcmp(before[i], hits[i] - 2, 8) == 0;
    _exit(s == CORDON_E_UNSAFE_CODE && same && !cordon_is_initialized() ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(3, WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "CORDON_INSPECT_REFUSE refuses the program and changes no byte (child status %#x)", status);

  /* 2. The default policy relocates. */
  const int s = cordon_init(NULL);
  CHECK(4, s == CORDON_OK, "cordon_init relocates and starts: %s", cordon_strerror(s));
  if (s != CORDON_OK) return failures;
  int relocated[3] = {0, 0, 0};
  int unsafe_left = 0;
  for (size_t i = 0; i < cordon_inspection_count(); ++i) {
    cordon_inspection_entry e;
    if (cordon_inspection_get(i, &e) != CORDON_OK) continue;
    for (int k = 0; k < 3; ++k) {
      if (e.address == (uintptr_t)hits[k]) relocated[k] = e.action == 3;
    }
    unsafe_left += e.action == 2;
  }
  CHECK(5, relocated[0] && relocated[1] && relocated[2] && unsafe_left == 0,
        "each occurrence is reported relocated (%d %d %d), none refused (%d)", relocated[0], relocated[1],
        relocated[2], unsafe_left);
  int gone = 1;
  for (int i = 0; i < 3; ++i) gone &= !IsWrpkru(hits[i]);
  CHECK(6, gone, "no WRPKRU left at the three addresses");
  /* The call and the jz keep their opcodes; the load became a jmp. */
  const uint8_t* call_thunk = BranchTarget(call_site, 5);
  const uint8_t* jz_thunk = BranchTarget(jz_site, 6);
  const uint8_t* load_thunk = BranchTarget(load_site, 5);
  CHECK(7,
        call_site[0] == 0xe8 && jz_site[0] == 0x0f && jz_site[1] == 0x84 && load_site[0] == 0xe9 &&
            call_thunk[0] == 0xe9 && jz_thunk[0] == 0xe9 && load_thunk[0] == 0x48,
        "the sites point at thunks (%p, %p, %p)", (const void*)call_thunk, (const void*)jz_thunk,
        (const void*)load_thunk);

  /* 3. The program runs as before. */
  const int call_after = chance_call();
  const uint64_t load_after = chance_load();
  const int branch_after = chance_branch();
  CHECK(8, call_after == call_before && load_after == load_before && branch_after == branch_before,
        "the fixture runs the same after: %d, %#llx, %d", call_after, (unsigned long long)load_after,
        branch_after);

  /* 4. A thunk cannot be written. */
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = OnSegv;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, &old);
  g_code = 0;
  if (sigsetjmp(g_jump, 1) == 0) {
    *(volatile uint8_t*)call_thunk = 0xc3;
    CHECK(9, 0, "a write to the thunk at %p succeeded", (const void*)call_thunk);
  } else {
    CHECK(9, g_code == SEGV_ACCERR, "a write to a thunk faults with SEGV_ACCERR (si_code %d)", (int)g_code);
  }
  sigaction(SIGSEGV, &old, NULL);
  return failures;
}
