/* planted_hidden: linked against a library with WRPKRU bytes hidden inside
 * an instruction. cordon_init must refuse to start, name the library and
 * the symbol on stderr, and leave nothing initialised. Exit 0 if it did. */
#include <cordon/cordon.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int fixture_answer(void);

int main(void) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return 10;
  const int saved = dup(2);
  dup2(pipefd[1], 2);
  const int s = cordon_init(NULL);
  fflush(stderr);
  dup2(saved, 2);
  close(pipefd[1]);
  char err[8192] = {0};
  ssize_t n = read(pipefd[0], err, sizeof err - 1);
  (void)n;
  fprintf(stderr, "%s", err);
  printf("cordon_init: %s\n", cordon_strerror(s));
  if (s != CORDON_E_UNSAFE_CODE) return 1;
  if (strstr(err, "libplanted_hidden.so") == NULL || strstr(err, "hidden_wrpkru") == NULL) return 2;
  if (strstr(err, "UNSAFE: unintended") == NULL) return 3;
  if (cordon_is_initialized()) return 4;
  if (cordon_current_domain() != CORDON_DOMAIN_UNTRUSTED) return 5;
  printf("refused, as it must; the library still works untrusted: %d\n", fixture_answer());
  return 0;
}
