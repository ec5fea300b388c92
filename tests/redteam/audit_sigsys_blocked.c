// Claim 1 (every refused call in kill mode is recorded before the death):
// the filter lets rt_sigprocmask through untrapped when its set is the
// runtime's own "block everything" set on the config page
// (CFG_SIGNAL_BLOCK_ALL, docs/signals.md). Untrusted code blocks SIGSYS with
// it; the kernel then delivers the next seccomp trap with the handler reset
// to SIG_DFL (force_sig_info_to_task), and the process dies of SIGSYS
// without the runtime seeing the call: no syscall_refused record, no
// message. (docs/signals.md: "only makes its own next trap a kill";
// docs/audit.md's table says the record comes before the death for every
// call the filter refuses in kill mode.)
// Judge: the parent holds the stream: success = the child said it made
// the call, died of SIGSYS, and the stream has no syscall_refused record.
#include <cordon/cordon.h>
#include <sys/syscall.h>

#include "audit_judge.h"

extern unsigned char cordon_gate_config[4096];

static uint8_t* g_secret;
static uint64_t e_gen(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a, (void)b, (void)c, (void)d, (void)e;
  void* p = 0;
  return cordon_malloc(32, &p) == 0 ? (uint64_t)p : 0;
}

// argv[1] fault: the same with a protection-key fault (the set blocks
// SIGSEGV too): no pkey_fault record, death by SIGSEGV.
// argv[1] dfl: no blocking; SIGSEGV set back to SIG_DFL after the lockdown
// through the runtime's own sigaction (signals.cc, Install: SIG_DFL goes to
// the kernel as is), so the runtime's entry no longer stands in for it.
static int child(int argc, char** argv) {
  const int dfl = argc > 1 && strcmp(argv[1], "dfl") == 0;
  const int fault = dfl || (argc > 1 && strcmp(argv[1], "fault") == 0);
  cordon_options o;
  cordon_options_init(&o);
  o.audit_fd = AUDIT_FD;
  if (cordon_init(&o) != 0) { printf("init failed\n"); return 11; }
  cordon_entry gen;
  cordon_register(cordon_trusted_domain(), e_gen, "gen", &gen);
  g_secret = (uint8_t*)cordon_call(gen, 0, 0, 0, 0, 0);
  if (cordon_lockdown() != 0) { printf("lockdown failed\n"); return 14; }
  if (dfl) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    printf("cordon_sigaction(SIGSEGV, SIG_DFL): %d\n", cordon_sigaction(SIGSEGV, &sa, NULL));
  } else {
    long r = syscall(SYS_rt_sigprocmask, SIG_BLOCK, cordon_gate_config + 1088, NULL, 8);
    printf("rt_sigprocmask: %ld\n", r);
  }
  if (fault) {
    printf("calling ptrace (no: reading trusted memory)\n");
    printf("read %d\n", *(volatile uint8_t*)g_secret);
    return 0;
  }
  printf("calling ptrace\n");
  syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, getppid(), 0, 0);
  printf("ptrace returned\n");
  return 0;
}

int main(int argc, char** argv) {
  judged_run r = judge_run(child, argc, argv, 30, NULL);
  judge_describe(&r);
  printf("child says: %s", r.out);
  const int fault = argc > 1 && (strcmp(argv[1], "fault") == 0 || strcmp(argv[1], "dfl") == 0);
  int recs = judge_count(r.stream, "\"eventName\":\"syscall_refused\"") + judge_count(r.stream, "\"eventName\":\"pkey_fault\"");
  int sigsys = !r.timed_out && WIFSIGNALED(r.status) && WTERMSIG(r.status) == (fault ? SIGSEGV : SIGSYS);
  printf("judge: syscall_refused/pkey_fault records: %d; died of the expected signal: %s\n", recs, sigsys ? "yes" : "no");
  int open = strstr(r.out, "calling ptrace") && recs == 0 && sigsys;
  printf("RESULT: %s\n", open ? "OPEN (refused call killed the process without its record)" : "held");
  return open ? 0 : 1;
}
