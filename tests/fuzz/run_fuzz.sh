#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time from a fresh corpus seeded
# with the given files (a directory: the files in it); fails on the first
# crash, leak or sanitizer report.
# usage: run_fuzz.sh FUZZER SECONDS SEED...
set -euo pipefail
fuzzer=$1 seconds=$2
shift 2
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
for seed in "$@"; do
  if [ -d "$seed" ]; then
    find "$seed" -maxdepth 1 -type f -exec cp {} "$corpus/" \;
  else
    cp "$seed" "$corpus/"
  fi
done
printf '\x0f\x01\xef' > "$corpus/wrpkru"
printf '\x48\x0f\xae\x2f\x0f\xae\xe8\x0f\xae' > "$corpus/xrstor_lfence_cut"
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=4096 -max_len=1048576 -print_final_stats=1 \
  -artifact_prefix="$corpus/" "$corpus" 2>&1 | tail -n 25
echo "fuzzed for ${seconds}s: no crash"
