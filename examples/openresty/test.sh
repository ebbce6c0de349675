#!/usr/bin/env bash
# examples/openresty/test.sh: end-to-end test of the OpenResty blog example.
#
# Starts nginx (2 workers, lua-nginx-module, LuaJIT) on 127.0.0.1 and a free port
# with this directory as prefix and a fresh SQLite file, as `nobody` when run as
# root (or as root with `user root root;` when nobody cannot read the checkout),
# then:
#   1. exercises every endpoint with curl, checking status codes and JSON bodies;
#   2. a burst of concurrent writes (CLIENTS parallel curl loops creating posts and
#      setting genres on their own and on shared posts): every answer must be 2xx;
#   3. a short wrk load on GET /posts/:id/genres (loopback, WRK_SECONDS, 0 = skip);
#   4. error.log has no [error]/[alert]/[crit]/[emerg];
#   5. stops nginx, then checks the database (check_db.lua under LuaJIT): integrity,
#      counts, no dangling or duplicate links, each post holds a set that was written.
# nginx is stopped by its pid from a trap, also when the test fails or is killed.
# Prints "ok - ..." / "FAIL - ..." lines, then "N passed, N failed"; exit 1 on failure.
#
# Env: PORT (default: the first free port from 18080), CLIENTS (8), ITERATIONS (25),
#      WRK_SECONDS (3), NGX_USER (nobody when root).
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CLIENTS=${CLIENTS:-8}
ITERATIONS=${ITERATIONS:-25}
WRK_SECONDS=${WRK_SECONDS:-3}
LOGS=$HERE/logs
DB=$HERE/data/test.sqlite3
CONF=conf/test.conf

PASSED=0 FAILED=0
ok()  { PASSED=$((PASSED + 1)); echo "ok - $*"; }
bad() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }
finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ] && exit 0 || exit 1
}

# {====== stop everything we started, whatever happens
MASTER=
CLIENT_PIDS=()
WORK=$(mktemp -d "${TMPDIR:-/tmp}/junction-openresty.XXXXXX")
stop_nginx() {
  [ -n "$MASTER" ] || return 0
  kill -QUIT "$MASTER" 2>/dev/null
  local i
  for i in $(seq 100); do kill -0 "$MASTER" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$MASTER" 2>/dev/null; then
    kill -TERM "$MASTER" 2>/dev/null; sleep 1; kill -KILL "$MASTER" 2>/dev/null
    MASTER=
    return 1
  fi
  MASTER=
  return 0
}
cleanup() {
  local p
  for p in "${CLIENT_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  stop_nginx
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'bad "interrupted"; finish' INT TERM HUP
# }======

# {====== prerequisites
LUAJ=$(command -v luajit || command -v lua5.1 || true)
for tool in nginx curl; do
  command -v "$tool" >/dev/null || { bad "$tool is not installed"; finish; }
done
[ -n "$LUAJ" ] || { bad "neither luajit nor lua5.1 is installed (needed for the checks)"; finish; }
for m in ndk_http_module ngx_http_lua_module; do
  [ -f "/usr/lib/nginx/modules/$m.so" ] || { bad "/usr/lib/nginx/modules/$m.so missing (apt-get install libnginx-mod-http-lua)"; finish; }
done
if [ ! -f "$ROOT/build/jit/junction/core.so" ]; then
  echo "# build/jit/junction/core.so missing: make -C $ROOT build"
  make -C "$ROOT" build >"$WORK/build.log" 2>&1 || { tail -n 20 "$WORK/build.log"; }
fi
[ -f "$ROOT/build/jit/junction/core.so" ] || { bad "build/jit/junction/core.so not built"; finish; }
export LUA_PATH="$HERE/lua/?.lua;$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"
export LUA_CPATH="$ROOT/build/jit/?.so;;"
# }======

# {====== a free port, the user, a fresh database, the config
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -z "${PORT:-}" ]; then
  for p in $(seq 18080 18180); do port_free "$p" && { PORT=$p; break; }; done
fi
[ -n "${PORT:-}" ] && port_free "$PORT" || { bad "no free port (PORT=${PORT:-})"; finish; }
BASE=http://127.0.0.1:$PORT

mkdir -p "$LOGS" "$HERE/tmp" "$HERE/data" "$LOGS/burst"
rm -f "$DB" "$DB-wal" "$DB-shm" "$LOGS/error.log" "$LOGS/access.log" "$LOGS"/burst/*
export JUNCTION_DB=$DB

USER_LINE=
RUN_AS=
if [ "$(id -u)" = 0 ]; then
  NGX_USER=${NGX_USER:-nobody}
  if [ "$NGX_USER" != root ] && runuser -u "$NGX_USER" -- sh -c '
       test -r "$1/conf/nginx.conf" && test -r "$1/lua/blog_app.lua" &&
       test -r "$2/lua/junction/init.lua" && test -r "$2/build/jit/junction/core.so"' sh "$HERE" "$ROOT"
  then
    chown -R "$NGX_USER": "$LOGS" "$HERE/tmp" "$HERE/data"
    RUN_AS=$NGX_USER                     # master and workers as $NGX_USER
  else
    NGX_USER=root
    USER_LINE="user root root;"          # nobody cannot read the checkout: workers as root
  fi
else
  NGX_USER=$(id -un)
fi
ngx() {
  if [ -n "$RUN_AS" ]; then runuser -u "$RUN_AS" -- nginx -p "$HERE/" -c "$CONF" "$@"
  else nginx -p "$HERE/" -c "$CONF" "$@"; fi
}

{
  [ -n "$USER_LINE" ] && echo "$USER_LINE"
  sed "s/^\( *listen *\)127\.0\.0\.1:[0-9]*;/\1127.0.0.1:$PORT;/" "$HERE/conf/nginx.conf"
} >"$HERE/$CONF"
grep -q "listen *127.0.0.1:$PORT;" "$HERE/$CONF" || { bad "could not set the port in $CONF"; finish; }
# }======

# {====== start
if ngx 2>"$WORK/start.err"; then
  MASTER=$(cat "$LOGS/nginx.pid" 2>/dev/null)
  up=
  for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 2 "$BASE/genres" && { up=1; break; }
    sleep 0.1
  done
  if [ -n "$up" ] && [ -n "$MASTER" ]; then
    workers=$(ps -o user= --ppid "$MASTER" | sort | uniq -c | tr -s ' ' | sed 's/^ //')
    ok "nginx started on 127.0.0.1:$PORT, master $MASTER, workers: $workers (prefix $HERE)"
  else
    bad "nginx did not answer on $BASE: $(tail -n 5 "$LOGS/error.log" 2>/dev/null)"
    finish
  fi
else
  bad "nginx failed to start: $(cat "$WORK/start.err")"
  finish
fi
for _ in $(seq 50); do
  n=$(grep -c 'blog_app: worker .* serving' "$LOGS/error.log")
  [ "$n" = 2 ] && break
  sleep 0.1
done
[ "$n" = 2 ] && ok "both workers opened the database" || bad "$n workers logged 'serving': $(grep blog_app "$LOGS/error.log")"
# }======

# {====== requests and checks
# req METHOD PATH [BODY]: sets CODE, CTYPE, BODY
req() {
  local args=(-sS --max-time 10 -o "$WORK/body" -w '%{http_code} %{content_type}' -X "$1")
  [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  local out
  : >"$WORK/body"
  out=$(curl "${args[@]}" "$BASE$2" 2>"$WORK/curl.err") || out="000 $(cat "$WORK/curl.err")"
  CODE=${out%% *}
  CTYPE=${out#* }
  BODY=$(cat "$WORK/body")
}
# jtrue JSON LUA-EXPR: the expression (over the decoded body `j`) is true
jtrue() {
  EXPR=$2 "$LUAJ" -e '
    local cjson = require "cjson"
    local ok, j = pcall(cjson.decode, io.read("*a"))
    if not ok then os.exit(2) end
    local f = assert(loadstring("local j, null = ...; return " .. os.getenv("EXPR")))
    local ok2, res = pcall(f, j, cjson.null)
    os.exit((ok2 and res) and 0 or 1)' <<<"$1"
}
# expect DESC STATUS [LUA-EXPR]
expect() {
  local desc=$1 status=$2 expr=${3:-true}
  if [ "$CODE" != "$status" ]; then bad "$desc: status $CODE, want $status; body: $BODY"; return 1; fi
  case $CTYPE in
    application/json*) ;;
    *) bad "$desc: Content-Type '$CTYPE'"; return 1 ;;
  esac
  if jtrue "$BODY" "$expr"; then ok "$desc"; else bad "$desc: not ($expr); body: $BODY"; return 1; fi
}
json_field() { [[ $1 =~ \"$2\":([0-9]+) ]] && echo "${BASH_REMATCH[1]}"; }

# genres
GENRE_NAMES=(orm lua sqlite c)
G=()
for name in "${GENRE_NAMES[@]}"; do
  req POST /genres "{\"name\":\"$name\"}"
  expect "POST /genres {name:\"$name\"} -> 201" 201 \
    "j.name == '$name' and type(j.genre_id) == 'number' and type(j.created_at) == 'string'" &&
    G+=("$(json_field "$BODY" genre_id)")
done
[ "${#G[@]}" = 4 ] || { bad "could not create the genres"; finish; }
G1=${G[0]} G2=${G[1]} G3=${G[2]} G4=${G[3]}
req POST /genres '{"name":"orm"}'
expect "POST /genres with an existing name -> 409" 409 "j.error ~= nil and j.code == 2067"
req POST /genres '{"name":'
expect "POST /genres with bad JSON -> 400" 400 "type(j.error) == 'string'"
req POST /genres '{"name":""}'
expect "POST /genres with an empty name -> 422" 422 "type(j.error) == 'string'"
req GET /genres
expect "GET /genres -> the 4 genres in order" 200 \
  "#j == 4 and j[1].genre_id == $G1 and j[4].genre_id == $G4 and j[1].name == 'orm' and j[4].name == 'c'"

# posts
req POST /posts '{"text":"Junction models in Lua"}'
expect "POST /posts -> 201 with the post" 201 \
  "j.text == 'Junction models in Lua' and type(j.post_id) == 'number' and type(j.created_at) == 'string' and type(j.updated_at) == 'string'"
P1=$(json_field "$BODY" post_id)
req POST /posts '{"text":"SQLite from OpenResty \"quoted\" \u00e9"}'
expect "POST /posts with escapes and UTF-8 -> 201" 201 "j.text == 'SQLite from OpenResty \"quoted\" \\195\\169'"
P2=$(json_field "$BODY" post_id)
req POST /posts '{"text":"Sequelize, transcribed"}'
expect "POST /posts (third) -> 201" 201 "j.post_id > $P2"
P3=$(json_field "$BODY" post_id)
[ -n "$P1" ] && [ -n "$P2" ] && [ -n "$P3" ] || { bad "could not create the posts"; finish; }
req POST /posts '{}'
expect "POST /posts without text -> 422" 422 "type(j.error) == 'string'"
req POST /posts '{"text":12}'
expect "POST /posts with a number as text -> 422" 422 "type(j.error) == 'string'"
req POST /posts 'not json'
expect "POST /posts with bad JSON -> 400" 400 "type(j.error) == 'string'"
req POST /posts '[1,2]'
expect "POST /posts with a JSON array -> 400" 400 "type(j.error) == 'string'"
req POST /posts
expect "POST /posts without a body -> 400" 400 "type(j.error) == 'string'"

req GET "/posts/$P1"
expect "GET /posts/$P1 -> the post, Genres empty" 200 \
  "j.post_id == $P1 and j.text == 'Junction models in Lua' and type(j.Genres) == 'table' and #j.Genres == 0"
req GET /posts/999999
expect "GET /posts/999999 -> 404" 404 "type(j.error) == 'string'"
req GET /posts/99999999999999999999
expect "GET /posts/<20 digits> -> 404" 404 "type(j.error) == 'string'"

# genres of a post
req PUT "/posts/$P1/genres" "{\"ids\":[$G1,$G2,$G3]}"
expect "PUT /posts/$P1/genres [G1,G2,G3] -> 200 with the new set" 200 \
  "j.post_id == $P1 and #j.Genres == 3 and j.Genres[1].genre_id == $G1 and j.Genres[3].genre_id == $G3"
req GET "/posts/$P1/genres"
expect "GET /posts/$P1/genres -> G1,G2,G3" 200 \
  "#j == 3 and j[1].genre_id == $G1 and j[2].genre_id == $G2 and j[3].genre_id == $G3 and j[1].name == 'orm'"
req PUT "/posts/$P1/genres" "{\"ids\":[$G4,$G2,$G2]}"
expect "PUT /posts/$P1/genres [G4,G2,G2] (a duplicate) -> 200" 200 "#j.Genres == 2"
req GET "/posts/$P1/genres"
expect "GET /posts/$P1/genres -> exactly G2,G4" 200 "#j == 2 and j[1].genre_id == $G2 and j[2].genre_id == $G4"
req PUT "/posts/$P1/genres" "{\"ids\":[$G1,999999]}"
expect "PUT /posts/$P1/genres with an unknown genre id -> 422 (FK code 787)" 422 \
  "j.code == 787 and #j.ids == 1 and j.ids[1] == 999999"
req GET "/posts/$P1/genres"
expect "after the failed PUT the set is unchanged (G2,G4)" 200 \
  "#j == 2 and j[1].genre_id == $G2 and j[2].genre_id == $G4"
req PUT /posts/999999/genres "{\"ids\":[$G1]}"
expect "PUT /posts/999999/genres -> 404" 404 "type(j.error) == 'string'"
req PUT "/posts/$P1/genres" '{"ids":[1,'
expect "PUT /posts/$P1/genres with bad JSON -> 400" 400 "type(j.error) == 'string'"
req PUT "/posts/$P1/genres" '{"ids":"1,2"}'
expect "PUT /posts/$P1/genres with ids not an array -> 400" 400 "type(j.error) == 'string'"
req PUT "/posts/$P1/genres" '{"ids":[1.5]}'
expect "PUT /posts/$P1/genres with a fractional id -> 400" 400 "type(j.error) == 'string'"
req PUT "/posts/$P1/genres" '{"ids":[-1]}'
expect "PUT /posts/$P1/genres with a negative id -> 400" 400 "type(j.error) == 'string'"
req GET "/posts/$P1/genres"
expect "after the rejected PUTs the set is still G2,G4" 200 "#j == 2"
req PUT "/posts/$P2/genres" "{\"ids\":[$G3]}"
expect "PUT /posts/$P2/genres [G3] -> 200" 200 "#j.Genres == 1 and j.Genres[1].name == 'sqlite'"
req PUT "/posts/$P2/genres" '{"ids":[]}'
expect "PUT /posts/$P2/genres [] clears the set" 200 "#j.Genres == 0"
req PUT "/posts/$P2/genres" "{\"ids\":[$G3,$G1]}"
expect "PUT /posts/$P2/genres [G3,G1] -> 200" 200 "#j.Genres == 2 and j.Genres[1].genre_id == $G1"
req GET "/posts/999999/genres"
expect "GET /posts/999999/genres -> 404" 404 "type(j.error) == 'string'"

# lists
req GET "/posts?limit=2"
expect "GET /posts?limit=2 -> 2 posts with Genres eager-loaded" 200 \
  "#j == 2 and j[1].post_id == $P1 and j[2].post_id == $P2 and #j[1].Genres == 2 and j[1].Genres[1].genre_id == $G2 and j[1].Genres[2].name == 'c' and #j[2].Genres == 2"
req GET "/posts"
expect "GET /posts -> all 3 posts, the third with Genres []" 200 \
  "#j == 3 and j[3].post_id == $P3 and type(j[3].Genres) == 'table' and #j[3].Genres == 0"
req GET "/posts?limit=2&offset=2"
expect "GET /posts?limit=2&offset=2 -> the third post" 200 "#j == 1 and j[1].post_id == $P3"
req GET "/posts?limit=abc"
expect "GET /posts?limit=abc -> 400" 400 "type(j.error) == 'string'"
req GET "/posts?limit=0"
expect "GET /posts?limit=0 -> 400" 400 "type(j.error) == 'string'"

# routing
req GET /nope
expect "GET /nope -> 404 JSON" 404 "type(j.error) == 'string'"
req DELETE /posts
expect "DELETE /posts -> 405" 405 "type(j.error) == 'string'"
req POST "/posts/$P1/genres" '{"ids":[]}'
expect "POST /posts/$P1/genres -> 405" 405 "type(j.error) == 'string'"
# }======

# {====== concurrent burst
# Each client creates ITERATIONS posts; for each it sets a genre set on its new
# post, sets another set on one of the shared posts P1/P2/P3, and reads a shared post.
SETS=("-" "$G1" "$G1,$G2" "$G2,$G3,$G4" "$G1,$G3" "$G4" "$G1,$G2,$G3,$G4")
SHARED=("$P1" "$P2" "$P3")
POSTS_BEFORE=3
call() { # METHOD PATH [BODY] -> prints "<status> <body>"
  local out args=(-sS --max-time 15 -w '\n%{http_code}' -X "$1")
  [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  out=$(curl "${args[@]}" "$BASE$2" 2>/dev/null) || out=$'\n000'
  echo "${out##*$'\n'} ${out%$'\n'*}"
}
client() {
  local c=$1 j res status body id set sid
  for j in $(seq "$ITERATIONS"); do
    res=$(call POST /posts "{\"text\":\"burst client $c item $j\"}")
    status=${res%% *}; body=${res#* }
    id=$(json_field "$body" post_id)
    echo "create $status ${id:--}"
    if [ -n "$id" ]; then
      set=${SETS[$(( (c + j) % ${#SETS[@]} ))]}
      res=$(call PUT "/posts/$id/genres" "{\"ids\":[${set//-/}]}")
      echo "set ${res%% *} $id $set"
    fi
    sid=${SHARED[$(( (c * 7 + j) % 3 ))]}
    set=${SETS[$(( (c * 3 + j * 5) % ${#SETS[@]} ))]}
    res=$(call PUT "/posts/$sid/genres" "{\"ids\":[${set//-/}]}")
    echo "shared ${res%% *} $sid $set"
    res=$(call GET "/posts/${SHARED[$(( j % 3 ))]}/genres")
    echo "read ${res%% *} ${SHARED[$(( j % 3 ))]}"
    [ $(( j % 5 )) = 0 ] && { res=$(call GET "/posts?limit=50"); echo "read ${res%% *} -"; }
  done
}
t0=$(date +%s.%N)
for c in $(seq "$CLIENTS"); do
  client "$c" >"$LOGS/burst/client.$c" 2>&1 &
  CLIENT_PIDS+=($!)
done
for p in "${CLIENT_PIDS[@]}"; do wait "$p"; done
CLIENT_PIDS=()
t1=$(date +%s.%N)
cat "$LOGS"/burst/client.* >"$LOGS/burst/all"
total=$(wc -l <"$LOGS/burst/all")
non2xx=$(awk '$2 !~ /^2/' "$LOGS/burst/all" | wc -l)
statuses=$(awk '{print $2}' "$LOGS/burst/all" | sort | uniq -c | tr -s ' ' | sed 's/^ //' | paste -sd, -)
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
if [ "$total" -gt 0 ] && [ "$non2xx" = 0 ]; then
  ok "burst: $CLIENTS clients, $total requests in ${secs}s, all 2xx (statuses: $statuses)"
else
  bad "burst: $non2xx of $total requests not 2xx (statuses: $statuses); first: $(awk '$2 !~ /^2/' "$LOGS/burst/all" | head -n 3 | paste -sd'|' -)"
fi
# }======

# {====== short load (loopback, bounded)
if [ "$WRK_SECONDS" != 0 ] && command -v wrk >/dev/null; then
  wrk -t2 -c16 -d"${WRK_SECONDS}s" "$BASE/posts/$P1/genres" >"$LOGS/wrk.txt" 2>&1
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$LOGS/wrk.txt")
  errs=$(grep -E 'Non-2xx|Socket errors' "$LOGS/wrk.txt" | tr -s ' ' | paste -sd';' -)
  if [ -n "$rps" ] && [ -z "$errs" ]; then
    ok "wrk -t2 -c16 -d${WRK_SECONDS}s GET /posts/$P1/genres: $rps req/s, no errors"
  else
    bad "wrk GET /posts/$P1/genres: rps='$rps' $errs"
  fi
elif [ "$WRK_SECONDS" != 0 ]; then
  echo "# wrk not installed: load step skipped"
fi
# }======

# {====== logs, stop, database
sleep 1.2     # access_log flush=1s; error_log is unbuffered
if grep -E '\[(error|alert|crit|emerg)\]' "$LOGS/error.log" >"$WORK/errors"; then
  bad "error.log has $(wc -l <"$WORK/errors") error lines, first: $(head -n 3 "$WORK/errors")"
else
  ok "error.log has no [error]/[alert]/[crit]/[emerg]"
fi
if stop_nginx; then ok "nginx stopped (QUIT)"; else bad "nginx did not stop on QUIT (killed)"; fi

"$LUAJ" "$HERE/check_db.lua" "$DB" "$LOGS/burst/all" "$POSTS_BEFORE" 4 >"$WORK/check.out" 2>&1
rc=$?
cat "$WORK/check.out"
p=$(grep -c '^ok - ' "$WORK/check.out")
f=$(grep -c '^FAIL - ' "$WORK/check.out")
PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
if [ "$rc" != 0 ] && [ "$f" = 0 ]; then bad "check_db.lua exited $rc"; fi
if command -v sqlite3 >/dev/null; then
  ic=$(sqlite3 "$DB" 'PRAGMA integrity_check;' 2>&1)
  [ "$ic" = ok ] && ok "sqlite3 CLI: integrity_check ok" || bad "sqlite3 CLI: integrity_check: $ic"
fi
# }======

# {====== a client that goes away in the middle of a transaction
# Its own nginx: one worker (every request on one connection), lua_check_client_abort
# on, the coroutine cache of lua-nginx-module on (default) and off
# (lua_thread_cache_max_entries 0). /tx/slow writes a row in db:transaction and
# sleeps 2 s; curl gives up after 0.5 s, so nginx aborts the request while the
# transaction has yielded. Every later write must answer 201 only when it
# committed, be visible to another process at once, and survive nginx; the
# aborted transaction's rows must never appear.
ABORT_CONF=conf/abort-test.conf
ABORT_DB=$HERE/data/abort.sqlite3
abort_rows() { # the rows of abort_row, comma-separated, read by another process
  JUNCTION_DB=$ABORT_DB "$LUAJ" -e '
    local db = assert(require("junction").open(os.getenv("JUNCTION_DB"), { busy_timeout = 2000 }))
    local rows, msg = db:query("SELECT v FROM abort_row ORDER BY v")
    if not rows then io.write("error: ", msg) os.exit(1) end
    local out = {}
    for i, r in ipairs(rows) do out[i] = r.v end
    io.write(table.concat(out, ","))' 2>&1
}
other_write() { # another process writes a row (the database is not locked)
  V=$1 JUNCTION_DB=$ABORT_DB "$LUAJ" -e '
    local db = assert(require("junction").open(os.getenv("JUNCTION_DB"), { busy_timeout = 2000 }))
    assert(db:query("INSERT INTO abort_row VALUES (?)", assert(os.getenv("V"))))' 2>&1
}
for cache in on off; do
  rm -f "$ABORT_DB" "$ABORT_DB-wal" "$ABORT_DB-shm" "$LOGS/abort-error.log"
  cache_line=
  [ "$cache" = off ] && cache_line="lua_thread_cache_max_entries 0;"
  cat >"$HERE/$ABORT_CONF" <<CONF
$USER_LINE
worker_processes 1;
pid logs/nginx.pid;
error_log logs/abort-error.log notice;
env JUNCTION_DB;
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
events { worker_connections 64; }
http {
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    access_log off;
    lua_package_path "\$prefix/lua/?.lua;\$prefix/../../lua/?.lua;\$prefix/../../lua/?/init.lua;;";
    lua_package_cpath "\$prefix/../../build/jit/?.so;;";
    $cache_line
    init_worker_by_lua_block { require("abort_app").init_worker() }
    exit_worker_by_lua_block { require("abort_app").exit_worker() }
    server {
        listen 127.0.0.1:$PORT;
        lua_check_client_abort on;
        location = /tx/slow  { content_by_lua_block { require("abort_app").slow() } }
        location = /tx/write { content_by_lua_block { require("abort_app").write() } }
    }
}
CONF
  export JUNCTION_DB=$ABORT_DB
  CONF=$ABORT_CONF
  if ! ngx 2>"$WORK/start.err"; then
    bad "abort test (coroutine cache $cache): nginx failed to start: $(cat "$WORK/start.err")"
    continue
  fi
  MASTER=$(cat "$LOGS/nginx.pid" 2>/dev/null)
  for _ in $(seq 100); do
    req GET /tx/write?v=before
    [ "$CODE" = 201 ] && break
    sleep 0.1
  done
  [ "$CODE" = 201 ] || { bad "abort test (coroutine cache $cache): no 201 for the first write: $CODE $BODY"; stop_nginx; continue; }
  curl -s -o /dev/null --max-time 0.5 "$BASE/tx/slow?sleep=2"
  curl_rc=$?
  sleep 0.5
  acked=before
  failed_writes=
  for i in 1 2 3 4 5; do
    req GET "/tx/write?v=after-$i"
    if [ "$CODE" = 201 ]; then acked="$acked,after-$i"; else failed_writes="$failed_writes after-$i:$CODE:$BODY"; fi
  done
  [ "$curl_rc" = 28 ] && [ -z "$failed_writes" ] &&
    ok "abort test (coroutine cache $cache): client gave up mid-transaction (curl rc 28), the next 5 writes answered 201" ||
    bad "abort test (coroutine cache $cache): curl rc $curl_rc (28 expected), failed writes:$failed_writes"
  rows=$(abort_rows)
  want=$(echo "$acked" | tr , '\n' | sort | paste -sd, -)
  [ "$rows" = "$want" ] &&
    ok "abort test (coroutine cache $cache): another process sees exactly the acknowledged rows ($rows)" ||
    bad "abort test (coroutine cache $cache): another process sees '$rows', want '$want'"
  out=$(other_write other) && ok "abort test (coroutine cache $cache): another process can write (no lock held)" ||
    bad "abort test (coroutine cache $cache): another process cannot write: $out"
  sleep 2      # the aborted handler's sleep is over
  req GET "/tx/write?v=late"
  expect "abort test (coroutine cache $cache): a write after the aborted sleep ended -> 201" 201 "j.v == 'late'"
  stop_nginx || bad "abort test (coroutine cache $cache): nginx did not stop on QUIT"
  rows=$(abort_rows)
  want=$(echo "$acked,other,late" | tr , '\n' | sort | paste -sd, -)
  [ "$rows" = "$want" ] &&
    ok "abort test (coroutine cache $cache): after nginx stopped every acknowledged row is there, none of the aborted transaction" ||
    bad "abort test (coroutine cache $cache): after nginx stopped the rows are '$rows', want '$want'"
  if grep -E '\[(error|alert|crit|emerg)\]' "$LOGS/abort-error.log" >"$WORK/errors"; then
    bad "abort test (coroutine cache $cache): abort-error.log: $(head -n 3 "$WORK/errors")"
  fi
done
# }======

finish
