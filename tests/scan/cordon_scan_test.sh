#!/usr/bin/env bash
# cordon-scan end to end: exit codes, text and JSON output, on a runtime-only
# program (every occurrence a safe gate site), on an object with a stray
# WRPKRU, and on files that are not ELF or do not exist.
# usage: cordon_scan_test.sh CORDON_SCAN RUNTIME_ONLY UNSAFE_OBJECT
set -uo pipefail
scan=$1 runtime_only=$2 unsafe=$3
# shellcheck source=../support/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../support/check.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$scan" --json "$runtime_only" > "$tmp/clean.json"; rc=$?
check "runtime-only program is clean" 0 "$rc"
summary=$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))[0]
occ = r["occurrences"]
print(len(occ), sum(o["safe"] for o in occ), len({o["symbol"].split("_")[2] for o in occ}))
' "$tmp/clean.json")
check "exactly the 334 gate sites, all safe, in the gates, callouts and signal paths" "334 334 6" "$summary"

"$scan" "$unsafe" > "$tmp/unsafe.txt"; rc=$?
check "stray WRPKRU found" 1 "$rc"
grep -q "WRPKRU at .* in .text, stray_wrpkru+0x.*: UNSAFE: real instruction" "$tmp/unsafe.txt"; check "text names the symbol" 0 "$?"
grep -q "> 0x[0-9a-f]*  wrpkru" "$tmp/unsafe.txt"; check "text shows the instruction" 0 "$?"
grep -q "UNSAFE: unintended" "$tmp/unsafe.txt"; check "unintended occurrence in an immediate" 0 "$?"

"$scan" --json "$unsafe" "$runtime_only" > "$tmp/both.json"; rc=$?
check "unsafe wins over clean" 1 "$rc"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/both.json"; check "JSON parses" 0 "$?"

printf 'not an elf\n' > "$tmp/text"
"$scan" "$tmp/text" > "$tmp/err.txt"; rc=$?
check "not ELF is an error" 2 "$rc"
grep -q "not an ELF file" "$tmp/err.txt"; check "not ELF message" 0 "$?"
"$scan" /nonexistent/file > /dev/null; check "missing file is an error" 2 "$?"
head -c 200 "$runtime_only" > "$tmp/truncated"
"$scan" "$tmp/truncated" > "$tmp/trunc.txt"; rc=$?
check "truncated file is an error" 2 "$rc"
grep -q "malformed ELF file" "$tmp/trunc.txt"; check "truncated message" 0 "$?"
"$scan" > /dev/null 2>&1; check "no arguments is a usage error" 2 "$?"
"$scan" --pid 12x > /dev/null 2>&1; check "bad pid is a usage error" 2 "$?"

# A running process: this shell's own child. `$!` is known right after the
# fork, before the exec and before ld.so has mapped libc, so wait until the
# child is sleep itself, blocked in its nanosleep, with libc mapped
# executable (bounded: 10 s).
sleep 30 & sleeper=$!
sleep_bin=$(readlink -f "$(command -v sleep)")
ready=0
for _ in $(seq 1000); do
  if [ "$(readlink -f "/proc/$sleeper/exe" 2>/dev/null)" = "$sleep_bin" ] &&
     grep -q 'r-xp.*/libc\.so' "/proc/$sleeper/maps" 2>/dev/null &&
     grep -q nanosleep "/proc/$sleeper/wchan" 2>/dev/null; then
    ready=1; break
  fi
  sleep 0.01
done
check "the sleeping child is ready to scan" 1 "$ready"
"$scan" --pid "$sleeper" > "$tmp/pid.txt"; rc=$?
kill "$sleeper" 2>/dev/null
check "a running process (libc's pkey_set) is unsafe" 1 "$rc"
grep -q "pkey_set" "$tmp/pid.txt"; check "the process scan symbolizes libc" 0 "$?"

finish
