#!/usr/bin/env bash
# Seeds for signer_key_fuzz and keyref_fuzz, written at run time into OUT
# (no private key is kept in the tree): each key type and curve the signer
# core reads, in each encoding (PKCS#8 PEM and DER, PKCS#1, SEC1 with and
# without its public key, compressed, after EC PARAMETERS, PBES2 with both
# PRFs and both ciphers under the fuzzer's passphrase "fuzz", one iteration
# so that mutants stay fast), an RSA key with a public exponent the signer
# refuses, and cordon-key references to them.
# usage: [OPENSSL=PROGRAM] signer_key_seeds.sh OUT [CORDON-KEY]
set -euo pipefail
out=$1 tool=${2:-}
mkdir -p "$out"
cd "$out"
ossl() { "${OPENSSL:-openssl}" "$@" 2>/dev/null; }
ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa.pem
ossl rsa -in rsa.pem -traditional -out rsa-pkcs1.pem
ossl rsa -in rsa.pem -traditional -outform DER -out rsa-pkcs1.der
ossl pkey -in rsa.pem -outform DER -out rsa.der
# e = 2^128 + 2^16 + 1, one bit past what the signer takes (E_UNSUPPORTED).
ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 \
  -pkeyopt rsa_keygen_pubexp:340282366920938463463374607431768276993 -outform DER -out rsa-129-bit-e.der
for curve in P-256 P-384; do
  ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:$curve -pkeyopt ec_param_enc:named_curve -out ec-$curve.pem
  ossl pkey -in ec-$curve.pem -outform DER -out ec-$curve.der
  ossl ec -in ec-$curve.pem -out ec-$curve-sec1.pem
  ossl ec -in ec-$curve.pem -outform DER -out ec-$curve-sec1.der
  ossl ec -in ec-$curve.pem -no_public -outform DER -out ec-$curve-sec1-nopub.der
  ossl ec -in ec-$curve.pem -conv_form compressed -outform DER -out ec-$curve-sec1-compressed.der
done
ossl ecparam -genkey -name prime256v1 -out ec-params-first.pem
ossl genpkey -algorithm ED25519 -out ed25519.pem
ossl pkey -in ed25519.pem -outform DER -out ed25519.der
ossl pkcs8 -topk8 -in rsa.pem -v2 aes-128-cbc -v2prf hmacWithSHA256 -iter 1 -passout pass:fuzz -out rsa-enc.pem
ossl pkcs8 -topk8 -in ec-P-256.pem -v2 aes-256-cbc -v2prf hmacWithSHA1 -iter 1 -passout pass:fuzz \
  -outform DER -out ec-enc.der
ossl pkcs8 -topk8 -in ed25519.pem -v2 aes-256-cbc -v2prf hmacWithSHA256 -iter 1 -passout pass:fuzz \
  -out ed25519-enc.pem
if [ -n "$tool" ]; then
  for key in rsa.pem ec-P-384.der ed25519.pem; do "$tool" ref "$PWD/$key" -o "$key.ref" >/dev/null; done
fi
n=$(ls | wc -l)
[ "$n" -ge 26 ] || { echo "signer_key_seeds.sh: only $n seeds written" >&2; exit 1; }
