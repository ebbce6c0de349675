#!/usr/bin/env bash
# test/reliability/run.sh -- "prove that nothing is lost" (issue 6).
#
#   bash test/reliability/run.sh          CI sizes (the default; same as --ci)
#   bash test/reliability/run.sh --ci     CI sizes: a few minutes on 2 cores
#   bash test/reliability/run.sh --soak   the big sizes (1,000,000 model steps,
#                                         1,000,000 fuzz calls, 2,000 crash rounds)
#
# Each check prints "ok N - ..." or "FAIL N - ..."; the last line is
# "N passed, N failed"; the exit status is 1 when anything failed. Logs of
# every check are kept in $RELIABILITY_LOGS (default build/reliability/).
# With RELIABILITY_PG (or JUNCTION_TEST_PG) set to a postgresql:// URL, the
# model checks run on PostgreSQL too (each episode in a schema of its own):
#   bash .ci/pg.sh run -- bash test/reliability/run.sh
# The module is taken from build/<abi>/ (made with `make build` when
# missing) and, for the fuzzer, from build/asan/ (else built here into
# test/reliability/build/asan/ with -fsanitize=address,undefined).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MODE=ci
case "${1:-}" in
  --soak) MODE=soak ;;
  --ci|"") MODE=ci ;;
  *) echo "usage: $0 [--ci|--soak]" >&2; exit 2 ;;
esac

if [ "$MODE" = soak ]; then
  MC_SEEDS="1 2 3 4"; MC_STEPS=250000       # 1,000,000 steps
  MC_OTHER_STEPS=50000
  FUZZ_SEEDS="1 2"; FUZZ_CALLS=500000       # 1,000,000 calls
  FEAT_SEEDS="1 2 3"; FEAT_CALLS=300000     # the model features: 900,000 calls
  CRASH_ROUNDS=2000
  CONC_WORKERS=8; CONC_OPS=3000
else
  MC_SEEDS="1 2 3 4"; MC_STEPS=10000        # 40,000 steps
  MC_OTHER_STEPS=5000
  FUZZ_SEEDS="1 2"; FUZZ_CALLS=100000       # 200,000 calls
  FEAT_SEEDS="1 2"; FEAT_CALLS=30000        # the model features: 60,000 calls
  CRASH_ROUNDS=200
  CONC_WORKERS=4; CONC_OPS=400
fi

# the PostgreSQL server, if any: only the checks that say so run there
PG_URL=${RELIABILITY_PG:-${JUNCTION_TEST_PG:-}}
unset RELIABILITY_PG

LOGS=${RELIABILITY_LOGS:-$ROOT/build/reliability}
mkdir -p "$LOGS"
LOGS=$(cd "$LOGS" && pwd)
export RELIABILITY_LOGS=$LOGS       # fuzz.lua keeps its call trace there on failure
export RELIABILITY_TMP
RELIABILITY_TMP=$(mktemp -d /tmp/junction-reliability.XXXXXX)
# (kept when something failed: databases, journals and child logs are evidence)
trap '[ "${FAIL:-1}" -eq 0 ] && rm -rf "$RELIABILITY_TMP" || echo "# kept $RELIABILITY_TMP"' EXIT

# {====== the module builds

# The Makefile rebuilds what is older than csrc/ (nothing when up to date).
if ! make -C "$ROOT" --no-print-directory build >"$LOGS/make-build.log" 2>&1; then
  echo "# make build failed: see $LOGS/make-build.log"
fi

ASAN_DIR=""
if make -C "$ROOT" --no-print-directory build/asan/junction/core.so >"$LOGS/make-asan.log" 2>&1 \
   && [ -f "$ROOT/build/asan/junction/core.so" ]; then
  ASAN_DIR="$ROOT/build/asan"
else
  ASAN_DIR="$HERE/build/asan"
  if [ ! -f "$ASAN_DIR/junction/core.so" ] || \
     [ -n "$(find "$ROOT/csrc" -newer "$ASAN_DIR/junction/core.so" -print -quit)" ]; then
    echo "# building an ASan+UBSan module into $ASAN_DIR"
    mkdir -p "$ASAN_DIR/junction"
    gcc -std=c99 -g -O1 -fPIC -shared -fno-omit-frame-pointer -fsanitize=address,undefined \
      -fno-sanitize-recover=all -fvisibility=hidden $(pkg-config --cflags lua5.4 sqlite3) \
      -o "$ASAN_DIR/junction/core.so" "$ROOT"/csrc/*.c -lsqlite3 >"$LOGS/asan-build.log" 2>&1 \
      || { echo "# ASan build failed: see $LOGS/asan-build.log"; ASAN_DIR=""; }
  fi
fi

# lua_env ABI: the interpreter and the environment that finds junction in build/ABI
LP="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"
run_lua() {   # run_lua ABI script args...
  local abi=$1; shift
  case "$abi" in
    5.4)  LUA_PATH_5_4="$LP" LUA_CPATH_5_4="$ROOT/build/5.4/?.so;;" lua5.4 "$@" ;;
    5.3)  LUA_PATH_5_3="$LP" LUA_CPATH_5_3="$ROOT/build/5.3/?.so;;" lua5.3 "$@" ;;
    5.1)  LUA_PATH="$LP" LUA_CPATH="$ROOT/build/5.1/?.so;;" lua5.1 "$@" ;;
    jit)  LUA_PATH="$LP" LUA_CPATH="$ROOT/build/jit/?.so;;" luajit "$@" ;;
    asan) LD_PRELOAD=$(gcc -print-file-name=libasan.so) \
          ASAN_OPTIONS=detect_leaks=1:exitcode=86:detect_stack_use_after_return=1 \
          UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
          LUA_PATH_5_4="$LP" LUA_CPATH_5_4="$ASAN_DIR/?.so;;" lua5.4 "$@" ;;
  esac
}
have_abi() { [ "$1" = asan ] && [ -n "$ASAN_DIR" ] || [ -f "$ROOT/build/$1/junction/core.so" ]; }

# }======

# {====== checks: started in the background two at a time, reported in order

N=0 PASS=0 FAIL=0
T0=$SECONDS
declare -a NAMES PIDS LOGFILES

start() {   # start NAME ABI script args...
  local name=$1 abi=$2; shift 2
  N=$((N + 1))
  local log="$LOGS/$(printf '%02d' $N)-${name// /_}.log"
  NAMES[$N]="$name ($abi)"; LOGFILES[$N]=$log
  if ! have_abi "$abi"; then
    echo "no build for $abi (build/$abi/junction/core.so)" >"$log"
    ( exit 1 ) & PIDS[$N]=$!
    return
  fi
  # (run from a scratch directory: whatever a check creates by accident stays there)
  local script=$1; shift
  mkdir -p "$RELIABILITY_TMP/cwd-$N"
  # LeakSanitizer's own tracer sometimes crashes under load ("LeakSanitizer has
  # encountered a fatal error": no leak was found or missed); such a run is run again, once.
  ( cd "$RELIABILITY_TMP/cwd-$N" && { run_lua "$abi" "$HERE/$script" "$@" >"$log" 2>&1 ||
      { grep -q 'LeakSanitizer has encountered a fatal error' "$log" &&
        run_lua "$abi" "$HERE/$script" "$@" >"$log" 2>&1; }; } ) &
  PIDS[$N]=$!
}

REPORTED=0
report_upto() {   # wait for and report checks REPORTED+1 .. $1
  local i rc line
  for ((i = REPORTED + 1; i <= $1; i++)); do
    wait "${PIDS[$i]}"; rc=$?
    line=$(grep -E '^(ok|FAIL) - ' "${LOGFILES[$i]}" | tail -n 1)
    line=${line#ok - }; line=${line#FAIL - }
    if [ "$rc" -eq 0 ] && grep -q '^ok - ' "${LOGFILES[$i]}"; then
      PASS=$((PASS + 1)); echo "ok $i - ${NAMES[$i]}: $line"
    else
      FAIL=$((FAIL + 1)); echo "FAIL $i - ${NAMES[$i]} (exit $rc): ${line:-no result line}"
      # (ASan's shadow-byte map and deep frames are left to the full log)
      grep -v -E '^ok - |^ *0x[0-9a-f]+:|^ *Shadow|redzone|^ *(Addressable|Partially|Freed heap|Stack|Global|Poisoned|Container|Array cookie|Intra|ASan internal|Left alloca|Right alloca)|^ +#([6-9]|[1-9][0-9]) ' \
        "${LOGFILES[$i]}" | head -n 60 | sed 's/^/    /'
      if [[ "${NAMES[$i]}" == fuzz* ]]; then
        local tr="$LOGS/fuzz-$(sed -E 's/.*seed=([0-9]+).*/\1/' <<<"${NAMES[$i]}").trace"
        [ -f "$tr" ] && { echo "    last calls (from $tr):"; tail -n 4 "$tr" | cut -c1-200 | sed 's/^/      /'; }
      fi
      echo "    (full log: ${LOGFILES[$i]})"
    fi
  done
  REPORTED=$1
}

pair() { report_upto $((N - 1)); }   # keep at most two checks running

echo "# junction reliability ($MODE) -- $(date -u '+%Y-%m-%d %H:%M:%S') UTC, $(nproc) cores"

# 1. model checks (lua5.4: the CI sizes; then 5.1, LuaJIT and 5.3 shorter)
for s in $MC_SEEDS; do start "model_check seed=$s" 5.4 model_check.lua "$s" "$MC_STEPS"; pair; done
start "model_check seed=11" 5.1 model_check.lua 11 "$MC_OTHER_STEPS"; pair
start "model_check seed=12" jit model_check.lua 12 "$MC_OTHER_STEPS"; pair
start "model_check seed=13" 5.3 model_check.lua 13 "$MC_OTHER_STEPS"; pair
# (and under ASan+UBSan: the classes' callbacks re-enter, rewrite and close)
start "model_check seed=14" asan model_check.lua 14 "$MC_OTHER_STEPS"; pair
# (on PostgreSQL, when a server is given)
if [ -n "$PG_URL" ]; then
  export RELIABILITY_PG=$PG_URL
  start "model_check seed=21 PostgreSQL" 5.4 model_check.lua 21 "$MC_OTHER_STEPS"; pair
  start "model_check seed=22 PostgreSQL" jit model_check.lua 22 "$MC_OTHER_STEPS"; pair
  unset RELIABILITY_PG
fi

# (the transaction journal: instances follow every rollback, abandoned ones too)
start "journal seed=1" 5.4 journal.lua 1 "$MC_STEPS"; pair
start "journal seed=2" jit journal.lua 2 "$MC_OTHER_STEPS"; pair
start "journal seed=3" 5.1 journal.lua 3 "$MC_OTHER_STEPS"; pair
start "journal seed=4" asan journal.lua 4 "$MC_OTHER_STEPS"; pair

# 2. injection catalogue
start "injection" 5.4 injection.lua; pair
start "injection" jit injection.lua; pair

# 3. fuzz under ASan+UBSan
for s in $FUZZ_SEEDS; do start "fuzz seed=$s" asan fuzz.lua "$s" "$FUZZ_CALLS"; pair; done
# (the model features: scopes, soft delete, hooks, upsert, JSON, copy; on LuaJIT too)
for s in $FEAT_SEEDS; do start "fuzz_features seed=$s" asan fuzz_features.lua "$s" "$FEAT_CALLS"; pair; done
start "fuzz_features seed=9" jit fuzz_features.lua 9 $((FEAT_CALLS / 2)); pair

# 4. targeted scenarios (each in its own process), plain and ASan
start "scenarios" 5.4 scenarios.lua; pair
start "scenarios" asan scenarios.lua; pair

# 5. crash (SIGKILL) and 6. concurrency, one at a time: they time things
report_upto $N
start "crash" 5.4 crash.lua "$CRASH_ROUNDS" 1; report_upto $N
start "crash, fsync through lua-posix" jit crash.lua $((CRASH_ROUNDS / 2)) 2; report_upto $N
start "concurrency" 5.4 concurrency.lua "$CONC_WORKERS" "$CONC_OPS" 1; report_upto $N
start "concurrency" jit concurrency.lua "$CONC_WORKERS" "$CONC_OPS" 2; report_upto $N

# }======

echo "# $((SECONDS - T0))s in all; logs in $LOGS/"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
