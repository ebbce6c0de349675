#!/usr/bin/env bash
# .ci/check-rockspec.sh -- junction-scm-1.rockspec cannot rot:
#   1. it lists exactly the csrc/*.c and lua/junction/**/*.lua that exist
#      (prints the lines to add or remove otherwise);
#   2. `luarocks lint` accepts it;
#   3. `luarocks make` works offline for Lua 5.4, 5.3, 5.1 and LuaJIT
#      (LUA_INCDIR=/usr/include/luajit-2.1), and the installed tree alone
#      (no ./, no build/, no lua/) serves `require "junction"`.
# luarocks' builtin backend compiles in the source directory and leaves .o and
# .so files there, so step 3 runs in a temporary copy: the checkout is untouched.
# Last line: "N passed, N failed". `make rockspec` runs it.
#
#   .ci/check-rockspec.sh --write   rewrites the rockspec's source and module
#                                   lists from the tree (`make rockspec-update`)
set -u
cd "$(dirname "$0")/.."
root=$PWD
spec=junction-scm-1.rockspec

if [ "${1:-}" = --write ]; then
  # each list is replaced where its first line stands; the rest is kept as is
  srcs=$(for f in csrc/*.c; do [ -e "$f" ] && printf '        "%s",\n' "$f"; done)
  # init.lua ("junction") first, then the others in name order
  mods=$(find lua/junction -name '*.lua' | LC_ALL=C sort |
         awk '/\/init\.lua$/ { print; next } { rest[++n] = $0 } END { for (i = 1; i <= n; i++) print rest[i] }' |
         while read -r f; do
           m=${f#lua/}; m=${m%.lua}; m=${m%/init}; m=${m//\//.}
           if [ "$m" = junction ]; then printf '    junction = "%s",\n' "$f"
           else printf '    ["%s"] = "%s",\n' "$m" "$f"; fi
         done)
  awk -v srcs="$srcs" -v mods="$mods" '
    /^        "csrc\/[^"]*\.c",$/                     { if (!s++) print srcs; next }
    /^    (junction|\["junction\.[^"]*"\]) = "lua\// { if (!m++) print mods; next }
    { print }' "$spec" >"$spec.tmp" && mv "$spec.tmp" "$spec"
  echo "rewrote the lists in $spec"
  exit 0
fi
pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   - $*"; }
bad() { fail=$((fail + 1)); echo "FAIL - $*"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# 1. the file lists ------------------------------------------------------------
lua5.4 - "$spec" >"$tmp/listed" 2>"$tmp/err" <<'LUA'
local env = {}
assert(loadfile(arg[1], "t", env))()
for name, m in pairs(env.build.modules) do
  if type(m) == "string" then print("module " .. name .. " = " .. m)
  else for _, s in ipairs(m.sources or {}) do print("source " .. s) end end
end
LUA
{
  for f in csrc/*.c; do [ -e "$f" ] && echo "source $f"; done
  find lua/junction -name '*.lua' 2>/dev/null | while read -r f; do
    m=${f#lua/}; m=${m%.lua}; m=${m%/init}; echo "module ${m//\//.} = $f"
  done
} >"$tmp/present"
sort -o "$tmp/listed" "$tmp/listed"; sort -o "$tmp/present" "$tmp/present"
if [ -s "$tmp/err" ]; then
  bad "$spec does not load: $(cat "$tmp/err")"
elif cmp -s "$tmp/listed" "$tmp/present"; then
  ok "$spec lists exactly the $(grep -c '^source' "$tmp/present") csrc/*.c and $(grep -c '^module' "$tmp/present") lua/junction modules present"
else
  bad "$spec is out of date with the tree:"
  comm -13 "$tmp/listed" "$tmp/present" | sed 's/^/       add to the rockspec:      /'
  comm -23 "$tmp/listed" "$tmp/present" | sed 's/^/       remove (file is gone):    /'
fi

# 2. luarocks lint ------------------------------------------------------------
if out=$(luarocks lint "$spec" 2>&1); then ok "luarocks lint"; else bad "luarocks lint: $out"; fi

# 3. luarocks make, offline, into a scratch tree, from a scratch copy ----------
mkdir -p "$tmp/src"
cp -r "$spec" csrc lua bin "$tmp/src/"
# make_and_load LABEL INTERPRETER LUA_ABI [VAR=VALUE...]
make_and_load() {
  local label=$1 lua=$2 abi=$3; shift 3
  local tree=$tmp/tree-$label
  if ! (cd "$tmp/src" && luarocks --lua-version="$abi" make --tree="$tree" "$spec" "$@") \
       >"$tmp/make-$label.log" 2>&1; then
    bad "luarocks make ($label): $(tail -n 20 "$tmp/make-$label.log")"; return
  fi
  # only the tree on the paths, and run from / so ./?.so cannot stand in
  if out=$(cd / && "$lua" -e "
      package.path = '$tree/share/lua/$abi/?.lua;$tree/share/lua/$abi/?/init.lua'
      package.cpath = '$tree/lib/lua/$abi/?.so'
      local core = require 'junction.core'
      local junction = require 'junction'
      if junction.open then assert(junction.open(':memory:')):close() end
      io.write('version=', tostring(junction.version or core.version), ' on ',
               jit and jit.version or _VERSION)" 2>&1); then
    ok "luarocks make ($label) + require from the installed tree: $out"
  else
    bad "luarocks make ($label) installed a tree that does not load: $out"
  fi
  # the installed command finds the installed module (luarocks wraps it)
  if out=$(cd / && "$tree/bin/junction" --help 2>&1) && grep -q '^usage: junction' <<<"$out"; then
    ok "luarocks make ($label) installed the junction command"
  else
    bad "luarocks make ($label): bin/junction --help failed: $out"
  fi
}
make_and_load 5.4 lua5.4 5.4
make_and_load 5.3 lua5.3 5.3
make_and_load 5.1 lua5.1 5.1
make_and_load luajit luajit 5.1 LUA_INCDIR=/usr/include/luajit-2.1

# the checkout must not have gained build droppings
stray=$(cd "$root" && ls csrc/*.o csrc/*.so junction/core.so 2>/dev/null)
[ -z "$stray" ] || bad "stray build files in the checkout: $stray"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
