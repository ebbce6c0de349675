#!/usr/bin/env bash
# examples/openresty/bench.sh: requests per second of the blog example's
# GET /posts/:id/genres against the same nginx answering a constant string from
# Lua, side by side with wrk on loopback, in one run (`make bench-openresty`).
#
# One nginx (the example's conf/nginx.conf: WORKERS workers, the access log on,
# one junction connection per worker) with one more location, /const, whose
# handler is `ngx.print(body)`: body is the exact answer of GET
# /posts/<id>/genres, read once per worker. The database is seeded through the
# API like test.sh does (4 genres, 3 posts, the first with 3 genres). After a
# warm-up of both URLs (LuaJIT traces, statement caches), ROUNDS rounds each run
# wrk on both URLs for DURATION seconds, odd rounds the genres first and even
# rounds the constant first. Every answer must be 200 with the same body size.
# Prints each round and the median over the rounds of the per-round ratio
# genres / const (a slow minute hits both halves of a round); writes the lot to
# bench/results/<time>-openresty.txt.
#
# Env: ROUNDS (5), DURATION (5 seconds), THREADS (2), CONNS (16), WORKERS (2),
#      PORT (first free from 18300), ACCESS_LOG (on|off, on), BENCH_DB (the
#      database: a new SQLite file by default; a postgresql:// URL of an empty
#      database runs the same on PostgreSQL), KEEP=1 keeps the
#      prefix directory (logs, conf) and prints its path. PERF=1: after the
#      rounds, one more wrk run on each URL under `perf record` of the workers,
#      and the workers' CPU time per request split by shared object (perf's
#      cpu-clock samples times the /proc CPU time per request).
set -eu

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
THREADS=${THREADS:-2}
CONNS=${CONNS:-16}
WORKERS=${WORKERS:-2}
ACCESS_LOG=${ACCESS_LOG:-on}

die() { echo "bench.sh: $*" >&2; exit 1; }
for tool in nginx curl wrk; do
  command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install nginx curl wrk)"
done
for m in ndk_http_module ngx_http_lua_module; do
  [ -f "/usr/lib/nginx/modules/$m.so" ] || die "/usr/lib/nginx/modules/$m.so missing (apt-get install libnginx-mod-http-lua)"
done
[ -f "$ROOT/build/jit/junction/core.so" ] || die "build/jit/junction/core.so missing: make -C $ROOT build"

# {====== a prefix of our own, stopped by pid whatever happens
W=$(mktemp -d "${TMPDIR:-/tmp}/junction-orbench.XXXXXX")
MASTER=
cleanup() {
  if [ -n "$MASTER" ]; then
    kill -QUIT "$MASTER" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$MASTER" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$MASTER" 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" = 1 ]; then echo "bench.sh: kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
mkdir -p "$W/conf" "$W/logs" "$W/tmp" "$W/data" "$W/lua"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -z "${PORT:-}" ]; then
  for p in $(seq 18300 18400); do port_free "$p" && { PORT=$p; break; }; done
fi
[ -n "${PORT:-}" ] && port_free "$PORT" || die "no free port (PORT=${PORT:-})"
BASE=http://127.0.0.1:$PORT

# the constant handler: the body file, read once per worker
cat >"$W/lua/bench_const.lua" <<'LUA'
local f = assert(io.open(os.getenv("BENCH_CONST_BODY"), "rb"))
local body = f:read("*a")
f:close()
return body
LUA

# The example's conf, with our port, paths and the /const location; the lua
# paths made absolute (the prefix is not examples/openresty/ here).
user_line=
[ "$(id -u)" = 0 ] && user_line="user root root;"
export JUNCTION_DB=${BENCH_DB:-$W/data/blog.sqlite3} BENCH_CONST_BODY=$W/data/const.json
{
  [ -n "$user_line" ] && echo "$user_line"
  echo "env BENCH_CONST_BODY;"
  sed -e "s/^\( *listen *\)127\.0\.0\.1:[0-9]*;/\1127.0.0.1:$PORT;/" \
      -e "s/^worker_processes .*/worker_processes  $WORKERS;/" \
      -e "s|\$prefix/lua/?.lua;\$prefix/../../lua/?.lua;\$prefix/../../lua/?/init.lua;|$W/lua/?.lua;$HERE/lua/?.lua;$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;|" \
      -e "s|\$prefix/../../build/jit/?.so;|$ROOT/build/jit/?.so;|" \
      "$HERE/conf/nginx.conf" |
  if [ "$ACCESS_LOG" = off ]; then sed 's|^\( *\)access_log .*;|\1access_log off;|'; else cat; fi |
  awk '/^ *location \/ \{/ && !done {
         print "        location = /const {"
         print "            content_by_lua_block { ngx.print(require(\"bench_const\")) }"
         print "        }"
         done = 1 }
       { print }'
} >"$W/conf/nginx.conf"
grep -q "location = /const" "$W/conf/nginx.conf" || die "could not add /const to the conf"
grep -q "listen *127.0.0.1:$PORT;" "$W/conf/nginx.conf" || die "could not set the port"
# }======

# {====== start, seed through the API
nginx -p "$W/" -c conf/nginx.conf 2>"$W/start.err" || die "nginx failed to start: $(cat "$W/start.err")"
MASTER=$(cat "$W/logs/nginx.pid")
for _ in $(seq 100); do
  curl -s -o /dev/null --max-time 2 "$BASE/genres" && break
  sleep 0.1
done
post() { curl -sS --max-time 10 -o "$W/body" -w '%{http_code}' -X "$1" -H 'Content-Type: application/json' --data-binary "$3" "$BASE$2"; }
for name in orm lua sqlite c; do
  [ "$(post POST /genres "{\"name\":\"$name\"}")" = 201 ] || die "POST /genres: $(cat "$W/body")"
done
for t in "Junction models in Lua" "SQLite from OpenResty" "Sequelize, transcribed"; do
  [ "$(post POST /posts "{\"text\":\"$t\"}")" = 201 ] || die "POST /posts: $(cat "$W/body")"
done
[ "$(post PUT /posts/1/genres '{"ids":[1,2,3]}')" = 200 ] || die "PUT /posts/1/genres: $(cat "$W/body")"
URL_DB=$BASE/posts/1/genres
URL_CONST=$BASE/const
curl -sS --max-time 10 -o "$BENCH_CONST_BODY" "$URL_DB" || die "GET $URL_DB failed"
size=$(wc -c <"$BENCH_CONST_BODY")
[ "$size" -gt 100 ] || die "GET $URL_DB: short answer: $(cat "$BENCH_CONST_BODY")"
cmp -s "$BENCH_CONST_BODY" <(curl -sS --max-time 10 "$URL_CONST") || die "/const does not answer the genres body"
# }======

# {====== rounds
# CPU seconds (user + system) the nginx workers have used so far
TICKS=$(getconf CLK_TCK)
worker_cpu() {
  local p s=0
  for p in $(ps -o pid= --ppid "$MASTER"); do
    s=$((s + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$s"
}
# run_wrk URL SECONDS: prints "<req/s> <bytes per answer> <worker CPU us per request>";
# fails on errors
run_wrk() {
  local c0 c1
  c0=$(worker_cpu)
  wrk -t"$THREADS" -c"$CONNS" -d"$2"s "$1" >"$W/wrk.txt" 2>&1 || die "wrk failed: $(cat "$W/wrk.txt")"
  c1=$(worker_cpu)
  if grep -qE 'Non-2xx|Socket errors' "$W/wrk.txt"; then die "wrk $1: $(grep -E 'Non-2xx|Socket errors' "$W/wrk.txt")"; fi
  awk -v cpu=$((c1 - c0)) -v hz="$TICKS" '/ requests in / { n = $1 }
       /^Requests\/sec:/ { rps = $2 }
       /^Transfer\/sec:/ { t = $2; u = substr(t, length(t) - 1); v = t + 0
                           if (u == "KB") v *= 1024; else if (u == "MB") v *= 1048576; else if (u == "GB") v *= 1073741824 }
       END { printf "%s %.0f %.1f\n", rps, (rps > 0 ? v / rps : 0), (n > 0 ? cpu / hz / n * 1e6 : 0) }' "$W/wrk.txt"
}
run_wrk "$URL_DB" 1 >/dev/null
run_wrk "$URL_CONST" 1 >/dev/null

mkdir -p "$ROOT/bench/results"
out=$ROOT/bench/results/$(date -u +%Y%m%dT%H%M%SZ)-openresty.txt
{
  echo "# examples/openresty/bench.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -srm), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# $(nginx -v 2>&1), workers=$WORKERS, access_log $ACCESS_LOG; wrk -t$THREADS -c$CONNS -d${DURATION}s; junction $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (modified tree)')"
  echo "# genres: GET /posts/1/genres (findByPk + getGenres, 3 genres, JSON); const: the same $size bytes from ngx.print"
  echo "# cpu: user + system time of the nginx workers per request (microseconds), from /proc"
  printf '%-6s %14s %14s %8s %12s %12s\n' round "genres req/s" "const req/s" ratio "genres cpu" "const cpu"
} | tee "$out"
ratios=()
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then a=$(run_wrk "$URL_DB" "$DURATION"); b=$(run_wrk "$URL_CONST" "$DURATION")
  else b=$(run_wrk "$URL_CONST" "$DURATION"); a=$(run_wrk "$URL_DB" "$DURATION"); fi
  read -r ra _ ca <<<"$a"
  read -r rb _ cb <<<"$b"
  ratio=$(awk -v a="$ra" -v b="$rb" 'BEGIN { printf "%.3f", a / b }')
  ratios+=("$ratio")
  printf '%-6s %14s %14s %8s %12s %12s\n' "$r" "$ra" "$rb" "$ratio" "$ca" "$cb" | tee -a "$out"
done
if [ "${PERF:-0}" = 1 ]; then
  command -v perf >/dev/null || die "PERF=1: perf is not installed (apt-get install linux-perf)"
  for which in genres const; do
    url=$URL_DB; [ "$which" = const ] && url=$URL_CONST
    pids=$(ps -o pid= --ppid "$MASTER" | paste -sd, - | tr -d ' ')
    perf record -q -F 999 -p "$pids" -o "$W/perf.$which" -- sleep "$((DURATION + 1))" >/dev/null 2>&1 &
    perf_pid=$!
    sleep 0.5
    res=$(run_wrk "$url" "$DURATION")
    wait "$perf_pid" || true
    read -r _ _ cpu <<<"$res"
    echo "# perf, $which: worker CPU $cpu us per request, by shared object (% of samples, us per request)" | tee -a "$out"
    perf report -q -i "$W/perf.$which" --no-children --sort dso 2>/dev/null |
      awk -v c="$cpu" '$1 ~ /%$/ { p = $1 + 0; if (p >= 0.5) { $1 = ""; printf "  %-32s %5.1f %%  %6.2f us\n", substr($0, 2), p, p * c / 100 } }' | tee -a "$out"
  done
fi
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END { print NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
echo "median ratio genres / const: $median (target >= 0.5)" | tee -a "$out"
if grep -E '\[(error|alert|crit|emerg)\]' "$W/logs/error.log" >"$W/errors"; then
  die "error.log: $(head -n 3 "$W/errors")"
fi
echo "bench.sh: results written to ${out#$ROOT/}" >&2
# }======
