#!/usr/bin/env bash
# .ci/busted.sh -- run the busted suite (spec/) under one or more Lua runtimes
# and end with one summed line "N passed, N failed, N skipped".
#
#   .ci/busted.sh [--build=DIR] [--label=NAME] [--wrap=CMD] [--spec=PATH]... [RUNTIME...]
#
# RUNTIME is 5.1, jit, 5.3 or 5.4 (default: all four); the module is taken
# from build/<RUNTIME>/junction/core.so, or build/<DIR>/ with --build.
# --wrap prefixes the interpreter (valgrind ..., env LD_PRELOAD=... for ASan).
# --spec runs a spec file (or directory) instead of spec/; given again, those
# too (make test-pg).
#
# busted is run as `<interpreter> /usr/bin/busted`, not `busted --lua=...`:
# busted 2.1.1 re-executes itself for --lua by pasting the arguments into a
# shell command unquoted, so --lpath='lua/?.lua;lua/?/init.lua' would be cut at
# the ';'. Running the interpreter directly also lets --wrap see the real
# process. --ignore-lua keeps a `lua` key in .busted from re-executing.
#
# A runtime whose run prints no BUSTED_COUNTS line (a crash, a load error)
# counts as 1 failed; so does a non-zero exit with no failed test (valgrind or
# ASan reporting after the last test). Exit status 1 if anything failed.
set -u
cd "$(dirname "$0")/.."

build= label= wrap=
specs=()
runtimes=()
for a in "$@"; do
  case $a in
    --build=*) build=${a#*=} ;;
    --label=*) label=${a#*=} ;;
    --wrap=*)  wrap=${a#*=} ;;
    --spec=*)  specs+=("${a#*=}") ;;
    5.1|jit|5.3|5.4) runtimes+=("$a") ;;
    *) echo "busted.sh: unknown argument '$a'" >&2; exit 2 ;;
  esac
done
[ ${#runtimes[@]} -gt 0 ] || runtimes=(5.1 jit 5.3 5.4)
[ ${#specs[@]} -gt 0 ] || specs=(spec)

busted_bin=$(command -v busted) || { echo "busted.sh: busted not installed (make deps)"; echo "0 passed, 1 failed"; exit 1; }
lpath='lua/?.lua;lua/?/init.lua'
log=$(mktemp); trap 'rm -f "$log"' EXIT
pass=0 fail=0 skip=0

for v in "${runtimes[@]}"; do
  case $v in jit) lua=luajit ;; *) lua=lua$v ;; esac
  dir=build/${build:-$v}
  name=${label:-$lua}
  if [ ! -f "$dir/junction/core.so" ]; then
    echo "[$name] FAIL: $dir/junction/core.so not built"; fail=$((fail + 1)); continue
  fi
  # shellcheck disable=SC2086 # $wrap is a command prefix, split on purpose
  $wrap "$lua" "$busted_bin" --ignore-lua --cpath="$dir/?.so" --lpath="$lpath" \
    -o spec/ci_summary.lua "${specs[@]}" </dev/null 2>&1 | tee "$log" | sed -u "s/^/[$name] /"
  rc=${PIPESTATUS[0]}
  counts=$(grep -E '^BUSTED_COUNTS ' "$log" | tail -n 1)
  if [ -z "$counts" ]; then
    echo "[$name] FAIL: busted printed no counts (exit $rc)"; fail=$((fail + 1)); continue
  fi
  read -r p f e s < <(sed -E 's/.*passed=([0-9]+) failed=([0-9]+) errors=([0-9]+) pending=([0-9]+).*/\1 \2 \3 \4/' <<<"$counts")
  pass=$((pass + p)); fail=$((fail + f + e)); skip=$((skip + s))
  if [ "$rc" -ne 0 ] && [ $((f + e)) -eq 0 ]; then
    echo "[$name] FAIL: exit status $rc although every test passed (see the report above)"
    fail=$((fail + 1))
  fi
  if [ "$p" -eq 0 ] && [ $((f + e)) -eq 0 ]; then
    echo "[$name] FAIL: no test ran"; fail=$((fail + 1))
  fi
done

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
