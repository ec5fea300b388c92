/* WIP: the signer core's key parsing and signing (core.h). */
#include "openssl-provider/signer/core/core.h"

int cordon_signer_key_parse(const uint8_t* data, size_t len, const char* pass, size_t pass_len,
                            cordon_signer_key** out) {
  (void)data, (void)len, (void)pass, (void)pass_len;
  *out = NULL;
  return CORDON_SIGNER_E_UNSUPPORTED;
}
