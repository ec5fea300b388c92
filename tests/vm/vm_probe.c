/* vm_probe: a program for testing tools/cordon-vm. Commands (argv[1]):
 *   echo ARGS...     print each argument on its own line (stdout), "err" on stderr
 *   env NAME         print the variable's value
 *   cat FILE         copy a file to stdout
 *   exit N           exit with status N
 *   signal N         kill itself with signal N
 *   pkey             print "pkey ok" if pkey_alloc works, exit 1 otherwise
 *   panic            crash the (virtual) machine's kernel through sysrq */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  if (strcmp(argv[1], "echo") == 0) {
    for (int i = 2; i < argc; i++) printf("%s\n", argv[i]);
    fprintf(stderr, "err\n");
    return 0;
  }
  if (strcmp(argv[1], "env") == 0 && argc == 3) {
    const char* v = getenv(argv[2]);
    printf("%s\n", v ? v : "(unset)");
    return 0;
  }
  if (strcmp(argv[1], "cat") == 0 && argc == 3) {
    FILE* f = fopen(argv[2], "r");
    if (!f) return 3;
    int c;
    while ((c = fgetc(f)) != EOF) putchar(c);
    return 0;
  }
  if (strcmp(argv[1], "exit") == 0 && argc == 3) return atoi(argv[2]);
  if (strcmp(argv[1], "signal") == 0 && argc == 3) {
    fflush(stdout);
    signal(atoi(argv[2]), SIG_DFL);
    raise(atoi(argv[2]));
    return 4;
  }
  if (strcmp(argv[1], "panic") == 0) {
    /* Only inside cordon-vm (its initramfs has /cordon/argv): never crash a
     * real machine's kernel. */
    if (access("/cordon/argv", F_OK) != 0) {
      fprintf(stderr, "vm_probe: refusing to crash a kernel outside cordon-vm\n");
      return 7;
    }
    FILE *f = fopen("/proc/sysrq-trigger", "w");
    if (!f) return 5;
    fputc('c', f);
    fclose(f);
    return 6; /* not reached: the kernel has crashed */
  }
  if (strcmp(argv[1], "pkey") == 0) {
    int k = pkey_alloc(0, 0);
    if (k < 0) return 1;
    printf("pkey ok\n");
    return 0;
  }
  return 2;
}
