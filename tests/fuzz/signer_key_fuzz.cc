// libFuzzer target: the signer core's key loading (cordon_signer_key_parse,
// openssl-provider/signer/core/key.c) on arbitrary bytes, through its PEM,
// DER, PKCS#8, PBES2, PKCS#1 and SEC1 readers, with the fixed passphrase
// "fuzz" (the seeds' encrypted keys use it) and with none. It must never
// crash, and never leave a block of signer memory behind (host_memory.c
// counts them, beside LeakSanitizer). A key it accepts must give its public
// half, in sizes the provider can carry, and sign; and an input that loads
// without a passphrase must load the same with one (only encrypted keys
// read it).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "openssl-provider/signer/core/core.h"
#include "openssl-provider/signer/core/tests/host_memory.h"

namespace {

constexpr char kPass[] = "fuzz";

[[noreturn]] void Fail(const char* what) {
  // libFuzzer reports the abort and keeps the input.
  fprintf(stderr, "signer_key_fuzz: %s\n", what);
  abort();
}

void Use(const cordon_signer_key* k) {
  uint32_t type = 0, bits = 0;
  uint8_t pub[CORDON_SIGNER_MAX_PUBLIC];
  size_t pub_len = 0, n_len = 0;
  if (cordon_signer_key_public(k, &type, &bits, pub, sizeof pub, &pub_len, &n_len) != CORDON_SIGNER_OK)
    Fail("an accepted key has no public half");
  uint8_t digest[32];
  memset(digest, 0x5a, sizeof digest);
  uint32_t scheme = 0, hash = CORDON_SIGNER_DIGEST_SHA256;
  switch (type) {
    case CORDON_SIGNER_KEY_RSA:
      // e travels beside n in 16 bytes (the provider's keymgmt.cc).
      if (bits < 1024 || bits > 8192 || n_len == 0 || n_len >= pub_len || pub_len - n_len > 16)
        Fail("an RSA key's sizes");
      scheme = CORDON_SIGNER_RSA_PKCS1;
      break;
    case CORDON_SIGNER_KEY_EC_P256:
    case CORDON_SIGNER_KEY_EC_P384:
      if (pub_len != (type == CORDON_SIGNER_KEY_EC_P256 ? 65u : 97u) || pub[0] != 0x04)
        Fail("an EC key's public point");
      scheme = CORDON_SIGNER_ECDSA;
      break;
    case CORDON_SIGNER_KEY_ED25519:
      if (pub_len != 32) Fail("an Ed25519 key's public key");
      scheme = CORDON_SIGNER_ED25519;
      hash = CORDON_SIGNER_DIGEST_NONE;
      break;
    default:
      Fail("an accepted key of no known type");
  }
  uint8_t sig[CORDON_SIGNER_MAX_SIGNATURE];
  size_t sig_len = 0;
  if (cordon_signer_key_sign(k, scheme, hash, hash, -1, digest, sizeof digest, sig, sizeof sig, &sig_len) !=
          CORDON_SIGNER_OK ||
      sig_len == 0)
    Fail("an accepted key does not sign");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cordon_signer_key* with = nullptr;
  const int rc_with = cordon_signer_key_parse(data, size, kPass, sizeof kPass - 1, &with);
  if ((rc_with == CORDON_SIGNER_OK) != (with != nullptr)) Fail("a status that disagrees with the key");
  if (with != nullptr) Use(with);
  cordon_signer_key_destroy(with);

  cordon_signer_key* without = nullptr;
  const int rc_without = cordon_signer_key_parse(data, size, nullptr, 0, &without);
  if ((rc_without == CORDON_SIGNER_OK) != (without != nullptr)) Fail("a status that disagrees with the key");
  if (rc_without != CORDON_SIGNER_E_PASSPHRASE && rc_without != rc_with)
    Fail("the passphrase changed how an unencrypted input loads");
  cordon_signer_key_destroy(without);

  if (signer_test_live_blocks() != 0) Fail("signer memory left allocated");
  return 0;
}
