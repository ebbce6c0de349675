#!/usr/bin/env bash
# bench/run.sh -- the blog workload (bench/WORKLOAD.md): junction
# (bench/blog.lua) against the hand-written SQLite C reference
# (bench/raw_blog.c), in one run on one machine, on two schemas. `make bench`
# calls it; it needs nothing outside the repository.
#
#   bench/run.sh [--rounds N] [--P N] [--G N] [--K N] [--lua lua5.4|lua5.3|lua5.1|luajit]
#                [--schema ddl|sync|both] [--ci | --scale] [--cross-check DIR] [--no-build]
#                [--pg URL|auto]
#
# schemas   ddl:  the workload's DDL text (one UNIQUE index on the junction table);
#           sync: the tables db:sync() makes from examples/models/ (what a user
#           gets), made once per run by `blog.lua --schema sync --schema-only`;
#           raw C copies them from that database (raw_blog --schema-from), so
#           both programs run on the same tables and indexes.
#           Default both (--scale: sync, the schema a user has).
# default   R rounds (5); each round runs, per schema, raw C and junction once
#           each on a fresh database file, alternating (odd rounds raw C
#           first, even rounds junction first). Per schema and phase it prints
#           the median calls/s of each, the median of the per-round ratios
#           junction/raw C, the target, and whether every round's checksums
#           agree; then the median peak RSS of each and their ratio. Exit
#           status 1 if any checksum disagrees or a program fails (missed
#           targets do not fail).
# --ci      P=300, 1 round, both schemas; checks only that each phase's
#           checksum agrees with raw C and ends with "N passed, N failed".
# --scale   P = 1e4, 1e5, 1e6 (one round each unless --rounds is given):
#           per-call cost in microseconds per phase at each P, and the ratio
#           of the cost at P=1e6 to the cost at P=1e4 ("last/first"; target for
#           junction: raw C's own growth + 0.1). eager is one call, so its cost is
#           counted per post.
#           Takes many minutes.
# --cross-check DIR
#           also builds DIR/raw_c_blog.c (another implementation of the same
#           workload, e.g. the one the workload was specified with), runs it
#           once on the ddl schema and checks that its eight checksums equal
#           raw_blog's. Not needed for anything else.
# --pg URL|auto
#           the workload on PostgreSQL: junction (blog.lua given a
#           postgresql:// URL) against bench/raw_blog_pg.c (libpq by hand;
#           built only when pkg-config finds libpq). URL is a server's
#           postgresql://user@host:port/db whose user may CREATE DATABASE:
#           every run gets a database of its own, dropped after it. auto
#           starts a private server with .ci/pg.sh (fsync=off) and stops it
#           at the end. Default schema ddl (the workload's DDL written for
#           PostgreSQL); sync makes the tables with junction's db:sync() and
#           gives them to raw_blog_pg --tables-exist. Besides the ratios it
#           counts round trips per call of every phase (a run at P=300 under
#           strace: the messages each program sends to the server, BEGIN,
#           COMMIT and the checksum's count included).
#
# Results are printed and written to bench/results/.
# Environment: SCALE_PS (default "10000 100000 1000000") the P values of --scale;
# CC (default cc) builds raw_blog, with its own flags (-O2), whatever CFLAGS says.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
build=$here/build
results=$here/results

rounds= P=20000 G=200 K=5 lua=lua5.4 mode=compare do_build=1 schemas= xref= pg_url= schema_given=
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --P|--p)  P=$2; shift 2 ;;
    --G|--g)  G=$2; shift 2 ;;
    --K|--k)  K=$2; shift 2 ;;
    --lua)    lua=$2; shift 2 ;;
    --ci)     mode=ci; shift ;;
    --scale)  mode=scale; shift ;;
    --schema) schema_given=1
              case $2 in ddl|sync) schemas=$2 ;; both) schemas="ddl sync" ;;
                *) echo "run.sh: --schema must be ddl, sync or both" >&2; exit 2 ;; esac; shift 2 ;;
    --cross-check) xref=$2; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --pg)     pg_url=$2; shift 2 ;;
    -h|--help) sed -n '2,53p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done
case $mode in
  ci)      P=300; rounds=1; schemas=${schemas:-ddl sync} ;;
  scale)   rounds=${rounds:-1}; schemas=${schemas:-sync} ;;
  compare) rounds=${rounds:-5}; schemas=${schemas:-ddl sync} ;;
esac
if [ -n "$pg_url" ]; then
  [ "$mode" = compare ] || { echo "run.sh: --pg goes with neither --ci nor --scale" >&2; exit 2; }
  [ -z "$xref" ] || { echo "run.sh: --pg goes without --cross-check" >&2; exit 2; }
  [ -n "$schema_given" ] || schemas=ddl
fi
case $lua in
  lua5.4) luaver=5.4 ;;
  lua5.3) luaver=5.3 ;;
  lua5.1) luaver=5.1 ;;
  luajit) luaver=jit ;;
  *) echo "run.sh: --lua must be lua5.4, lua5.3, lua5.1 or luajit" >&2; exit 2 ;;
esac

# --- build -------------------------------------------------------------------

mkdir -p "$build" "$results"
# raw C: bench/raw_blog.c, rebuilt when the source is newer than the binary.
# build_c SRC OUT
build_c() {
  if [ ! -x "$2" ] || [ "$1" -nt "$2" ]; then
    "${CC:-cc}" -std=c99 -O2 -Wall -Wextra -o "$2" "$1" -lsqlite3 >&2 ||
      { echo "run.sh: cannot build $1 (needs a C compiler and libsqlite3-dev: make deps)" >&2; exit 1; }
  fi
}
build_c "$here/raw_blog.c" "$build/raw_blog"
# the PostgreSQL reference, only where libpq is (and only needed for --pg)
if pkg-config --exists libpq 2>/dev/null; then
  if [ ! -x "$build/raw_blog_pg" ] || [ "$here/raw_blog_pg.c" -nt "$build/raw_blog_pg" ]; then
    # shellcheck disable=SC2046
    "${CC:-cc}" -std=c99 -O2 -Wall -Wextra -o "$build/raw_blog_pg" "$here/raw_blog_pg.c" \
      $(pkg-config --cflags --libs libpq) >&2 || { echo "run.sh: cannot build raw_blog_pg.c" >&2; exit 1; }
  fi
elif [ -n "$pg_url" ]; then
  echo "run.sh: --pg needs libpq (pkg-config libpq: apt-get install libpq-dev)" >&2; exit 1
fi
if [ -n "$xref" ]; then
  [ -f "$xref/raw_c_blog.c" ] || { echo "run.sh: --cross-check: $xref/raw_c_blog.c is missing" >&2; exit 2; }
  build_c "$xref/raw_c_blog.c" "$build/xref_blog"
fi
if [ "$do_build" = 1 ]; then
  make -s -C "$repo" build >&2
fi
cdir=$repo/build/$luaver
[ -f "$cdir/junction/core.so" ] || { echo "run.sh: $cdir/junction/core.so is missing (make build)" >&2; exit 1; }
command -v "$lua" >/dev/null || { echo "run.sh: $lua is not installed" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "run.sh: /usr/bin/time is missing (Debian package time: make deps)" >&2; exit 1; }

lpath="$repo/lua/?.lua;$repo/lua/?/init.lua;;"
lcpath="$cdir/?.so;;"
jn_cmd=(env "LUA_PATH=$lpath" "LUA_CPATH=$lcpath" "LUA_PATH_5_3=$lpath" "LUA_CPATH_5_3=$lcpath"
        "LUA_PATH_5_4=$lpath" "LUA_CPATH_5_4=$lcpath" "$lua" "$here/blog.lua")

# --- running -----------------------------------------------------------------

work=$build/run.$$
mkdir -p "$work"
pg_dir=
cleanup() {
  if [ -n "$pg_dir" ]; then bash "$repo/.ci/pg.sh" stop "$pg_dir" >&2 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# --pg: the server, and a fresh database per run
if [ "$pg_url" = auto ]; then
  [ -f "$repo/.ci/pg.sh" ] || { echo "run.sh: --pg auto needs .ci/pg.sh; give a server's URL instead" >&2; exit 1; }
  bash "$repo/.ci/pg.sh" start >"$work/pg" || { echo "run.sh: .ci/pg.sh start failed" >&2; exit 1; }
  pg_url=$(sed -n 1p "$work/pg") pg_dir=$(sed -n 2p "$work/pg")
fi
if [ -n "$pg_url" ]; then
  command -v psql >/dev/null || { echo "run.sh: --pg needs psql (apt-get install postgresql-client)" >&2; exit 1; }
  case $pg_url in postgres://*/*|postgresql://*/*) ;;
    *) echo "run.sh: --pg: '$pg_url' is not a postgresql://user@host:port/db URL" >&2; exit 2 ;; esac
  pg_sql() { psql -X -q -v ON_ERROR_STOP=1 "$pg_url" -c "$1" >/dev/null; }
  pg_sql "SELECT 1" || { echo "run.sh: --pg: cannot reach $pg_url" >&2; exit 1; }
  pg_base=${pg_url%%\?*}
  pg_query=; [ "$pg_base" != "$pg_url" ] && pg_query="?${pg_url#*\?}"
  pg_version=$(psql -X -At "$pg_url" -c "SHOW server_version" 2>/dev/null)
  pg_fsync=$(psql -X -At "$pg_url" -c "SHOW fsync" 2>/dev/null)
fi
pg_n=0
# pg_fresh: creates a database of its own, sets pg_db (its name) and pg_db_url
pg_fresh() {
  pg_n=$((pg_n + 1))
  pg_db=jnbench_$$_$pg_n
  pg_sql "CREATE DATABASE $pg_db"
  pg_db_url=${pg_base%/*}/$pg_db$pg_query
}
data=$work/data          # lines: schema P round impl phase calls seconds calls/s checksum
failed_runs=0

# The sync schema: the tables and indexes db:sync() makes from
# examples/models/, in a database of their own that raw C copies them from.
template=$work/sync-schema.db
[ -n "$pg_url" ] || case " $schemas " in *" sync "*)
  "${jn_cmd[@]}" --schema sync --schema-only "$template" >&2 ||
    { echo "run.sh: blog.lua --schema sync --schema-only failed" >&2; exit 1; } ;;
esac

# run_one SCHEMA IMPL ROUND P: one program on a fresh database; appends to $data.
run_one() {
  local schema=$1 impl=$2 round=$3 p=$4 db=$work/blog.db
  local -a cmd
  case $impl in
    raw)      cmd=("$build/raw_blog"); [ "$schema" = sync ] && cmd+=(--schema-from "$template") ;;
    xref)     cmd=("$build/xref_blog") ;;
    junction) cmd=("${jn_cmd[@]}" --schema "$schema") ;;
  esac
  if [ -n "$pg_url" ]; then
    pg_fresh
    db=$pg_db_url
    case $impl in
      raw) cmd=("$build/raw_blog_pg")
           if [ "$schema" = sync ]; then
             "${jn_cmd[@]}" --schema sync --schema-only "$db" >"$work/out" 2>"$work/err" ||
               { echo "run.sh: blog.lua --schema sync --schema-only on PostgreSQL failed:" >&2; tail -n 5 "$work/err" >&2; }
             cmd+=(--tables-exist)
           fi ;;
    esac
  fi
  rm -f "$db" "$db-wal" "$db-shm"
  if /usr/bin/time -v -o "$work/time" "${cmd[@]}" "$db" "$p" "$G" "$K" >"$work/out" 2>"$work/err" &&
     [ "$(wc -l <"$work/out")" -eq 8 ]; then
    awk -v s="$schema" -v p="$p" -v r="$round" -v i="$impl" '{ print s, p, r, i, $0 }' "$work/out" >>"$data"
    awk -v s="$schema" -v p="$p" -v r="$round" -v i="$impl" \
        '/Maximum resident set size/ { print s, p, r, i, "peak_rss_kib", 1, 0, $NF, 0 }' "$work/time" >>"$data"
  else
    failed_runs=$((failed_runs + 1))
    echo "run.sh: $impl ($schema schema, P=$p, round $round) failed; output and error:" >&2
    sed 's/^/  out: /' "$work/out" >&2
    { grep -v -e '^	' -e '^Command exited' "$work/err" || true; } | tail -n 20 | sed 's/^/  err: /' >&2
    { grep -e 'Exit status' -e 'signal' "$work/time" || true; } | sed 's/^/  /' >&2
    awk -v s="$schema" -v p="$p" -v r="$round" -v i="$impl" '{ print s, p, r, i, $0 }' "$work/out" >>"$data"
  fi
  rm -f "$db" "$db-wal" "$db-shm"
  if [ -n "$pg_url" ]; then pg_sql "DROP DATABASE $pg_db" || true; fi
}

# count_trips SCHEMA IMPL: one run at P=300 under strace; per phase, the
# messages the program sent to the server (sendto) before it wrote the
# phase's line (write to fd 1). Appends "schema impl phase calls trips" to $trips.
trips=$work/trips
count_trips() {
  local schema=$1 impl=$2 p=300 db
  local -a cmd
  command -v strace >/dev/null || return 0
  pg_fresh
  db=$pg_db_url
  case $impl in
    raw) cmd=("$build/raw_blog_pg")
         if [ "$schema" = sync ]; then
           "${jn_cmd[@]}" --schema sync --schema-only "$db" >/dev/null 2>&1
           cmd+=(--tables-exist)
         fi ;;
    junction) cmd=(env JUNCTION_BENCH_MARK=1 "${jn_cmd[@]}" --schema "$schema") ;;
  esac
  strace -f -qq -e trace=sendto,write -o "$work/strace" "${cmd[@]}" "$db" "$p" "$G" "$K" >"$work/out" 2>"$work/err" ||
    echo "run.sh: counting round trips: $impl ($schema) failed after $(wc -l <"$work/out") phases: $(grep -v '^	' "$work/err" | tail -n 1)" >&2
  awk -v s="$schema" -v i="$impl" '
      NR == FNR { calls[FNR] = $2; name[FNR] = $1; next }
      / sendto\(/ { n++ }
      / write\(1,/ { k++; print s, i, name[k], calls[k], n; n = 0 }' "$work/out" "$work/strace" >>"$trips"
  pg_sql "DROP DATABASE $pg_db" || true
}

# run_rounds P: R alternating rounds at P, each over every schema.
run_rounds() {
  local p=$1 r s
  for r in $(seq 1 "$rounds"); do
    for s in $schemas; do
      echo "run.sh: P=$p round $r/$rounds, $s schema" >&2
      if [ $((r % 2)) = 1 ]; then run_one "$s" raw "$r" "$p"; run_one "$s" junction "$r" "$p"
      else run_one "$s" junction "$r" "$p"; run_one "$s" raw "$r" "$p"; fi
    done
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
$1 == S { cps[$2, $3, $4, $5] = $8; sec[$2, $3, $4, $5] = $7; ck[$2, $3, $4, $5] = $9; calls[$2, $5] = $6 }
'

# compare/ci table at one P for schema $1; prints "CHECKS <passed> <failed>" last.
compare_table() {
  awk -v S="$1" -v P="$P" -v R="$rounds" -v mode="$mode" "$awk_lib"'
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

# scale table for schema $1: per-call microseconds per phase at each P, and growth 1e6/1e4.
scale_table() {
  local schema=$1; shift
  awk -v S="$schema" -v R="$rounds" -v PS="$*" "$awk_lib"'
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
      if (impl == "raw") rg[ph] = g
      # the target: junction grows no more than raw C does, plus 0.1
      if (impl == "junction" && ph != "insert_genres" && g != "" && rg[ph] != "")
        printf "  <=%.2f%s", rg[ph] + 0.1, g <= rg[ph] + 0.1 ? " ok" : " MISS"
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
out=$results/$stamp-$lua-$mode${pg_url:+-pg}.txt
{
  echo "# bench/run.sh $mode: $lua, rounds=$rounds, G=$G K=$K, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "# $(uname -srm), $(nproc) cores, SQLite $(sqlite3 --version 2>/dev/null | cut -d' ' -f1), $("$lua" -v 2>&1 | head -n1)"
  [ -n "$pg_url" ] && echo "# PostgreSQL: ${pg_base##*@} (a database per run)"
  echo "# junction $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '(no commit)')$(git -C "$repo" diff --quiet 2>/dev/null || echo ' (modified tree)')"
} >"$out"

title() {
  case $1 in
    ddl)  echo "== schema ddl: the workload's DDL (UNIQUE (post_id, genre_id) on tag_post_genre)" ;;
    sync) echo "== schema sync: db:sync() from examples/models/ (UNIQUE (genre_id, post_id) and an index on (post_id, genre_id)); raw C on the same tables" ;;
  esac
  if [ -n "$pg_url" ]; then
    echo "   on PostgreSQL $pg_version (fsync=$pg_fsync), raw C = bench/raw_blog_pg.c (libpq)"
  fi
}
table=
if [ "$mode" = scale ]; then
  Ps=${SCALE_PS:-10000 100000 1000000}   # SCALE_PS: for trying the script out
  for p in $Ps; do run_rounds "$p"; done
  for s in $schemas; do table+=$(title "$s")$'\n'$(scale_table "$s" $Ps)$'\n\n'; done
else
  run_rounds "$P"
  echo "# P=$P" >>"$out"
  for s in $schemas; do table+=$(title "$s")$'\n'$(compare_table "$s")$'\n\n'; done
  if [ -n "$pg_url" ]; then
    for s in $schemas; do count_trips "$s" raw; count_trips "$s" junction; done
    if [ -s "$trips" ]; then
      table+=$(awk '
        { k = $1 SUBSEP $3; if (!(k in seen)) { seen[k] = 1; order[++n] = k; sch[n] = $1; ph[n] = $3 }
          t[$1, $3, $2] = $5 / $4 }
        END {
          print "== round trips per call (P=300; BEGIN, COMMIT and the checksum count spread over the calls)"
          printf "%-8s %-14s %10s %10s\n", "schema", "phase", "raw C", "junction"
          for (x = 1; x <= n; x++)
            printf "%-8s %-14s %10s %10s\n", sch[x], ph[x],
              ((sch[x], ph[x], "raw") in t) ? sprintf("%.2f", t[sch[x], ph[x], "raw"]) : "-",
              ((sch[x], ph[x], "junction") in t) ? sprintf("%.2f", t[sch[x], ph[x], "junction"]) : "-"
        }' "$trips")$'\n\n'
    fi
  fi
fi

# --cross-check: the other implementation once on the ddl schema, its
# checksums against raw_blog's (round 1, ddl schema; run for it if needed).
if [ -n "$xref" ]; then
  p=$P; [ "$mode" = scale ] && p=${Ps%% *}
  case " $schemas " in *" ddl "*) ;; *) run_one ddl raw 1 "$p" ;; esac
  run_one ddl xref 1 "$p"
  table+=$(awk -v P="$p" -v src="$xref/raw_c_blog.c" '
    $1 == "ddl" && $2 == P && $3 == 1 && $5 != "peak_rss_kib" { ck[$4, $5] = $9; if ($4 == "raw") ph[++n] = $5 }
    END {
      bad = 0
      for (k = 1; k <= n; k++) if (!(("xref", ph[k]) in ck) || ck["xref", ph[k]] != ck["raw", ph[k]]) {
        bad++; printf "cross-check: %s differs: raw_blog %s, %s %s\n", ph[k], ck["raw", ph[k]], src, ck["xref", ph[k]] }
      printf "cross-check against %s (P=%d, ddl schema): %d of %d checksums agree\n", src, P, n - bad, n
      print "CHECKS", n - bad, bad
    }' "$data")$'\n'
fi

while [ "${table%$'\n'}" != "$table" ]; do table=${table%$'\n'}; done
checks=$(printf '%s\n' "$table" | awk '$1 == "CHECKS" { p += $2; f += $3 } END { print p + 0, f + 0 }')
passed=${checks% *} failed=${checks#* }
{
  printf '%s\n' "$table" | grep -v '^CHECKS '
  if [ "$mode" = ci ]; then echo "$passed passed, $failed failed"; fi
} | tee -a "$out"
{ echo; echo "# raw data: schema P round impl phase calls seconds calls/s checksum"; cat "$data"; } >>"$out"
echo "run.sh: results written to ${out#$repo/}" >&2

if [ "$failed" -ne 0 ] || [ "$failed_runs" -ne 0 ]; then
  echo "run.sh: FAILED: $failed checksum check(s) disagree, $failed_runs program run(s) failed" >&2
  exit 1
fi
