/* GMP's allocator, replacing libgmp.a's memory.o: the three pointers GMP
 * calls for every limb array, defined const so the linker puts them in
 * RELRO (read-only after relocation), never in writable memory an attacker
 * could redirect. They allocate in signer memory. Nobody may call
 * mp_set_memory_functions(): it lives with memory.o, whose second
 * definition of these pointers would fail the link. */
#include <stddef.h>

#include "openssl-provider/signer/core/core.h"

static void* signer_gmp_allocate(size_t n) {
  void* p = cordon_signer_mem_alloc(n);
  if (p == NULL) {
    /* GMP cannot take a failed allocation; stopping is the only safe choice
     * (no partial number survives). */
    __builtin_trap();
  }
  return p;
}

static void* signer_gmp_reallocate(void* p, size_t old_n, size_t new_n) {
  void* q = cordon_signer_mem_realloc(p, old_n, new_n);
  if (q == NULL) {
    __builtin_trap();
  }
  return q;
}

static void signer_gmp_free(void* p, size_t n) {
  cordon_signer_mem_free(p, n);
}

/* GMP's gmp-impl.h declares these without const; the definitions only have
 * to agree in name and representation. Hidden: libgmp.a's references bind
 * to them inside the module, and no other library can see or replace them. */
__attribute__((visibility("hidden"))) void* (*const __gmp_allocate_func)(size_t) = signer_gmp_allocate;
__attribute__((visibility("hidden"))) void* (*const __gmp_reallocate_func)(void*, size_t,
                                                                           size_t) = signer_gmp_reallocate;
__attribute__((visibility("hidden"))) void (*const __gmp_free_func)(void*, size_t) = signer_gmp_free;

/* What libgmp-signer.a's few stderr references name instead (the archive
 * copy in CMakeLists.txt): a null stream, read-only. GMP prints to it only
 * just before abort(); fprintf on it faults, so the process still dies, but
 * without touching libc's stdio buffers and locks in untrusted memory. */
__attribute__((visibility("hidden"))) void* const cordon_signer_gmp_stderr = NULL;
