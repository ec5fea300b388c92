#!/usr/bin/env bash
# Tests of tools/cordon-vm itself: status and signal pass-through, separate
# stdout and stderr, arguments, environment, extra files, and the distinct
# failure codes. usage: cordon_vm_test.sh CORDON_VM VM_PROBE KERNEL
set -uo pipefail
vm=$1 probe=$2 kernel=$3
# shellcheck source=../support/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../support/check.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

out=$("$vm" --kernel "$kernel" "$probe" echo "two words" '$HOME' 2>"$tmp/err"); rc=$?
check "echo status" 0 "$rc"
check "arguments keep spaces and are not expanded" $'two words\n$HOME' "$out"
check "stderr is separate" "err" "$(cat "$tmp/err")"

"$vm" --kernel "$kernel" "$probe" exit 42 >/dev/null 2>&1; check "exit status passes through" 42 "$?"
"$vm" --kernel "$kernel" "$probe" signal 11 >/dev/null 2>&1; check "a signal gives 128+N" 139 "$?"

out=$(CORDON_TEST_VALUE=from-host "$vm" --kernel "$kernel" --env EXTRA=x "$probe" env CORDON_TEST_VALUE 2>/dev/null)
check "CORDON_* variables pass through" "from-host" "$out"
out=$("$vm" --kernel "$kernel" --env EXTRA="a b" "$probe" env EXTRA 2>/dev/null)
check "--env sets a variable" "a b" "$out"

printf 'file content\n' > "$tmp/data.txt"
out=$("$vm" --kernel "$kernel" --file "$tmp/data.txt:/data/in.txt" "$probe" cat /data/in.txt 2>/dev/null)
check "--file copies a file in" "file content" "$out"

out=$("$vm" --kernel "$kernel" "$probe" pkey 2>/dev/null); rc=$?
check "the VM has protection keys" "0:pkey ok" "$rc:$out"

"$vm" --kernel "$kernel" /nonexistent/program >/dev/null 2>"$tmp/err"; rc=$?
check "missing program" 127 "$rc"
grep -q "not found" "$tmp/err"; check "missing program message" 0 "$?"

"$vm" --kernel no-such-series "$probe" exit 0 >/dev/null 2>"$tmp/err"; rc=$?
check "unknown kernel" 125 "$rc"
grep -q "neither a series" "$tmp/err"; check "unknown kernel message" 0 "$?"

"$vm" --kernel "$kernel" --timeout 1 "$probe" exit 0 >/dev/null 2>"$tmp/err"; rc=$?
check "time-out" 124 "$rc"
grep -q "time-out" "$tmp/err"; check "time-out message" 0 "$?"

"$vm" --kernel "$kernel" --bogus-option "$probe" >/dev/null 2>&1; check "bad usage" 125 "$?"

"$vm" --kernel "$kernel" "$probe" panic >/dev/null 2>"$tmp/err"; rc=$?
check "kernel panic" 122 "$rc"
grep -q "kernel panic in the VM.*sysrq triggered crash" "$tmp/err"; check "panic reason quoted" 0 "$?"

finish
