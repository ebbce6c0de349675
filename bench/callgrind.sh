#!/usr/bin/env bash
# bench/callgrind.sh -- where junction spends its instructions on the blog
# workload: bench/blog.lua under valgrind --tool=callgrind, one profile per
# phase, and the top functions of each (callgrind_annotate).
#
#   bench/callgrind.sh [--P N] [--lua lua5.4|lua5.3|lua5.1|luajit] [--top N]
#                      [--schema ddl|sync] [--phase NAME[,NAME...]|all|worst|costliest]
#                      [--no-build]
#
# --P       posts (default 2000; G=200, K=5)
# --schema  the tables: the workload's DDL (default) or what db:sync() makes
#           from examples/models/ (raw C copies them: bench/run.sh says how)
# --top     functions listed per table (default 25)
# --phase   which phases get their function tables: names (a,b,c), "all",
#           "worst" (default: the three phases of 2-8 with the highest Ir
#           ratio junction / raw C) or "costliest" (the three with most Ir)
#
# bench/raw_blog runs under callgrind too (cut at its fflush after each phase
# line), so the first table gives Ir per call of both and their ratio, and
# how junction's instructions split between SQLite, junction's C, the Lua VM
# and libc.
#
# How the profile is cut into phases: blog.lua writes each phase's line with
# one fwrite (JUNCTION_BENCH_MARK=1 flushes it), and callgrind dumps its
# counters before every fwrite (--dump-before=fwrite). So callgrind.out.1 is
# start-up, sync and insert_genres, and callgrind.out.K (K = 2..8) is phase K
# (its work, the release of its results and its checksum query), in the order
# of WORKLOAD.md. Instruction counts (Ir) are not time: I/O, cache misses and
# system calls cost time that Ir does not show.
#
# Profiles are kept in bench/results/callgrind-<stamp>/ for kcachegrind or
# callgrind_annotate --tree=caller.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

P=2000 G=200 K=5 lua=lua5.4 top=25 which=worst do_build=1 schema=ddl
while [ $# -gt 0 ]; do
  case $1 in
    --P|--p) P=$2; shift 2 ;;
    --lua)   lua=$2; shift 2 ;;
    --top)   top=$2; shift 2 ;;
    --phase) which=$2; shift 2 ;;
    --schema) case $2 in ddl|sync) schema=$2 ;;
                *) echo "callgrind.sh: --schema must be ddl or sync" >&2; exit 2 ;; esac; shift 2 ;;
    --no-build) do_build=0; shift ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "callgrind.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done
case $lua in
  lua5.4) luaver=5.4 ;;
  lua5.3) luaver=5.3 ;;
  lua5.1) luaver=5.1 ;;
  luajit) luaver=jit ;;
  *) echo "callgrind.sh: --lua must be lua5.4, lua5.3, lua5.1 or luajit" >&2; exit 2 ;;
esac
command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null ||
  { echo "callgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

[ "$do_build" = 1 ] && make -s -C "$repo" build >&2
cdir=$repo/build/$luaver
[ -f "$cdir/junction/core.so" ] || { echo "callgrind.sh: $cdir/junction/core.so is missing (make build)" >&2; exit 1; }

build=$here/build
out=$here/results/callgrind-$(date -u +%Y%m%dT%H%M%SZ)-$lua-$schema-P$P
mkdir -p "$out" "$build"
db=$out/blog.db
rm -f "$db" "$db-wal" "$db-shm"
lpath="$repo/lua/?.lua;$repo/lua/?/init.lua;;"
lcpath="$cdir/?.so;;"
jn_env=("LUA_PATH=$lpath" "LUA_CPATH=$lcpath" "LUA_PATH_5_3=$lpath" "LUA_CPATH_5_3=$lcpath"
        "LUA_PATH_5_4=$lpath" "LUA_CPATH_5_4=$lcpath")

# raw C, built as bench/run.sh builds it; on the sync schema it copies the
# tables from a database that blog.lua --schema-only made.
if [ ! -x "$build/raw_blog" ] || [ "$here/raw_blog.c" -nt "$build/raw_blog" ]; then
  "${CC:-cc}" -std=c99 -O2 -Wall -Wextra -o "$build/raw_blog" "$here/raw_blog.c" -lsqlite3 >&2
fi
raw_cmd=("$build/raw_blog")
if [ "$schema" = sync ]; then
  env "${jn_env[@]}" "$lua" "$here/blog.lua" --schema sync --schema-only "$out/sync-schema.db" >&2
  raw_cmd+=(--schema-from "$out/sync-schema.db")
fi

echo "callgrind.sh: valgrind --tool=callgrind $lua bench/blog.lua --schema $schema (P=$P G=$G K=$K) ..." >&2
env JUNCTION_BENCH_MARK=1 "${jn_env[@]}" \
  valgrind --tool=callgrind --dump-before=fwrite \
    --callgrind-out-file="$out/callgrind.out" --log-file="$out/valgrind.log" \
    "$lua" "$here/blog.lua" --schema "$schema" "$db" "$P" "$G" "$K" >"$out/blog.txt" ||
  { echo "callgrind.sh: the run failed; see $out/valgrind.log" >&2; cat "$out/blog.txt" >&2; exit 1; }
rm -f "$db" "$db-wal" "$db-shm"

# The raw C reference under callgrind too, for Ir per call side by side. It
# flushes stdout after each phase line, so it is cut at fflush.
mkdir -p "$out/raw"
echo "callgrind.sh: valgrind --tool=callgrind raw_blog, $schema schema (P=$P G=$G K=$K) ..." >&2
valgrind --tool=callgrind --dump-before=fflush \
    --callgrind-out-file="$out/raw/callgrind.out" --log-file="$out/raw/valgrind.log" \
    "${raw_cmd[@]}" "$db" "$P" "$G" "$K" >"$out/raw/blog.txt" ||
  { echo "callgrind.sh: raw_blog failed; see $out/raw/valgrind.log" >&2; exit 1; }
rm -f "$db" "$db-wal" "$db-shm"

mapfile -t phases < <(awk '{ print $1 }' "$out/blog.txt")
[ "${#phases[@]}" -eq 8 ] || { echo "callgrind.sh: expected 8 phase lines, got ${#phases[@]}" >&2; exit 1; }
for d in "$out" "$out/raw"; do
  ndumps=$(find "$d" -maxdepth 1 -name 'callgrind.out.*' | wc -l)
  [ "$ndumps" -eq 8 ] || echo "callgrind.sh: warning: $ndumps dumps in $d, not 8: the phases are cut wrongly" >&2
done

# The function lines of callgrind_annotate: "1,234 (12.34%)  file:function [object]".
# In a dump taken mid-run, the frames on the stack at the dump (the Lua
# interpreter's main loop, pcall, ...) show 100% or more even by self cost:
# lines from 99.5% up are left out, and so are the duplicate lines without
# an [object] that inclusive mode adds. The whole output is read (no `head`:
# pipefail and SIGPIPE).
table() {  # FILE INCLUSIVE(yes|no) [ERE that a line must match]
  callgrind_annotate --threshold=100 --auto=no --inclusive="$2" "$1" |
    awk -v top="$top" -v only="${3:-}" '
      /^ *[0-9,]+ \( *[0-9.]+%\)  .*\]$/ {
        pct = $0; sub(/^[^(]*\( */, "", pct); sub(/%.*/, "", pct)
        if (pct + 0 < 99.5 && (only == "" || $0 ~ only) && ++n <= top) print
      }'
}

# Self cost per shared object, as % of the phase: "sqlite 61.2  junction 20.1 ...".
objects() {  # FILE
  callgrind_annotate --threshold=100 --auto=no --inclusive=no "$1" |
    awk '/^ *[0-9,]+ \( *[0-9.]+%\)  .*\]$/ && !/\((99\.[5-9]|[1-9][0-9][0-9]\.[0-9])%\)/ {
           n = $1; gsub(/,/, "", n); o = $NF
           if (o ~ /junction\/core/) o = "junction"; else if (o ~ /sqlite/) o = "sqlite"
           else if (o ~ /lua|luajit/) o = "lua"; else if (o ~ /libc[.]/) o = "libc"; else o = "other"
           c[o] += n; t += n }
         END { for (o in c) printf "%s %.1f  ", o, 100 * c[o] / t; printf "\n" }'
}

ir() { awk '/^totals:/ { print $2 }' "$1"; }

echo "== instructions (Ir) per phase, P=$P, $lua, $schema schema; profiles in ${out#$repo/}/"
printf '%-14s %12s %12s %8s   %s\n' phase "raw Ir/call" "jn Ir/call" "jn/raw" "junction's Ir by object (self, %)"
for k in 1 2 3 4 5 6 7 8; do
  n=$(ir "$out/callgrind.out.$k"); nr=$(ir "$out/raw/callgrind.out.$k")
  calls=$(awk -v k="$k" 'NR == k { print $2 }' "$out/blog.txt")
  awk -v ph="${phases[k-1]}" -v n="$n" -v nr="$nr" -v c="$calls" -v o="$(objects "$out/callgrind.out.$k")" \
    'BEGIN { printf "%-14s %12.0f %12.0f %8.2f   %s\n", ph, nr / c, n / c, n / nr, o }'
done
echo "(insert_genres includes start-up, schema and sync; each phase includes its checksum query)"

case $which in
  costliest) mapfile -t show < <(for k in 2 3 4 5 6 7 8; do echo "$(ir "$out/callgrind.out.$k") $k"; done |
                                   sort -rn | head -n 3 | awk '{ print $2 }') ;;
  worst)   mapfile -t show < <(for k in 2 3 4 5 6 7 8; do
                                 echo "$(awk -v a="$(ir "$out/callgrind.out.$k")" -v b="$(ir "$out/raw/callgrind.out.$k")" \
                                          'BEGIN { print a / b }') $k"; done |
                               sort -rn | head -n 3 | awk '{ print $2 }') ;;
  all)     show=(1 2 3 4 5 6 7 8) ;;
  *)       show=()
           for name in ${which//,/ }; do
             n=${#show[@]}
             for k in 1 2 3 4 5 6 7 8; do [ "${phases[k-1]}" = "$name" ] && show+=("$k"); done
             [ "${#show[@]}" -gt "$n" ] || { echo "callgrind.sh: no phase '$name'" >&2; exit 2; }
           done ;;
esac

for k in "${show[@]}"; do
  f=$out/callgrind.out.$k
  echo
  echo "== ${phases[k-1]}: top $top functions by self cost (exclusive Ir)"
  table "$f" no
  echo
  echo "== ${phases[k-1]}: top $top functions by inclusive cost"
  table "$f" yes
  echo
  echo "== ${phases[k-1]}: junction's own functions (core.so), inclusive cost"
  table "$f" yes 'junction/core[.]so|csrc/'
done
