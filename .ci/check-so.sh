#!/usr/bin/env bash
# .ci/check-so.sh SO -- checks a freshly linked junction/core.so (the Makefile
# runs it after each link; on failure it deletes the .so so make retries):
#   - it exports luaopen_junction_core and no other function of ours
#     (-fvisibility=hidden; one module must not leak symbols into nginx);
#   - it does not link liblua/libluajit (the interpreter provides those).
set -u
so=$1
fail() { echo "check-so: $so: $*" >&2; rm -f "$so"; exit 1; }
syms=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TtDdBbRrVvWw]$/ { print $3 }' |
       grep -vE '^(_init|_fini|_edata|_end|__bss_start)$|^__(asan|ubsan|sanitizer|lsan)_')
[ "$syms" = luaopen_junction_core ] ||
  fail "must export exactly luaopen_junction_core, exports: $(echo $syms)"
if readelf -d "$so" | grep NEEDED | grep -qiE 'lib(lua|luajit)'; then
  fail "links the Lua library: $(readelf -d "$so" | grep NEEDED | tr -s ' ')"
fi
exit 0
