#!/usr/bin/env bash
# heap_compare.sh: the trusted heap against glibc, jemalloc and mimalloc, in
# one run. cordon_heap_bench runs once per malloc (jemalloc and mimalloc
# through LD_PRELOAD: Debian's libjemalloc2 and libmimalloc2.0), each time
# with repetitions interleaved at random, and the table gives medians of CPU
# time and, for each malloc, the trusted heap's time over that malloc's,
# both taken in the same process.
#
#   bench/heap_compare.sh [BUILD_DIR] [extra benchmark flags...]
set -euo pipefail
build=${1:-build}
shift || true
bench="$build/bench/cordon_heap_bench"
[[ -x $bench ]] || { echo "heap_compare: $bench not built" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
flags=(--benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
       --benchmark_report_aggregates_only=true --benchmark_min_time=0.2
       --benchmark_format=json "$@")
declare -A preload=([glibc]="" [jemalloc]=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
                    [mimalloc]=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2)
for name in glibc jemalloc mimalloc; do
  lib=${preload[$name]}
  if [[ -n $lib && ! -e $lib ]]; then
    echo "heap_compare: $lib missing (apt-get install libjemalloc2 libmimalloc2.0)" >&2
    exit 2
  fi
  LD_PRELOAD=$lib "$bench" "${flags[@]}" >"$out/$name.json"
done
python3 - "$out" <<'EOF'
import json, sys, os
out = sys.argv[1]
def medians(name):
    data = json.load(open(os.path.join(out, name + ".json")))
    m = {b["run_name"]: b["cpu_time"] for b in data["benchmarks"] if b.get("aggregate_name") == "median"}
    return data["context"], m
ctx, _ = medians("glibc")
print("platform:", ctx.get("cordon_platform", "?"))
rows = {}
for name in ("glibc", "jemalloc", "mimalloc"):
    _, m = medians(name)
    rows[name] = m
print("%-34s %10s %10s %10s %10s   %s" % ("benchmark (median CPU ns)", "trusted", "glibc", "jemalloc", "mimalloc",
                                          "trusted / glibc, jemalloc, mimalloc (same process)"))
for run, t in rows["glibc"].items():
    if not run.startswith("BM_TrustedHeap") or "Resident" in run:
        continue
    sysname = run.replace("BM_TrustedHeap", "BM_SystemMalloc")
    cells, ratios = [], []
    for name in ("glibc", "jemalloc", "mimalloc"):
        s = rows[name].get(sysname)
        mine = rows[name].get(run)
        cells.append("%10.1f" % s if s else "%10s" % "-")
        ratios.append("%.2f" % (mine / s) if s and mine else "-")
    print("%-34s %10.1f %s   %s" % (run.replace("BM_TrustedHeap", ""), t, " ".join(cells), ", ".join(ratios)))
for run, s in rows["glibc"].items():
    if run.startswith("BM_SystemCalloc"):
        mine = rows["glibc"].get(run.replace("BM_SystemCalloc", "BM_TrustedHeap"))
        print("%-34s %10.1f %10.1f   trusted / glibc calloc: %s" % (run.replace("BM_System", ""), mine or 0, s,
              "%.2f" % (mine / s) if mine else "-"))
EOF
