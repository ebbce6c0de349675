#!/usr/bin/env bash
# .ci/check-rockspec.sh -- junction-scm-1.rockspec cannot rot:
#   1. it lists exactly the lua/junction/**/*.lua that exist (prints the lines
#      to add or remove otherwise); the C sources are every csrc/*.c (rock.mk),
#      which step 3 checks by counting the objects it compiled;
#   2. `luarocks lint` accepts it;
#   3. `luarocks make` works offline for Lua 5.4, 5.3, 5.1 and LuaJIT
#      (LUA_INCDIR=/usr/include/luajit-2.1), and the installed tree alone
#      (no ./, no build/, no lua/) serves `require "junction"`;
#   4. PostgreSQL: the default build finds libpq (this machine has it) and its
#      module opens a PostgreSQL server (.ci/pg.sh, when one can run here; else
#      it reaches libpq's connection error); PQ_DIR=no builds the SQLite engine
#      alone, whose junction.open("postgresql://...") says it lacks libpq;
#      PQ_INCDIR pointing at a directory without libpq fails with a clear message.
# The build runs in a temporary copy: the checkout is untouched.
# Last line: "N passed, N failed". `make rockspec` runs it.
#
#   .ci/check-rockspec.sh --write   rewrites the rockspec's source and module
#                                   lists from the tree (`make rockspec-update`)
set -u
cd "$(dirname "$0")/.."
root=$PWD
spec=junction-scm-1.rockspec

if [ "${1:-}" = --write ]; then
  # the list is replaced where its first line stands; the rest is kept as is
  # init.lua ("junction") first, then the others in name order
  mods=$(find lua/junction -name '*.lua' | LC_ALL=C sort |
         awk '/\/init\.lua$/ { print; next } { rest[++n] = $0 } END { for (i = 1; i <= n; i++) print rest[i] }' |
         while read -r f; do
           m=${f#lua/}; m=${m%.lua}; m=${m%/init}; m=${m//\//.}
           if [ "$m" = junction ]; then printf '      junction = "%s",\n' "$f"
           else printf '      ["%s"] = "%s",\n' "$m" "$f"; fi
         done)
  awk -v mods="$mods" '
    /^      (junction|\["junction\.[^"]*"\]) = "lua\// { if (!m++) print mods; next }
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
for name, m in pairs(env.build.install.lua) do print("module " .. name .. " = " .. m) end
LUA
{
  find lua/junction -name '*.lua' 2>/dev/null | while read -r f; do
    m=${f#lua/}; m=${m%.lua}; m=${m%/init}; echo "module ${m//\//.} = $f"
  done
} >"$tmp/present"
sort -o "$tmp/listed" "$tmp/listed"; sort -o "$tmp/present" "$tmp/present"
if [ -s "$tmp/err" ]; then
  bad "$spec does not load: $(cat "$tmp/err")"
elif cmp -s "$tmp/listed" "$tmp/present"; then
  ok "$spec lists exactly the $(grep -c '^module' "$tmp/present") lua/junction modules present"
else
  bad "$spec is out of date with the tree:"
  comm -13 "$tmp/listed" "$tmp/present" | sed 's/^/       add to the rockspec:      /'
  comm -23 "$tmp/listed" "$tmp/present" | sed 's/^/       remove (file is gone):    /'
fi

# 2. luarocks lint ------------------------------------------------------------
if out=$(luarocks lint "$spec" 2>&1); then ok "luarocks lint"; else bad "luarocks lint: $out"; fi

# 3. luarocks make, offline, into a scratch tree, from a scratch copy ----------
mkdir -p "$tmp/src"
cp -r "$spec" rock.mk csrc lua bin "$tmp/src/"
nsrc=$(ls csrc/*.c | wc -l)
# lua_in_tree TREE ABI INTERPRETER CODE: run CODE with only TREE on the paths,
# from / so that ./?.so cannot stand in
lua_in_tree() {
  local tree=$1 abi=$2 lua=$3 code=$4
  (cd / && "$lua" -e "
      package.path = '$tree/share/lua/$abi/?.lua;$tree/share/lua/$abi/?/init.lua'
      package.cpath = '$tree/lib/lua/$abi/?.so'
      $code" 2>&1)
}
# make_and_load LABEL INTERPRETER LUA_ABI PG(yes|no) [VAR=VALUE...]
make_and_load() {
  local label=$1 lua=$2 abi=$3 pg=$4; shift 4
  local tree=$tmp/tree-$label nobj
  if ! (cd "$tmp/src" && luarocks --lua-version="$abi" make --tree="$tree" "$spec" "$@") \
       >"$tmp/make-$label.log" 2>&1; then
    bad "luarocks make ($label): $(tail -n 20 "$tmp/make-$label.log")"; return
  fi
  nobj=$(ls "$tmp/src/build/rock/obj/"*.o | wc -l)
  [ "$nobj" -eq "$nsrc" ] || bad "luarocks make ($label) compiled $nobj objects for $nsrc csrc/*.c"
  # a port nothing listens on: libpq's connection error, or the build's lack of libpq
  if out=$(lua_in_tree "$tree" "$abi" "$lua" "
      local core = require 'junction.core'
      local junction = require 'junction'
      assert(junction.open(':memory:')):close()
      local db, msg = junction.open('postgresql://nobody@127.0.0.1:1/none')
      assert(db == nil and type(msg) == 'string', tostring(msg))
      local without = msg:find('junction was built without PostgreSQL (libpq)', 1, true) ~= nil
      io.write('version=', tostring(junction.version or core.version), ' on ',
               jit and jit.version or _VERSION, ', postgres=', without and 'no' or 'yes')"); then
    if grep -q "postgres=$pg\$" <<<"$out"; then
      ok "luarocks make ($label) + require from the installed tree: $out"
    else
      bad "luarocks make ($label): expected postgres=$pg, got: $out"
    fi
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
make_and_load 5.4 lua5.4 5.4 yes
make_and_load 5.3 lua5.3 5.3 yes
make_and_load 5.1 lua5.1 5.1 yes
make_and_load luajit luajit 5.1 yes LUA_INCDIR=/usr/include/luajit-2.1
make_and_load 5.4-without-pq lua5.4 5.4 no PQ_DIR=no

# 4. the module luarocks built talks to a real server -----------------------------
if why=$(bash .ci/pg.sh check); then
  if out=$(bash .ci/pg.sh run -- bash -c "$(declare -f lua_in_tree); lua_in_tree '$tmp/tree-5.4' 5.4 lua5.4 \"
      local junction = require 'junction'
      local db = assert(junction.open(os.getenv 'JUNCTION_TEST_PG'))
      local rows = assert(db:query('select 40 + 2 as n'))
      io.write(db:engine(), ' answered ', tostring(rows[1].n))\"" 2>&1) &&
     grep -q 'postgres answered 42' <<<"$out"; then
    ok "luarocks make (5.4): the installed module opens PostgreSQL: $(tail -n 1 <<<"$out")"
  else
    bad "luarocks make (5.4): the installed module did not query PostgreSQL: $out"
  fi
else
  echo "skip - no PostgreSQL server here ($why): the module reached libpq above"
fi

# an explicit PQ_INCDIR without libpq stops the build, saying what to do
mkdir -p "$tmp/empty"
if (cd "$tmp/src" && luarocks --lua-version=5.4 make --tree="$tmp/tree-bad" "$spec" \
      PQ_INCDIR="$tmp/empty") >"$tmp/make-bad.log" 2>&1; then
  bad "luarocks make PQ_INCDIR=<empty dir> built anyway"
elif grep -q 'junction: libpq not found where PQ_DIR/PQ_INCDIR/PQ_LIBDIR point' "$tmp/make-bad.log"; then
  ok "luarocks make PQ_INCDIR=<empty dir> stops with: libpq not found where PQ_DIR/PQ_INCDIR/PQ_LIBDIR point"
else
  bad "luarocks make PQ_INCDIR=<empty dir> failed without saying why: $(tail -n 5 "$tmp/make-bad.log")"
fi

# the checkout must not have gained build droppings
stray=$(cd "$root" && ls csrc/*.o csrc/*.so junction/core.so 2>/dev/null)
[ -z "$stray" ] || bad "stray build files in the checkout: $stray"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
