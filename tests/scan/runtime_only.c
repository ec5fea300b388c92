/* runtime_only: a program made of libcordon (linked whole) and this file.
 * cordon-scan on it must find exactly the runtime's gate sites, all safe:
 * the runtime has no WRPKRU or XRSTOR outside its gates. */
#include <cordon/cordon.h>
#include <stdio.h>

int main(void) {
  printf("%zu gate sites; init: %s\n", cordon_gate_site_count(), cordon_strerror(cordon_init(NULL)));
  return 0;
}
