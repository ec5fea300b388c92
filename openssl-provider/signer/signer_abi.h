/* The gate interface between the cordon OpenSSL provider (untrusted glue,
 * openssl-provider/provider/) and the signer (openssl-provider/signer/), which
 * runs inside the trusted domain and holds every private key.
 *
 * Each entry takes one pointer to a request in untrusted memory. The signer
 * copies the request once into trusted memory before it reads any field
 * (untrusted code may change it during the call), checks every pointer in it
 * with cordon_is_untrusted_range(), and writes results only into the
 * untrusted buffers the request names. Nothing here ever carries private key
 * material out: results are handles, public keys and signatures.
 *
 * Every entry returns a cordon_signer_status (0 on success). */
#ifndef CORDON_OPENSSL_SIGNER_ABI_H_
#define CORDON_OPENSSL_SIGNER_ABI_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cordon_signer_status {
  CORDON_SIGNER_OK = 0,
  CORDON_SIGNER_E_ARGUMENT = -1,    /* a bad pointer, size, flag or enum value in the request */
  CORDON_SIGNER_E_NO_FILE = -2,     /* the key file cannot be opened (errno in sys_errno) */
  CORDON_SIGNER_E_READ = -3,        /* the key file cannot be read, or is larger than 1 MiB */
  CORDON_SIGNER_E_FORMAT = -4,      /* not a PEM or DER private key, or a corrupt one */
  CORDON_SIGNER_E_PASSPHRASE = -5,  /* the key is encrypted: no passphrase, or a wrong one */
  CORDON_SIGNER_E_UNSUPPORTED = -6, /* a key type, curve, cipher or size the signer does not do */
  CORDON_SIGNER_E_HANDLE = -7,      /* no key has this handle (freed, or never loaded) */
  CORDON_SIGNER_E_NO_MEMORY = -8,   /* the trusted heap or the key table is full */
  CORDON_SIGNER_E_BUFFER = -9,      /* an output buffer is too small (the size needed is written) */
  CORDON_SIGNER_E_MISMATCH = -10,   /* the operation does not fit the key (ECDSA with an RSA key, a
                                       digest of the wrong length) */
  CORDON_SIGNER_E_CRYPTO = -11,     /* the computation failed (RSA's self-check, a random source) */
  CORDON_SIGNER_E_LOCKED = -12,     /* loading keys is closed (after cordon_lockdown()), or signing
                                       is not open yet (before it, unless lockdown = none) */
  CORDON_SIGNER_E_STATE = -13       /* the signer was not set up, or set up twice */
} cordon_signer_status;

typedef enum cordon_signer_key_type {
  CORDON_SIGNER_KEY_RSA = 1,      /* rsaEncryption: PKCS#1 v1.5 and PSS signatures */
  CORDON_SIGNER_KEY_EC_P256 = 2,  /* prime256v1 */
  CORDON_SIGNER_KEY_EC_P384 = 3,  /* secp384r1 */
  CORDON_SIGNER_KEY_ED25519 = 4
} cordon_signer_key_type;

typedef enum cordon_signer_digest {
  CORDON_SIGNER_DIGEST_NONE = 0, /* Ed25519 signs the message itself */
  CORDON_SIGNER_DIGEST_SHA1 = 1,
  CORDON_SIGNER_DIGEST_SHA224 = 2,
  CORDON_SIGNER_DIGEST_SHA256 = 3,
  CORDON_SIGNER_DIGEST_SHA384 = 4,
  CORDON_SIGNER_DIGEST_SHA512 = 5
} cordon_signer_digest;

typedef enum cordon_signer_scheme {
  CORDON_SIGNER_RSA_PKCS1 = 1, /* tbs is a digest; DigestInfo is added by the signer */
  CORDON_SIGNER_RSA_PSS = 2,   /* tbs is a digest; salt_len and mgf1_digest apply */
  CORDON_SIGNER_ECDSA = 3,     /* tbs is a digest; the signature is DER ECDSA-Sig-Value */
  CORDON_SIGNER_ED25519 = 4    /* tbs is the whole message (PureEdDSA) */
} cordon_signer_scheme;

/* RSA public keys: n then e, each big-endian without leading zeros.
 * EC: the uncompressed point 04 || X || Y. Ed25519: the 32-byte key. */
enum { CORDON_SIGNER_MAX_PUBLIC = 1040 }; /* RSA-8192 n and e */
enum { CORDON_SIGNER_MAX_SIGNATURE = 1024 };

/* Entry "openssl:load": reads a private key file and keeps the key.
 * The file is opened and read by the signer, into trusted memory; it may be
 * PEM or DER: PKCS#8 (plain or encrypted with PBES2), PKCS#1 RSA or SEC1 EC. */
typedef struct cordon_signer_load_req {
  uint64_t struct_size;     /* sizeof(cordon_signer_load_req) */
  const char* path;         /* not NUL-terminated; path_len bytes */
  uint64_t path_len;        /* 1..4095 */
  const char* passphrase;   /* NULL with passphrase_len 0 for none */
  uint64_t passphrase_len;  /* 0..1023 */
  /* out: */
  uint64_t handle;          /* names the key in later calls; never 0 */
  uint32_t key_type;        /* a cordon_signer_key_type */
  uint32_t bits;            /* RSA: bits of n; EC: 256 or 384; Ed25519: 253 */
  uint32_t public_len;      /* bytes written to public_key */
  uint32_t rsa_n_len;       /* RSA: n's bytes in public_key (e follows); 0 otherwise */
  int32_t sys_errno;        /* errno of a failed open or read, else 0 */
  uint32_t reserved;
  uint8_t public_key[CORDON_SIGNER_MAX_PUBLIC];
} cordon_signer_load_req;

/* Entry "openssl:sign". */
typedef struct cordon_signer_sign_req {
  uint64_t struct_size;  /* sizeof(cordon_signer_sign_req) */
  uint64_t handle;
  uint32_t scheme;       /* a cordon_signer_scheme */
  uint32_t digest;       /* a cordon_signer_digest: what tbs is a digest of */
  uint32_t mgf1_digest;  /* PSS only */
  int32_t salt_len;      /* PSS only: >= 0 bytes, or -1 for the digest's length, -2 for the largest */
  const uint8_t* tbs;    /* the digest, or for Ed25519 the message */
  uint64_t tbs_len;
  uint8_t* sig;          /* out */
  uint64_t sig_cap;
  uint64_t sig_len;      /* out: bytes written (or needed, with CORDON_SIGNER_E_BUFFER) */
} cordon_signer_sign_req;

/* Entry "openssl:free": forgets the key and wipes it. */
typedef struct cordon_signer_free_req {
  uint64_t struct_size;
  uint64_t handle;
} cordon_signer_free_req;

/* The entry functions, to register with cordon_register() in the trusted
 * domain (cordon_signer_register() does that). Each takes the request's
 * address in its first argument and ignores the others. */
uint64_t cordon_signer_load(uint64_t req, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t cordon_signer_sign(uint64_t req, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t cordon_signer_free(uint64_t req, uint64_t, uint64_t, uint64_t, uint64_t);
/* Entry "openssl:setup": creates the key table in trusted memory and records
 * it with cordon_domain_set_root(); once, before the lockdown. With a
 * nonzero first argument (every lockdown policy but none) the sign entry
 * refuses with CORDON_SIGNER_E_LOCKED until the process is locked down. */
uint64_t cordon_signer_setup(uint64_t require_lockdown, uint64_t, uint64_t, uint64_t, uint64_t);

/* A sentence for a status. */
const char* cordon_signer_strerror(int status);

#ifdef __cplusplus
}
#endif

#endif /* CORDON_OPENSSL_SIGNER_ABI_H_ */
