#!/usr/bin/env bash
# bench/indexes.sh -- the junction table's second index, measured both ways
# (bench/indexes.lua: sync = both directions, lean = the user's override
# without it, ddl = the workload's DDL) for every phase, in instructions
# (callgrind, repeatable) and, with --time, in wall-clock time.
#
#   bench/indexes.sh [--P N] [--lua lua5.4|luajit] [--time ROUNDS] [--no-build]
#
# Default: P=2000 (G=200, K=5) under callgrind, one run per schema: Ir per call
# of every phase. --time R: P=20000 unless --P, R alternating rounds of the
# three schemas on fresh files, median microseconds per call. Prints a table;
# writes it to bench/results/<time>-indexes-<mode>.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
P= lua=lua5.4 rounds= do_build=1
while [ $# -gt 0 ]; do
  case $1 in
    --P|--p) P=$2; shift 2 ;;
    --lua) lua=$2; shift 2 ;;
    --time) rounds=$2; shift 2 ;;
    --no-build) do_build=0; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "indexes.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done
case $lua in lua5.4) luaver=5.4 ;; luajit) luaver=jit ;;
  *) echo "indexes.sh: --lua must be lua5.4 or luajit" >&2; exit 2 ;; esac
[ "$do_build" = 1 ] && make -s -C "$repo" build >&2
lpath="$repo/lua/?.lua;$repo/lua/?/init.lua;;" lcpath="$repo/build/$luaver/?.so;;"
export LUA_PATH=$lpath LUA_CPATH=$lcpath LUA_PATH_5_4=$lpath LUA_CPATH_5_4=$lcpath
run=("$lua" "$here/indexes.lua")     # no env wrapper: valgrind must start the interpreter itself
work=$(mktemp -d "${TMPDIR:-/tmp}/junction-indexes.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$here/results"
schemas="sync lean ddl"
data=$work/data    # schema round phase calls value(Ir or seconds)

if [ -z "$rounds" ]; then
  P=${P:-2000} mode=callgrind
  command -v valgrind >/dev/null || { echo "indexes.sh: valgrind is not installed" >&2; exit 1; }
  for s in $schemas; do
    echo "indexes.sh: callgrind, $s schema, P=$P" >&2
    mkdir -p "$work/$s"
    valgrind --tool=callgrind --dump-before=fwrite --callgrind-out-file="$work/$s/cg.out" \
      "${run[@]}" --schema "$s" "$work/$s.db" "$P" 200 5 >"$work/$s.out" 2>"$work/$s.err" ||
      { tail -n 20 "$work/$s.err" >&2; exit 1; }
    grep '^# indexes' "$work/$s.out" >>"$work/indexes"
    # dump N+1 (N >= 2) holds the work of the phase whose line is line N+1 of the output
    n=$(wc -l <"$work/$s.out")
    for k in $(seq 2 "$n"); do
      f="$work/$s/cg.out.$k"
      [ -f "$f" ] || continue
      ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$f")
      sed -n "${k}p" "$work/$s.out" | awk -v s="$s" -v ir="$ir" '{ print s, 1, $1, $2, ir, $5 }' >>"$data"
    done
  done
  unit="Ir per call"
else
  P=${P:-20000} mode=time
  for r in $(seq "$rounds"); do
    order=$schemas; [ $((r % 2)) = 0 ] && order="ddl lean sync"
    for s in $order; do
      echo "indexes.sh: round $r/$rounds, $s schema, P=$P" >&2
      rm -f "$work/db" "$work/db-wal" "$work/db-shm"
      "${run[@]}" --schema "$s" "$work/db" "$P" 200 5 >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
      [ "$r" = 1 ] && grep '^# indexes' "$work/out" >>"$work/indexes"
      awk -v s="$s" -v r="$r" '!/^#/ { print s, r, $1, $2, $3, $5 }' "$work/out" >>"$data"
    done
  done
  unit="microseconds per call (median of $rounds rounds)"
fi

out=$here/results/$(date -u +%Y%m%dT%H%M%SZ)-indexes-$mode.txt
{
  echo "# bench/indexes.sh ($mode): $lua, P=$P G=200 K=5, $(date -u '+%Y-%m-%d %H:%M UTC'), junction $(git -C "$repo" rev-parse --short HEAD 2>/dev/null)"
  cat "$work/indexes"
  awk -v unit="$unit" -v mode="$mode" '
    function median(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    {
      if (!($3 in seen)) { seen[$3] = 1; ph[++np] = $3 }
      v = mode == "time" ? $5 / $4 * 1e6 : $5 / $4
      x[$1, $3, ++cnt[$1, $3]] = v
      if (($3 in ck) && ck[$3] != $6) bad = bad " " $3; ck[$3] = $6
    }
    END {
      print "phase          " unit
      printf "%-14s %12s %12s %12s %10s %10s\n", "phase", "sync", "lean", "ddl", "sync/lean", "sync/ddl"
      for (k = 1; k <= np; k++) {
        p = ph[k]
        for (si = 1; si <= 3; si++) { s = si == 1 ? "sync" : si == 2 ? "lean" : "ddl"; n = cnt[s, p]; delete a
          for (i = 1; i <= n; i++) a[i] = x[s, p, i]; m[s] = n ? median(a, n) : 0 }
        printf "%-14s %12.1f %12.1f %12.1f %10.2f %10.2f\n", p, m["sync"], m["lean"], m["ddl"],
          m["lean"] ? m["sync"] / m["lean"] : 0, m["ddl"] ? m["sync"] / m["ddl"] : 0
      }
      if (bad != "") print "checksums differ between schemas:" bad
    }' "$data"
} | tee "$out"
echo "indexes.sh: written to ${out#$repo/}" >&2
