#!/usr/bin/env bash
# .ci/pg-suite.sh -- the spec suite and the seed's blog on PostgreSQL (make test-pg).
#
#   bash .ci/pg.sh run -- bash .ci/pg-suite.sh [--all] [RUNTIME...]
#
# Needs JUNCTION_TEST_PG (a postgresql:// URL; .ci/pg.sh run sets it): every
# spec opening its database with H.open gets a schema of its own there
# (spec/helper.lua), and the specs of SQLite-only behaviour are pending.
#   1. busted on every spec file of spec/ but those .ci/pg-specs excludes
#      (a short list, each with its reason; --all or PG_ALL=1 runs those
#      too), under each RUNTIME (default: 5.4 and jit), in one busted run
#      per runtime;
#   2. examples/blog.lua, unchanged, on each RUNTIME, each in a fresh schema:
#      it must exit 0 and print what it prints on SQLite;
#   3. the reliability suite's model-based check (test/reliability/
#      model_check.lua) on PostgreSQL, a short run on each RUNTIME
#      (PG_MC_STEPS steps, default 1000: a few seconds).
# Ends with one line "N passed, N failed, N skipped"; exit status 1 if anything failed.
set -u
cd "$(dirname "$0")/.."

if [ -z "${JUNCTION_TEST_PG:-}" ]; then
  echo "pg-suite.sh: JUNCTION_TEST_PG is not set (run it under: bash .ci/pg.sh run -- ...)"
  echo "0 passed, 1 failed"
  exit 1
fi

all=${PG_ALL:-0}
runtimes=()
for a in "$@"; do
  case $a in
    --all) all=1 ;;
    5.1|jit|5.3|5.4) runtimes+=("$a") ;;
    *) echo "pg-suite.sh: unknown argument '$a'" >&2; exit 2 ;;
  esac
done
[ ${#runtimes[@]} -gt 0 ] || runtimes=(5.4 jit)

specs=()
blog=1
excluded=()
if [ "$all" != 1 ]; then
  while read -r line; do
    line=${line%%#*}
    line=$(echo "$line" | tr -d '[:space:]')
    [ -n "$line" ] && excluded+=("$line")
  done < .ci/pg-specs
fi
if [ ${#excluded[@]} -eq 0 ]; then
  specs=(--spec=spec)
else
  while read -r f; do
    skip=0
    for x in "${excluded[@]}"; do [ "$f" = "$x" ] && skip=1; done
    if [ $skip = 1 ]; then echo "pg-suite.sh: not run on PostgreSQL (.ci/pg-specs): $f"; else specs+=("--spec=$f"); fi
  done < <(find spec -name '*_spec.lua' | sort)
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
bash .ci/busted.sh "${specs[@]}" "${runtimes[@]}" | tee "$out"
read -r pass fail skip < <(tail -n 1 "$out" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped$/\1 \2 \3/p')
if [ -z "${pass:-}" ]; then pass=0 fail=1 skip=0; fi

# The blog: what it prints on SQLite, in a schema of its own per runtime.
sep='?'
case $JUNCTION_TEST_PG in *\?*) sep='&' ;; esac
[ "$blog" = 1 ] || runtimes=()
for v in "${runtimes[@]}"; do
  case $v in jit) lua=luajit ;; *) lua=lua$v ;; esac
  schema="blog_${v/./_}_$$"
  url="$JUNCTION_TEST_PG${sep}options=-csearch_path%3D$schema"
  if ! "$lua" -e "package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path
                  package.cpath = 'build/$v/?.so;' .. package.cpath
                  local db = assert(require('junction').open(os.getenv('JUNCTION_TEST_PG')))
                  assert(db:exec('CREATE SCHEMA $schema'))" </dev/null; then
    echo "[$lua] FAIL: examples/blog.lua: could not create schema $schema"; fail=$((fail + 1)); continue
  fi
  text=$(LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/$v/?.so;;" \
         LUA_PATH_5_4="lua/?.lua;lua/?/init.lua;;" LUA_CPATH_5_4="build/$v/?.so;;" \
         "$lua" examples/blog.lua "$url" </dev/null 2>&1)
  rc=$?
  echo "$text" | sed "s/^/[$lua blog] /"
  if [ $rc -eq 0 ] && grep -q "^done$" <<<"$text" &&
     grep -q "setGenres{lua, sqlite, databases}: 3 genres, has orm: false, has databases: true" <<<"$text" &&
     grep -q "posts tagged lua: 1" <<<"$text" &&
     grep -q '^  #1 "Junction models in Lua": lua, sqlite, databases$' <<<"$text"; then
    echo "[$lua] ok: examples/blog.lua on PostgreSQL"; pass=$((pass + 1))
  else
    echo "[$lua] FAIL: examples/blog.lua on PostgreSQL (exit $rc)"; fail=$((fail + 1))
  fi
  "$lua" -e "package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path
             package.cpath = 'build/$v/?.so;' .. package.cpath
             local db = assert(require('junction').open(os.getenv('JUNCTION_TEST_PG')))
             assert(db:exec('DROP SCHEMA $schema CASCADE'))" </dev/null >/dev/null 2>&1
done

# The model-based check, each episode in a schema of its own.
for v in "${runtimes[@]}"; do
  case $v in jit) lua=luajit ;; *) lua=lua$v ;; esac
  text=$(cd test/reliability && RELIABILITY_PG="$JUNCTION_TEST_PG" \
         LUA_PATH="../../lua/?.lua;../../lua/?/init.lua;;" LUA_CPATH="../../build/$v/?.so;;" \
         LUA_PATH_5_4="../../lua/?.lua;../../lua/?/init.lua;;" LUA_CPATH_5_4="../../build/$v/?.so;;" \
         "$lua" model_check.lua 21 "${PG_MC_STEPS:-1000}" </dev/null 2>&1)
  rc=$?
  if [ $rc -eq 0 ] && grep -q "^ok - model_check" <<<"$text"; then
    echo "[$lua] ok: test/reliability/model_check.lua on PostgreSQL: $(grep '^ok - ' <<<"$text" | cut -c1-120)"
    pass=$((pass + 1))
  else
    echo "$text" | head -n 40 | sed "s/^/[$lua model_check] /"
    echo "[$lua] FAIL: test/reliability/model_check.lua on PostgreSQL (exit $rc)"; fail=$((fail + 1))
  fi
done

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
