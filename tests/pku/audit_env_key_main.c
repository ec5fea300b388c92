/* Run by pku_audit_tests (AuditKey.TheEnvironmentsKeyIsWipedAtInit) with
 * CORDON_AUDIT_FD and CORDON_AUDIT_KEY in its initial environment, the one
 * /proc/self/environ shows: cordon_init(NULL) takes both, and then this
 * prints what getenv and /proc/self/environ still show of the key. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cordon/cordon.h"

int main(void) {
  const int status = cordon_init(NULL);
  if (status != CORDON_OK) {
    fprintf(stderr, "cordon_init: %d\n", status);
    return 10;
  }
  const char* value = getenv("CORDON_AUDIT_KEY");
  printf("getenv=[%s]\n", value != NULL ? value : "(unset)");
  fflush(stdout);
  const int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 11;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) {
    if (write(1, buf, (size_t)n) != n) return 12;
  }
  close(fd);
  return n == 0 ? 0 : 13;
}
