#!/usr/bin/env bash
# .ci/pg.sh -- a private, throwaway PostgreSQL server for the tests.
#
#   bash .ci/pg.sh start          start one; prints two lines: the URL
#                                 (postgresql://postgres@127.0.0.1:PORT/postgres)
#                                 and the directory to give to `stop`
#   bash .ci/pg.sh stop DIR       stop it (by the pid in postmaster.pid) and remove DIR
#   bash .ci/pg.sh run -- CMD...  start one, run CMD with JUNCTION_TEST_PG=<url>
#                                 in its environment, stop the server (also when
#                                 CMD fails or the script is interrupted), exit
#                                 with CMD's status
#   bash .ci/pg.sh check          exit 0 when a server can be started here, else
#                                 print why not and exit 1
#
# The server: initdb in a mktemp directory (trust authentication, UTF-8, C
# locale), a Unix socket in that directory, a free TCP port on 127.0.0.1,
# fsync=off and synchronous_commit=off (tests measure CPU, never
# durability). PostgreSQL refuses to run as root: as root, the server runs
# as the `postgres` user (the Debian package creates it).
set -u

bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
  d=$(command -v initdb 2>/dev/null) && { dirname "$d"; return 0; }
  return 1
}

# as_server CMD...: run CMD as the user the server runs as
as_server() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

why_not() {
  if ! bindir >/dev/null; then
    echo "PostgreSQL server binaries not found (apt-get install postgresql)"; return 0
  fi
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "running as root and there is no 'postgres' user to run the server as"; return 0
  fi
  if ! command -v python3 >/dev/null 2>&1 && ! command -v lua5.4 >/dev/null 2>&1; then
    echo "neither python3 nor lua5.4 to find a free port"; return 0
  fi
  return 1
}

free_port() {
  # bind port 0 and read what the kernel gave; a run racing for it fails at
  # start, and start tries again
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
  else
    echo $((20000 + RANDOM % 30000))
  fi
}

# start: prints URL then DIR; returns non-zero (and cleans up) on failure
start() {
  local bin dir port try
  if msg=$(why_not); then echo "pg.sh: cannot start PostgreSQL: $msg" >&2; return 1; fi
  bin=$(bindir)
  dir=$(mktemp -d "${TMPDIR:-/tmp}/junction-pg.XXXXXX") || return 1
  chmod 755 "$dir"
  mkdir -p "$dir/sock"
  [ "$(id -u)" -eq 0 ] && chown -R postgres "$dir"
  if ! as_server "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
       --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1; then
    echo "pg.sh: initdb failed:" >&2; tail -n 20 "$dir/initdb.log" >&2
    rm -rf "$dir"; return 1
  fi
  for try in 1 2 3 4 5; do
    port=$(free_port)
    if as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
         -o "-k $dir/sock -p $port -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
         start >"$dir/pg_ctl.log" 2>&1; then
      echo "postgresql://postgres@127.0.0.1:$port/postgres"
      echo "$dir"
      return 0
    fi
  done
  echo "pg.sh: the server did not start:" >&2; tail -n 20 "$dir/server.log" >&2
  rm -rf "$dir"; return 1
}

# stop DIR: SIGINT (fast shutdown) to the postmaster, then wait for its pid
# file to go (the process may linger as a zombie: its pid is no signal)
stop() {
  local dir=$1 pid i
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  if [ -f "$dir/data/postmaster.pid" ]; then
    pid=$(head -n 1 "$dir/data/postmaster.pid")
    [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null
    for i in $(seq 1 600); do
      [ -e "$dir/data/postmaster.pid" ] || break
      sleep 0.05
    done
    if [ -e "$dir/data/postmaster.pid" ]; then
      [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    fi
  fi
  rm -rf "$dir"
}

case ${1:-} in
  start) start ;;
  stop) stop "${2:-}" ;;
  check) if msg=$(why_not); then echo "$msg"; exit 1; fi; exit 0 ;;
  run)
    shift
    [ "${1:-}" = -- ] && shift
    [ $# -gt 0 ] || { echo "usage: pg.sh run -- CMD..." >&2; exit 2; }
    out=$(start) || exit 1
    url=$(sed -n 1p <<<"$out")
    PGDIR=$(sed -n 2p <<<"$out")
    trap 'stop "$PGDIR"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    echo "pg.sh: PostgreSQL at $url"
    JUNCTION_TEST_PG=$url "$@"
    exit $?
    ;;
  *) sed -n '2,/^set -u/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
