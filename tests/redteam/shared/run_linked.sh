#!/bin/sh
# run_linked.sh KERNEL NAME PROGRAM ARGS...: a program linked against libcordon.so (no preload).
set -u
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../../.." && pwd)
k=$1 name=$2; shift 2
mkdir -p "$here/logs"
"$root/tools/cordon-pku-run" --kernel "$k" --file "$here/out" -- "$@" >"$here/logs/$name.$k.out" 2>"$here/logs/$name.$k.err"
echo "exit $?"
cat "$here/logs/$name.$k.out"; grep -v '^[0-9a-f]\{64\}$' "$here/logs/$name.$k.err" | grep -v '^cordon-pku-run' | tail -5
"$here/judge.sh" "$here/logs/$name.$k.out" "$here/logs/$name.$k.err"
