#!/usr/bin/env bash
# Every program the build links with libcordon must pass the inspector: a
# static link can put WRPKRU or XRSTOR bytes into a displacement by chance
# (a call or a rip-relative address whose distance happens to read
# 0f 01 ef). cordon_init() would then refuse to run, and the PKU test would
# fail far from the cause; this test names the program and the place.
# usage: programs_clean_test.sh CORDON_SCAN PROGRAM...
set -uo pipefail
scan=$1
shift
failed=0
for program in "$@"; do
  if ! out=$("$scan" "$program" 2>&1); then
    echo "FAIL $program: cordon-scan finds WRPKRU or XRSTOR bytes that are not gate sites:"
    grep -A7 "UNSAFE" <<<"$out"
    echo "  (a chance byte pattern from the link layout: change the layout, e.g. the padding before"
    echo "   cordon_signal_entry in runtime/gates/gate.S, and check again)"
    failed=1
  fi
done
[ "$failed" = 0 ] && echo "all $# programs are clean"
exit "$failed"
