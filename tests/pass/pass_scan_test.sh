#!/usr/bin/env bash
# cordon-scan on binaries built with the pass plugin: every WRPKRU is a
# listed gate site (the runtime's 335 plus 2 per generated entry), all safe,
# and nothing is unsafe.
# usage: pass_scan_test.sh CORDON_SCAN BINARY ENTRIES [BINARY ENTRIES ...]
set -uo pipefail
scan=$1
shift
# shellcheck source=../support/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../support/check.sh"
while [ $# -ge 2 ]; do
  binary=$1 entries=$2
  shift 2
  # A chance occurrence in a displacement the link chose (docs/inspector.md,
  # "Chance occurrences": a sanitizer build met one in libseccomp) is not
  # the pass's doing, and cordon_init() relocates it: it is left out of
  # the counts, and makes the exit status 1.
  json=$("$scan" --json "$binary"); rc=$?
  summary=$(python3 -c '
import json, sys
everything = json.loads(sys.stdin.read())["objects"][0]["occurrences"]
occ = [o for o in everything if not o["relocatable"]]
wrpkru = [o for o in occ if o["kind"] == "wrpkru"]
print(len(wrpkru), sum(o["safe"] for o in wrpkru), sum(not o["safe"] for o in occ), 1 if len(occ) < len(everything) else 0)
' <<< "$json")
  check "$(basename "$binary"): cordon-scan finds nothing unsafe but relocatable chance occurrences" \
    "${summary##* }" "$rc"
  check "$(basename "$binary"): 335 + 2x$entries WRPKRU, all safe gate sites, none unsafe" \
    "$((335 + 2 * entries)) $((335 + 2 * entries)) 0" "${summary% *}"
done
finish
