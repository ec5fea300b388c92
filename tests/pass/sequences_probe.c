// Gates for tests/pass/gate_sequences_test.py, which compares their shared
// instruction sequences with the runtime gate's. Several gates in one
// module (the sequences are defined once per module) and every kind of
// result the exit scrub keeps: rax, rax:rdx, xmm0, none.
#include <cordon/cordon.h>

static long g_total;

CORDON_TRUSTED long probe_add(long a, long b) {
  return a + b;
}
CORDON_TRUSTED __int128 probe_wide(long a) {
  return (__int128)a << 64 | (unsigned long)a;
}
CORDON_TRUSTED double probe_half(double x) {
  return x / 2;
}
CORDON_TRUSTED void probe_count(long n) {
  g_total += n;
}
