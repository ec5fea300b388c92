/* nettle's CPU dispatch, replacing libnettle.a's fat-x86_64.o. Debian's
 * nettle is a "fat" build without IFUNC: each dispatched function (AES,
 * SHA-1, SHA-256, GHASH, memxor) calls through a function pointer in
 * writable .data that a constructor fills in. In the module that pointer
 * would be untrusted memory, and the signer calls SHA-256 through it inside
 * the domain: whoever can write it would run code with the domain's rights.
 * Here each function is an IFUNC instead: the loader resolves it once, at
 * load (the module is linked -z now), into the GOT, which is RELRO.
 *
 * The choices are nettle 3.8's (fat-x86_64.c), from CPUID. This file
 * defines every symbol fat-x86_64.o defines, so that object is never pulled
 * in; if a newer nettle adds one and something needs it, fat-x86_64.o comes
 * in after all and its second definitions of these fail the link. */
#include <stdbool.h>

/* The implementations, each in its own member of libnettle.a. Their types
 * do not matter here: a resolver only returns an address. */
#define SIGNER_IMPL(name) extern void name(void)
SIGNER_IMPL(_nettle_aes128_encrypt_c);
SIGNER_IMPL(_nettle_aes128_encrypt_aesni);
SIGNER_IMPL(_nettle_aes128_decrypt_c);
SIGNER_IMPL(_nettle_aes128_decrypt_aesni);
SIGNER_IMPL(_nettle_aes192_encrypt_c);
SIGNER_IMPL(_nettle_aes192_encrypt_aesni);
SIGNER_IMPL(_nettle_aes192_decrypt_c);
SIGNER_IMPL(_nettle_aes192_decrypt_aesni);
SIGNER_IMPL(_nettle_aes256_encrypt_c);
SIGNER_IMPL(_nettle_aes256_encrypt_aesni);
SIGNER_IMPL(_nettle_aes256_decrypt_c);
SIGNER_IMPL(_nettle_aes256_decrypt_aesni);
SIGNER_IMPL(_nettle_cbc_aes128_encrypt_c);
SIGNER_IMPL(_nettle_cbc_aes128_encrypt_aesni);
SIGNER_IMPL(_nettle_cbc_aes192_encrypt_c);
SIGNER_IMPL(_nettle_cbc_aes192_encrypt_aesni);
SIGNER_IMPL(_nettle_cbc_aes256_encrypt_c);
SIGNER_IMPL(_nettle_cbc_aes256_encrypt_aesni);
SIGNER_IMPL(_nettle_ghash_set_key_c);
SIGNER_IMPL(_nettle_ghash_set_key_pclmul);
SIGNER_IMPL(_nettle_ghash_update_table);
SIGNER_IMPL(_nettle_ghash_update_pclmul);
SIGNER_IMPL(_nettle_memxor_x86_64);
SIGNER_IMPL(_nettle_sha1_compress_x86_64);
SIGNER_IMPL(_nettle_sha1_compress_sha_ni);
SIGNER_IMPL(_nettle_sha256_compress_x86_64);
SIGNER_IMPL(_nettle_sha256_compress_sha_ni);

typedef void (*signer_impl)(void);

/* The loader runs these resolvers while it relocates the object, before any
 * constructor. In an executable (or a library loaded with it) that is before
 * AddressSanitizer has mapped its shadow memory, so nothing a resolver runs
 * may be instrumented: a shadow check there reads unmapped memory and
 * faults. Hence no_sanitize on every function they call, and no <cpuid.h>:
 * its __get_cpuid is a static inline without that attribute, and LLVM does
 * not inline an instrumented function into an uninstrumented one, so the
 * sanitized build called an out-of-line, instrumented copy and died in the
 * loader (signer_core_tests under CORDON_SANITIZE). */
#define SIGNER_RESOLVER __attribute__((no_sanitize("address", "undefined"), used))

/* CPUID leaf/subleaf: r[0..3] = EAX, EBX, ECX, EDX. */
SIGNER_RESOLVER static inline void signer_cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
  __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

SIGNER_RESOLVER static bool have_aesni(void) {
  unsigned r[4];
  signer_cpuid(1, 0, r);
  return (r[2] >> 25) & 1; /* leaf 1 ECX.AES */
}

SIGNER_RESOLVER static bool have_pclmul(void) {
  unsigned r[4];
  signer_cpuid(1, 0, r);
  return (r[2] >> 1) & 1; /* leaf 1 ECX.PCLMULQDQ */
}

SIGNER_RESOLVER static bool have_sha_ni(void) {
  unsigned r[4];
  signer_cpuid(0, 0, r); /* EAX: the highest basic leaf */
  if (r[0] < 7) {
    return false;
  }
  signer_cpuid(7, 0, r);
  return (r[1] >> 29) & 1; /* leaf 7 EBX.SHA */
}

/* nettle picks its SSE2 memxor on Intel CPUs only as a speed choice; the
 * x86-64 one is right everywhere. */
SIGNER_RESOLVER static bool always(void) {
  return true;
}

/* One IFUNC: name resolves to fast when test() holds, else to slow. The
 * symbols are hidden like the rest of the module's. */
#define SIGNER_DISPATCH(name, test, fast, slow)             \
  SIGNER_RESOLVER static signer_impl resolve_##name(void) { \
    return test() ? fast : slow;                            \
  }                                                         \
  __attribute__((visibility("hidden"))) void name(void) __attribute__((ifunc("resolve_" #name)))

SIGNER_DISPATCH(nettle_aes128_encrypt, have_aesni, _nettle_aes128_encrypt_aesni, _nettle_aes128_encrypt_c);
SIGNER_DISPATCH(nettle_aes128_decrypt, have_aesni, _nettle_aes128_decrypt_aesni, _nettle_aes128_decrypt_c);
SIGNER_DISPATCH(nettle_aes192_encrypt, have_aesni, _nettle_aes192_encrypt_aesni, _nettle_aes192_encrypt_c);
SIGNER_DISPATCH(nettle_aes192_decrypt, have_aesni, _nettle_aes192_decrypt_aesni, _nettle_aes192_decrypt_c);
SIGNER_DISPATCH(nettle_aes256_encrypt, have_aesni, _nettle_aes256_encrypt_aesni, _nettle_aes256_encrypt_c);
SIGNER_DISPATCH(nettle_aes256_decrypt, have_aesni, _nettle_aes256_decrypt_aesni, _nettle_aes256_decrypt_c);
SIGNER_DISPATCH(nettle_cbc_aes128_encrypt, have_aesni, _nettle_cbc_aes128_encrypt_aesni,
                _nettle_cbc_aes128_encrypt_c);
SIGNER_DISPATCH(nettle_cbc_aes192_encrypt, have_aesni, _nettle_cbc_aes192_encrypt_aesni,
                _nettle_cbc_aes192_encrypt_c);
SIGNER_DISPATCH(nettle_cbc_aes256_encrypt, have_aesni, _nettle_cbc_aes256_encrypt_aesni,
                _nettle_cbc_aes256_encrypt_c);
SIGNER_DISPATCH(_nettle_ghash_set_key, have_pclmul, _nettle_ghash_set_key_pclmul, _nettle_ghash_set_key_c);
SIGNER_DISPATCH(_nettle_ghash_update, have_pclmul, _nettle_ghash_update_pclmul, _nettle_ghash_update_table);
SIGNER_DISPATCH(nettle_sha1_compress, have_sha_ni, _nettle_sha1_compress_sha_ni,
                _nettle_sha1_compress_x86_64);
SIGNER_DISPATCH(_nettle_sha256_compress, have_sha_ni, _nettle_sha256_compress_sha_ni,
                _nettle_sha256_compress_x86_64);
SIGNER_DISPATCH(nettle_memxor, always, _nettle_memxor_x86_64, _nettle_memxor_x86_64);
