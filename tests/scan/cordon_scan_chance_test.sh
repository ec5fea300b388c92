#!/usr/bin/env bash
# cordon-scan on a program with WRPKRU bytes planted in three displacements
# (tests/scan/chance_fixture.S): each is an unsafe, unintended occurrence
# that is relocatable, the text output says cordon_init() relocates it, and
# the exit status is still 1 (the file holds them).
# usage: cordon_scan_chance_test.sh CORDON_SCAN BINARY
set -uo pipefail
scan=$1 binary=$2
# shellcheck source=../support/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../support/check.sh"
json=$("$scan" --json "$binary"); rc=$?
check "exit status 1: unsafe occurrences in the file" 1 "$rc"
summary=$(python3 -c '
import json, sys
occ = json.loads(sys.stdin.read())["objects"][0]["occurrences"]
planted = sorted((o["symbol"], o["verdict"], o["safe"], o["relocatable"]) for o in occ
                 if o["symbol"] in ("chance_call", "chance_load", "chance_branch"))
print(planted, sum(not o["safe"] and not o["relocatable"] for o in occ))
' <<< "$json")
check "the three planted occurrences are unintended and relocatable, nothing else unsafe" \
  "[('chance_branch', 'unintended', False, True), ('chance_call', 'unintended', False, True), ('chance_load', 'unintended', False, True)] 0" \
  "$summary"
text=$("$scan" "$binary")
check "the text says cordon_init() relocates them" 3 "$(grep -c 'cordon_init() relocates it' <<< "$text")"
finish
