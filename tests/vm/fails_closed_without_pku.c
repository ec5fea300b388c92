/* Fails closed without protection keys, for real: run in tools/cordon-vm on
 * a CPU without PKU (`--cpu max,pku=off`, argument "cpu") or on a kernel
 * booted with `nopku` (argument "kernel": CPUID still reports PKU, the OS
 * never enabled it). First proves the machine is what the test claims, then
 * that cordon_init() refuses with CORDON_E_NO_PKU and a sentence saying what
 * to do, and that nothing was set up. Exit 0 on success; each failed check
 * prints its reason and exits 1. */
#include <cpuid.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cordon/cordon.h"
#include "fails_closed.h"

/* Whether /proc/cpuinfo's flags list this word. */
static int cpuinfo_flag(const char* flag) {
  FILE* f = fopen("/proc/cpuinfo", "r");
  if (f == NULL) return -1;
  char line[8192];
  int found = 0;
  const size_t n = strlen(flag);
  while (!found && fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "flags", 5) != 0) continue;
    for (char* p = strstr(line, flag); p != NULL; p = strstr(p + 1, flag)) {
      if (p[-1] == ' ' && (p[n] == ' ' || p[n] == '\n')) found = 1;
    }
  }
  fclose(f);
  return found;
}

int main(int argc, char** argv) {
  if (argc != 2 || (strcmp(argv[1], "cpu") != 0 && strcmp(argv[1], "kernel") != 0)) {
    fprintf(stderr, "usage: fails_closed_without_pku cpu|kernel\n");
    return 2;
  }
  unsigned eax, ebx, ecx, edx;
  const int leaf7 = __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx);
  const int cpuid_pku = leaf7 && ((ecx >> 3) & 1), cpuid_ospke = leaf7 && ((ecx >> 4) & 1);
  if (strcmp(argv[1], "cpu") == 0) {
    check(!cpuid_pku, "the CPU reports PKU in CPUID leaf 7 (the VM was meant to have none)");
  } else {
    check(cpuid_pku, "the CPU does not report PKU in CPUID (the nopku case needs a CPU that has it)");
    check(!cpuid_ospke, "the kernel enabled protection keys (OSPKE set) although booted with nopku");
  }
  /* With nopku the kernel keeps listing the CPU's pku flag; ospke (the OS
   * enabled it) is what goes. */
  check(cpuinfo_flag("ospke") == 0, "/proc/cpuinfo lists ospke");
  if (strcmp(argv[1], "cpu") == 0) check(cpuinfo_flag("pku") == 0, "/proc/cpuinfo lists pku");
  if (failures != 0) return 1;

  const int s = cordon_init(NULL);
  printf("cordon_init: %s\n", cordon_strerror(s));
  check(s == CORDON_E_NO_PKU, "cordon_init() did not fail with CORDON_E_NO_PKU");
  check(strstr(cordon_strerror(s), "tools/cordon-vm") != NULL, "the message does not say what to do");
  check_nothing_set_up(CORDON_E_NO_PKU);
  if (failures == 0) printf("failed closed as expected (%s)\n", argv[1]);
  return failures == 0 ? 0 : 1;
}
