#!/usr/bin/env bash
# Tests of tools/cordon-vm itself: status and signal pass-through, separate
# stdout and stderr, arguments, environment, extra files, the distinct
# failure codes, and where tools/cordon-pku-run runs a program.
# usage: cordon_vm_test.sh CORDON_VM VM_PROBE KERNEL
set -uo pipefail
vm=$1 probe=$2 kernel=$3
# shellcheck source=../support/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../support/check.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The kernel is in the cache before the stderr checks (tools/bootstrap
# fetches both series; a first fetch would print its progress on stderr).
"$vm" --fetch-kernels --kernel "$kernel" 2>"$tmp/err"; check "kernel fetched or cached" 0 "$?"

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
"$vm" --kernel "$kernel" --cpu 'max;reboot' "$probe" exit 0 >/dev/null 2>&1; check "bad --cpu" 125 "$?"
"$vm" --kernel "$kernel" --append rdinit=/bin/sh "$probe" exit 0 >/dev/null 2>&1; check "--append may not replace init" 125 "$?"
out=$("$vm" --kernel "$kernel" --cpu max,pku=off "$probe" pkey 2>/dev/null); rc=$?
check "--cpu max,pku=off gives a CPU without protection keys" 1 "$rc"

# cordon-pku-run: a named kernel always means the VM, on any host.
run=$(dirname "$vm")/cordon-pku-run
out=$("$run" --kernel "$kernel" -- "$probe" pkey 2>"$tmp/err"); rc=$?
check "cordon-pku-run --kernel runs in the VM" "0:pkey ok" "$rc:$out"
grep -q "running in tools/cordon-vm (QEMU TCG, -cpu max), kernel $kernel\$" "$tmp/err"; check "cordon-pku-run says where" 0 "$?"
# --native runs here or fails; it never falls back to the VM.
"$run" --native -- "$probe" exit 0 >/dev/null 2>"$tmp/err"; rc=$?
if grep -qw pku /proc/cpuinfo && grep -qw ospke /proc/cpuinfo; then
  check "cordon-pku-run --native on a PKU host" 0 "$rc"
  grep -q "running natively on .*, Linux $(uname -r)" "$tmp/err"; check "--native says where" 0 "$?"
else
  check "cordon-pku-run --native without PKU fails" 125 "$rc"
  grep -q "this CPU or kernel has no protection keys" "$tmp/err"; check "--native says why" 0 "$?"
fi
"$run" --native --kernel "$kernel" -- "$probe" exit 0 >/dev/null 2>&1; check "--native with VM options is a usage error" 125 "$?"

"$vm" --kernel "$kernel" "$probe" panic >/dev/null 2>"$tmp/err"; rc=$?
check "kernel panic" 122 "$rc"
grep -q "kernel panic in the VM.*sysrq triggered crash" "$tmp/err"; check "panic reason quoted" 0 "$?"

finish
