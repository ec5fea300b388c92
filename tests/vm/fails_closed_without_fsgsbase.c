/* Fails closed without FSGSBASE, for real: run in tools/cordon-vm on a CPU
 * without it (`--cpu max,fsgsbase=off`, argument "cpu") or on a kernel
 * booted with `nofsgsbase` (argument "kernel": CPUID still reports it, the
 * kernel never enabled it for user space). The gates switch trusted code
 * onto its own thread control block with WRFSBASE (docs/gates.md,
 * "Thread-local storage"), so cordon_init() must refuse with
 * CORDON_E_NO_FSGSBASE and a sentence saying what is missing, and set up
 * nothing. First proves the machine is what the test claims. Exit 0 on
 * success; each failed check prints its reason and exits 1. */
#include <cpuid.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>

#include "cordon/cordon.h"
#include "fails_closed.h"

int main(int argc, char** argv) {
  if (argc != 2 || (strcmp(argv[1], "cpu") != 0 && strcmp(argv[1], "kernel") != 0)) {
    fprintf(stderr, "usage: fails_closed_without_fsgsbase cpu|kernel\n");
    return 2;
  }
  unsigned eax, ebx, ecx, edx;
  const int leaf7 = __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx);
  const int cpuid_fsgsbase = leaf7 && (ebx & 1);
  const int pku = leaf7 && ((ecx >> 4) & 1); /* OSPKE: protection keys are on */
  check(pku, "protection keys are not enabled (this test needs everything but FSGSBASE)");
  if (strcmp(argv[1], "cpu") == 0) {
    check(!cpuid_fsgsbase, "the CPU reports FSGSBASE in CPUID leaf 7 (the VM was meant to have none)");
  } else {
    check(cpuid_fsgsbase, "the CPU does not report FSGSBASE (the nofsgsbase case needs a CPU that has it)");
  }
  check((getauxval(AT_HWCAP2) & 2) == 0, "the kernel allows FSGSBASE in user space (HWCAP2_FSGSBASE)");
  if (failures != 0) return 1;

  const int s = cordon_init(NULL);
  printf("cordon_init: %s\n", cordon_strerror(s));
  check(s == CORDON_E_NO_FSGSBASE, "cordon_init() did not fail with CORDON_E_NO_FSGSBASE");
  check(strstr(cordon_strerror(s), "Linux 5.9") != NULL, "the message does not say what is needed");
  check_nothing_set_up(CORDON_E_NO_FSGSBASE);
  if (failures == 0) printf("failed closed as expected (%s)\n", argv[1]);
  return failures == 0 ? 0 : 1;
}
