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
  json=$("$scan" --json "$binary"); rc=$?
  check "$(basename "$binary"): cordon-scan finds nothing unsafe" 0 "$rc"
  summary=$(python3 -c '
import json, sys
occ = json.loads(sys.stdin.read())["objects"][0]["occurrences"]
wrpkru = [o for o in occ if o["kind"] == "wrpkru"]
print(len(wrpkru), sum(o["safe"] for o in wrpkru), sum(not o["safe"] for o in occ))
' <<< "$json")
  check "$(basename "$binary"): 335 + 2x$entries WRPKRU, all safe gate sites, none unsafe" \
    "$((335 + 2 * entries)) $((335 + 2 * entries)) 0" "$summary"
done
finish
