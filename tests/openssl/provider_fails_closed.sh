#!/usr/bin/env bash
# The provider on a machine without protection keys (a VM CPU with pku=off):
# an unmodified `openssl pkeyutl -sign` with a cordon: key must fail, and
# stderr must say why in the provider's own words, even where the program
# (nginx) drops OpenSSL's error queue. Exit 0 when it does.
#   provider_fails_closed.sh CORDON_VM KERNEL OPENSSL LIBCORDON PROVIDER CNF
set -euo pipefail
vm=$1 kernel=$2 openssl=$3 libcordon=$4 provider=$5 cnf=$6
set +e
err=$("$vm" --kernel "$kernel" --no-stdin --cpu max,pku=off --file "$libcordon" --file "$provider" \
  --file "$cnf" --env "LD_PRELOAD=$libcordon" --env "OPENSSL_CONF=$cnf" -- \
  "$openssl" pkeyutl -sign -inkey cordon:/nonexistent.pem -in /dev/null 2>&1 >/dev/null)
status=$?
set -e
fail() { echo "provider_fails_closed: $*"; echo "--- stderr ---"; echo "$err"; exit 1; }
[[ $status -ne 0 && $status -lt 122 ]] || fail "openssl exited $status (expected a failure of openssl's own)"
grep -q "cordon: cordon_init failed: this CPU or kernel has no usable memory protection keys" <<<"$err" ||
  fail "no sentence of the provider's on stderr"
grep -q "(the cordon provider did not start)" <<<"$err" || fail "stderr does not say the provider did not start"
echo "provider_fails_closed: openssl exited $status, and stderr says why:"
grep "cordon provider did not start" <<<"$err" | head -1
