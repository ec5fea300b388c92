// C++: an inline or template function would get a gate in every file that
// emits it; the error says to define it out of line.
// RUN: not %clangxx -O0 -fpass-plugin=%plugin -c -o /dev/null %s 2>&1 | FileCheck %s
#include <cordon/cordon.h>

struct Counter {
  CORDON_TRUSTED int Next() noexcept { return ++value; }
  int value = 0;
};
// CHECK: diagnostics.cc:[[@LINE-3]]: cordon: 'Counter::Next()' is inline, a template or weak, so it may be emitted in several files: its gate must exist exactly once; define it out of line in one source file

template <typename T>
CORDON_TRUSTED T Identity(T v) noexcept { return v; }
// CHECK: diagnostics.cc:[[@LINE-1]]: cordon: 'int Identity<int>(int)' is inline, a template or weak

int Use() {
  Counter c;
  return c.Next() + Identity(1);
}
