/* A module-local, read-only `stderr` for libgmp.a.
 *
 * Debian's libgmp.a is compiled as position-independent executable code
 * (-fPIE), not shared-library code: its few error paths (mpz_realloc's and
 * mpz_init2's "overflow in mpz type", mpz_n_pow_ui, __gmp_assert_fail)
 * load libc's `stderr` with PC-relative relocations, which the linker
 * cannot resolve against libc from a shared object. This hidden constant
 * resolves them inside the module. Those paths only print and abort; in
 * the signer (trusted code) stdio is forbidden anyway, and fprintf() on
 * this NULL stream faults, which stops the process: fail-stop, as GMP's
 * abort() would. Nothing else may use it: the glue writes to descriptor 2.
 * (Should move to the signer core's CMake with the other GMP link rules.) */
__attribute__((visibility("hidden"))) void* const stderr = 0;
