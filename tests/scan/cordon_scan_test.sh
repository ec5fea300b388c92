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
doc = json.load(open(sys.argv[1]))
assert doc["schema"] == "cordon-scan" and doc["schema_version"] == 1, doc.get("schema")
occ = doc["objects"][0]["occurrences"]
assert all(isinstance(o["address"], int) and o["verdict"] == "gate_site" for o in occ)
print(len(occ), sum(o["safe"] for o in occ), len({o["symbol"].split("_")[2] for o in occ}))
' "$tmp/clean.json")
check "exactly the 335 gate sites, all safe, in the gates and callouts (avx, avx512), the signal paths (entry, resume, restorer), a runtime-made thread's way out (clone) and the fatal path (die)" "335 335 7" "$summary"

"$scan" "$unsafe" > "$tmp/unsafe.txt"; rc=$?
check "stray WRPKRU found" 1 "$rc"
grep -q "WRPKRU at .* in .text, stray_wrpkru+0x.*: UNSAFE: real instruction" "$tmp/unsafe.txt"; check "text names the symbol" 0 "$?"
grep -q "> 0x[0-9a-f]*  wrpkru" "$tmp/unsafe.txt"; check "text shows the instruction" 0 "$?"
grep -q "UNSAFE: unintended" "$tmp/unsafe.txt"; check "unintended occurrence in an immediate" 0 "$?"

"$scan" --json "$unsafe" "$runtime_only" > "$tmp/both.json"; rc=$?
check "unsafe wins over clean" 1 "$rc"
out=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
v = sorted({o["verdict"] for r in d["objects"] for o in r["occurrences"]})
print(d["summary"]["objects"], d["summary"]["errors"], d["summary"]["unsafe"] > 0, " ".join(v))
' "$tmp/both.json")
check "JSON: two objects, verdicts as an enum" "2 0 True gate_site real_instruction unintended" "$out"

printf 'not an elf\n' > "$tmp/text"
"$scan" "$tmp/text" > "$tmp/out.txt" 2> "$tmp/err.txt"; rc=$?
check "not ELF is an error" 2 "$rc"
check "not ELF message, on stderr, the path once" "cordon-scan: $tmp/text: not an ELF file" "$(cat "$tmp/err.txt")"
check "nothing on stdout for an error" "" "$(cat "$tmp/out.txt")"
"$scan" /nonexistent/file > /dev/null 2> "$tmp/err.txt"; check "missing file is an error" 2 "$?"
check "missing file message" "cordon-scan: /nonexistent/file: cannot open: No such file or directory" "$(cat "$tmp/err.txt")"
"$scan" --json /nonexistent/file > "$tmp/err.json" 2>/dev/null; check "missing file in JSON is an error" 2 "$?"
out=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["summary"]["errors"], d["objects"][0]["error"])' "$tmp/err.json")
check "JSON carries the error" "1 /nonexistent/file: cannot open: No such file or directory" "$out"
head -c 200 "$runtime_only" > "$tmp/truncated"
"$scan" "$tmp/truncated" > /dev/null 2> "$tmp/trunc.txt"; rc=$?
check "truncated file is an error" 2 "$rc"
grep -q "malformed ELF file" "$tmp/trunc.txt"; check "truncated message" 0 "$?"
"$scan" > /dev/null 2>&1; check "no arguments is a usage error" 2 "$?"
"$scan" --pid 12x > /dev/null 2> "$tmp/err.txt"; check "bad pid is a usage error" 2 "$?"
grep -q "^cordon-scan: --pid wants a process id, not '12x'" "$tmp/err.txt"; check "bad pid says why" 0 "$?"
out=$("$scan" --help 2>/dev/null); rc=$?
check "--help on stdout, status 0" "0:usage: cordon-scan [--json] FILE..." "$rc:${out%%$'\n'*}"
out=$("$scan" --version 2>/dev/null); rc=$?
[[ "$out" =~ ^cordon-scan\ [0-9]+\.[0-9]+\.[0-9]+$ ]]; check "--version" "0:0" "$rc:$?"

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
