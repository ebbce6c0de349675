#!/usr/bin/env bash
# bench/run.sh -- the blog workload (../shared/bench/WORKLOAD.md): junction
# (bench/blog.lua) against the hand-written SQLite C reference (raw_c_blog.c),
# in one run on one machine. `make bench` calls it.
#
#   bench/run.sh [--rounds N] [--P N] [--G N] [--K N] [--lua lua5.4|lua5.3|lua5.1|luajit]
#                [--ci | --scale] [--no-build]
#
# default   R rounds (5); each round runs raw C and junction once each on a
#           fresh database file, alternating (odd rounds raw C first, even
#           rounds junction first). Per phase it prints the median calls/s of
#           each, the median of the per-round ratios junction/raw C, the
#           target, and whether every round's checksums agree; then the
#           median peak RSS of each and their ratio. Exit status 1 if any
#           checksum disagrees or a program fails (missed targets do not fail).
# --ci      P=300, 1 round; checks only that each phase's checksum agrees with
#           raw C and ends with "N passed, N failed".
# --scale   P = 1e4, 1e5, 1e6 (one round each unless --rounds is given):
#           per-call cost in microseconds per phase at each P, and the ratio
#           of the cost at P=1e6 to the cost at P=1e4 ("last/first"; target <= 1.3 for
#           junction). eager is one call, so its cost is counted per post.
#           Takes many minutes.
#
# Results are printed and written to bench/results/.
# Environment: SHARED_BENCH (default ../shared/bench beside the repo);
# SCALE_PS (default "10000 100000 1000000") the P values of --scale.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
shared=${SHARED_BENCH:-$(dirname "$repo")/shared/bench}
build=$here/build
results=$here/results

rounds= P=20000 G=200 K=5 lua=lua5.4 mode=compare do_build=1
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --P|--p)  P=$2; shift 2 ;;
    --G|--g)  G=$2; shift 2 ;;
    --K|--k)  K=$2; shift 2 ;;
    --lua)    lua=$2; shift 2 ;;
    --ci)     mode=ci; shift ;;
    --scale)  mode=scale; shift ;;
    --no-build) do_build=0; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done
case $mode in
  ci)      P=300; rounds=1 ;;
  scale)   rounds=${rounds:-1} ;;
  compare) rounds=${rounds:-5} ;;
esac
case $lua in
  lua5.4) luaver=5.4 ;;
  lua5.3) luaver=5.3 ;;
  lua5.1) luaver=5.1 ;;
  luajit) luaver=jit ;;
  *) echo "run.sh: --lua must be lua5.4, lua5.3, lua5.1 or luajit" >&2; exit 2 ;;
esac

# --- build -------------------------------------------------------------------

mkdir -p "$build" "$results"
# raw C: shared/ is read-only, so its source is copied here and built with its
# own Makefile (its CFLAGS, -O2), whatever CFLAGS the caller has set.
cp -p "$shared/raw_c_blog.c" "$build/raw_c_blog.c"
env -u CFLAGS -u LDLIBS make -s -C "$build" -f "$shared/Makefile" raw_c_blog >&2
if [ "$do_build" = 1 ]; then
  make -s -C "$repo" build >&2
fi
cdir=$repo/build/$luaver
[ -f "$cdir/junction/core.so" ] || { echo "run.sh: $cdir/junction/core.so is missing (make build)" >&2; exit 1; }
command -v "$lua" >/dev/null || { echo "run.sh: $lua is not installed" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "run.sh: /usr/bin/time is missing (Debian package time: make deps)" >&2; exit 1; }

lpath="$repo/lua/?.lua;$repo/lua/?/init.lua;;"
lcpath="$cdir/?.so;;"
raw_cmd=("$build/raw_c_blog")
jn_cmd=(env "LUA_PATH=$lpath" "LUA_CPATH=$lcpath" "LUA_PATH_5_3=$lpath" "LUA_CPATH_5_3=$lcpath"
        "LUA_PATH_5_4=$lpath" "LUA_CPATH_5_4=$lcpath" "$lua" "$here/blog.lua")

# --- running -----------------------------------------------------------------

work=$build/run.$$
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
data=$work/data          # lines: P round impl phase calls seconds calls/s checksum
failed_runs=0

# run_one IMPL ROUND P: one program on a fresh database; appends to $data.
run_one() {
  local impl=$1 round=$2 p=$3 db=$work/blog.db
  local -a cmd
  if [ "$impl" = raw ]; then cmd=("${raw_cmd[@]}"); else cmd=("${jn_cmd[@]}"); fi
  rm -f "$db" "$db-wal" "$db-shm"
  if /usr/bin/time -v -o "$work/time" "${cmd[@]}" "$db" "$p" "$G" "$K" >"$work/out" 2>"$work/err" &&
     [ "$(wc -l <"$work/out")" -eq 8 ]; then
    awk -v p="$p" -v r="$round" -v i="$impl" '{ print p, r, i, $0 }' "$work/out" >>"$data"
    awk -v p="$p" -v r="$round" -v i="$impl" \
        '/Maximum resident set size/ { print p, r, i, "peak_rss_kib", 1, 0, $NF, 0 }' "$work/time" >>"$data"
  else
    failed_runs=$((failed_runs + 1))
    echo "run.sh: $impl (P=$p, round $round) failed; output and error:" >&2
    sed 's/^/  out: /' "$work/out" >&2
    { grep -v -e '^	' -e '^Command exited' "$work/err" || true; } | tail -n 20 | sed 's/^/  err: /' >&2
    { grep -e 'Exit status' -e 'signal' "$work/time" || true; } | sed 's/^/  /' >&2
    awk -v p="$p" -v r="$round" -v i="$impl" '{ print p, r, i, $0 }' "$work/out" >>"$data"
  fi
  rm -f "$db" "$db-wal" "$db-shm"
}

# run_rounds P: R alternating rounds at P.
run_rounds() {
  local p=$1 r
  for r in $(seq 1 "$rounds"); do
    echo "run.sh: P=$p round $r/$rounds" >&2
    if [ $((r % 2)) = 1 ]; then run_one raw "$r" "$p"; run_one junction "$r" "$p"
    else run_one junction "$r" "$p"; run_one raw "$r" "$p"; fi
  done
}

# --- statistics (awk) --------------------------------------------------------

# Shared awk helpers: median of a list of numbers held in a[1..n].
awk_lib='
function sort(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
function median(a, n) { if (n == 0) return ""; sort(a, n); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
function target(ph) {
  if (ph == "set_initial" || ph == "set_shift" || ph == "remove_all") return 0.9
  if (ph == "insert_posts" || ph == "get_all" || ph == "eager" || ph == "count_has") return 0.8
  return 0
}
function show(p, impl, ph,   r) {  # the first value that differs, without creating entries
  for (r = 1; r <= R; r++) {
    if (!((p, r, impl, ph) in ck)) return "missing"
    if (!((p, r, "raw", ph) in ck && (p, r, "junction", ph) in ck) || ck[p, r, "raw", ph] != ck[p, r, "junction", ph])
      return ck[p, r, impl, ph]
  }
  return "missing"
}
BEGIN { nph = split("insert_genres insert_posts set_initial get_all set_shift eager count_has remove_all", PH, " ") }
{ cps[$1, $2, $3, $4] = $7; sec[$1, $2, $3, $4] = $6; ck[$1, $2, $3, $4] = $8; calls[$1, $4] = $5 }
'

# compare/ci table at one P; prints "CHECKS <passed> <failed>" last.
compare_table() {
  awk -v P="$P" -v R="$rounds" -v mode="$mode" "$awk_lib"'
END {
  printf "%-14s %14s %14s %12s %-10s %s\n", "phase", "raw C calls/s", "junction c/s", "junction/raw", " target", "checksums"
  passed = failed = 0
  for (k = 1; k <= nph; k++) {
    ph = PH[k]; nr = nj = nq = 0; agree = 1; delete a; delete b; delete q
    for (r = 1; r <= R; r++) {
      hr = ((P, r, "raw", ph) in cps); hj = ((P, r, "junction", ph) in cps)
      if (hr) a[++nr] = cps[P, r, "raw", ph]
      if (hj) b[++nj] = cps[P, r, "junction", ph]
      if (hr && hj && cps[P, r, "raw", ph] > 0) q[++nq] = cps[P, r, "junction", ph] / cps[P, r, "raw", ph]
      if (!(hr && hj)) agree = 0; else if (ck[P, r, "raw", ph] != ck[P, r, "junction", ph]) agree = 0
    }
    if (agree) passed++; else failed++
    t = target(ph); m = median(q, nq)
    verdict = (t == 0 || m == "" || mode == "ci") ? "" : (m >= t ? " ok" : " MISS")
    printf "%-14s %14s %14s %12s %-10s %s\n", ph,
      nr ? sprintf("%.1f", median(a, nr)) : "-", nj ? sprintf("%.1f", median(b, nj)) : "-",
      nq ? sprintf("%.3f", m) : "-", t ? sprintf(" >=%.1f", t) verdict : " -",
      agree ? "agree" : "DIFFER (raw " show(P, "raw", ph) ", junction " show(P, "junction", ph) ")"
  }
  nr = nj = 0; delete a; delete b
  for (r = 1; r <= R; r++) {
    if ((P, r, "raw", "peak_rss_kib") in cps) a[++nr] = cps[P, r, "raw", "peak_rss_kib"]
    if ((P, r, "junction", "peak_rss_kib") in cps) b[++nj] = cps[P, r, "junction", "peak_rss_kib"]
  }
  if (nr && nj) {
    mr = median(a, nr); mj = median(b, nj)
    printf "peak RSS (KiB): raw C %d, junction %d, junction/raw %.2f (target <=1.5%s)\n",
      mr, mj, mj / mr, mode == "ci" ? "" : mj / mr <= 1.5 ? " ok" : " MISS"
  }
  print "CHECKS", passed, failed
}' "$data"
}

# scale table: per-call microseconds per phase at each P, and growth 1e6/1e4.
scale_table() {
  awk -v R="$rounds" -v PS="$*" "$awk_lib"'
END {
  np = split(PS, Ps, " ")
  passed = failed = 0
  for (w = 1; w <= 2; w++) {
    impl = w == 1 ? "raw" : "junction"
    printf "%s: microseconds per call (eager: per post)\n", impl == "raw" ? "raw C" : "junction"
    printf "%-14s", "phase"; for (x = 1; x <= np; x++) printf " %12s", "P=" Ps[x]
    printf " %12s %s\n", "last/first", impl == "junction" ? "  target" : ""
    for (k = 1; k <= nph; k++) {
      ph = PH[k]; printf "%-14s", ph
      for (x = 1; x <= np; x++) {
        p = Ps[x]; n = 0; delete a
        for (r = 1; r <= R; r++) if ((p, r, impl, ph) in sec) {
          units = ph == "eager" ? p : calls[p, ph]
          a[++n] = sec[p, r, impl, ph] / units * 1e6
          if (impl == "junction") { if (ck[p, r, "raw", ph] == ck[p, r, "junction", ph]) passed++; else failed++ }
        }
        c[x] = n ? median(a, n) : ""
        printf " %12s", n ? sprintf("%.3f", c[x]) : "-"
      }
      g = (c[1] != "" && c[np] != "" && c[1] > 0) ? c[np] / c[1] : ""
      printf " %12s", g == "" ? "-" : sprintf("%.2f", g)
      if (impl == "junction" && ph != "insert_genres" && g != "") printf "  <=1.3%s", g <= 1.3 ? " ok" : " MISS"
      printf "\n"
    }
    printf "%-14s", "peak RSS KiB"
    for (x = 1; x <= np; x++) { n = 0; delete a
      for (r = 1; r <= R; r++) if ((Ps[x], r, impl, "peak_rss_kib") in cps) a[++n] = cps[Ps[x], r, impl, "peak_rss_kib"]
      printf " %12s", n ? sprintf("%d", median(a, n)) : "-" }
    printf "\n\n"
  }
  print "CHECKS", passed, failed
}' "$data"
}

# --- main ----------------------------------------------------------------------

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$results/$stamp-$lua-$mode.txt
{
  echo "# bench/run.sh $mode: $lua, rounds=$rounds, G=$G K=$K, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "# $(uname -srm), $(nproc) cores, SQLite $(sqlite3 --version 2>/dev/null | cut -d' ' -f1), $("$lua" -v 2>&1 | head -n1)"
  echo "# junction $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '(no commit)')$(git -C "$repo" diff --quiet 2>/dev/null || echo ' (modified tree)')"
} >"$out"

if [ "$mode" = scale ]; then
  Ps=${SCALE_PS:-10000 100000 1000000}   # SCALE_PS: for trying the script out
  for p in $Ps; do run_rounds "$p"; done
  table=$(scale_table $Ps)
else
  run_rounds "$P"
  echo "# P=$P" >>"$out"
  table=$(compare_table)
fi

checks=$(printf '%s\n' "$table" | awk '$1 == "CHECKS" { print $2, $3 }')
passed=${checks% *} failed=${checks#* }
{
  printf '%s\n' "$table" | grep -v '^CHECKS '
  if [ "$mode" = ci ]; then echo "$passed passed, $failed failed"; fi
} | tee -a "$out"
{ echo; echo "# raw data: P round impl phase calls seconds calls/s checksum"; cat "$data"; } >>"$out"
echo "run.sh: results written to ${out#$repo/}" >&2

if [ "$failed" -ne 0 ] || [ "$failed_runs" -ne 0 ]; then
  echo "run.sh: FAILED: $failed checksum check(s) disagree, $failed_runs program run(s) failed" >&2
  exit 1
fi
