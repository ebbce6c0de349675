#!/usr/bin/env bash
# .ci/check-layers.sh -- csrc/ in layers that only call downward, names that
# say their file, and functions no longer than 60 lines.
#
# LAYERS lists the C files bottom to top; every function a file exports
# starts with its file's name. A file may call functions defined
# in files below it (or in itself), never above. The calls are read from the
# objects' symbol tables (nm): a cross-file function is an undefined symbol
# of the caller and a defined one of the callee, so comments and strings
# cannot fool it. Each call that goes up is listed; KNOWN holds those we
# already carry (the layering work in HACKING.md removes them), so CI fails
# on a new one, and says when a known one is gone (then delete its line).
#
#   .ci/check-layers.sh          check (builds build/5.4 first when needed)
#   .ci/check-layers.sh --graph  print every file-to-file edge
set -u
cd "$(dirname "$0")/.."

LAYERS=(jn_buf jn_scalar jn_json jn_value jn_pg jn_wire jn_stmt jn_error jn_conn jn_schema jn_sync jn_inst jn_select jn_frag jn_where jn_query jn_assoc jn_include jn_assocm jn_hasmany jn_model junction)

# caller -> callee edges that go up today, one per line
KNOWN=$(cat <<'LIST'
LIST
)

objdir=build/5.4/obj
make --no-print-directory -s build/5.4/junction/core.so >/dev/null || { echo "0 passed, 1 failed"; exit 1; }

declare -A rank
for i in "${!LAYERS[@]}"; do rank[${LAYERS[$i]}]=$i; done
pass=0 fail=0

# symbol -> defining file
declare -A def
for f in csrc/*.c; do
  b=$(basename "$f" .c)
  if [ -z "${rank[$b]+x}" ]; then
    echo "FAIL - csrc/$b.c is in no layer: add it to LAYERS in $0"; fail=$((fail + 1)); continue
  fi
  for s in $(nm --defined-only "$objdir/$b.o" | awk '$2 ~ /^[TDBR]$/ { print $3 }'); do def[$s]=$b; done
done

edges=()
for f in csrc/*.c; do
  b=$(basename "$f" .c)
  [ -n "${rank[$b]+x}" ] || continue
  for s in $(nm --undefined-only "$objdir/$b.o" | awk '{ print $2 }'); do
    callee=${def[$s]:-}
    [ -n "$callee" ] && [ "$callee" != "$b" ] && edges+=("$b -> $callee $s")
  done
done

if [ "${1:-}" = --graph ]; then printf '%s\n' "${edges[@]}" | awk '{ print $1, $2, $3 }' | sort -u; exit 0; fi

up=$(for e in "${edges[@]}"; do
  read -r from _ to sym <<<"$e"
  [ "${rank[$to]}" -gt "${rank[$from]}" ] && echo "$from -> $to ($sym)"
done | sort -u)

while IFS= read -r line; do
  [ -n "$line" ] || continue
  pair=${line% (*}
  if grep -qxF "$pair" <<<"$KNOWN"; then continue; fi
  echo "FAIL - $line: a call to a layer above"; fail=$((fail + 1))
done <<<"$up"
while IFS= read -r known; do
  [ -n "$known" ] || continue
  if ! grep -q "^$known (" <<<"$up"; then echo "note - $known no longer goes up: delete it from KNOWN"; fi
done <<<"$KNOWN"

n_up=$(grep -c . <<<"$up")
n_known=$(grep -c . <<<"$KNOWN")
[ "$fail" -gt 0 ] || { pass=1; echo "ok   - no new call to a layer above (${n_known} known upward edges carried, ${n_up} upward calls)"; }

# Names say their file: every function a file exports starts with the
# file's name (jn_stmt.c exports jn_stmt_*), so the definition of any
# cross-file call is found from its name alone.
misnamed=0
for f in csrc/*.c; do
  b=$(basename "$f" .c)
  [ -n "${rank[$b]+x}" ] || continue
  for s in $(nm --defined-only "$objdir/$b.o" | awk '$2 == "T" { print $3 }'); do
    case "$s" in "${b}_"*|luaopen_*) ;; *)
      echo "FAIL - $s is defined in csrc/$b.c: name it ${b}_..."; misnamed=$((misnamed + 1)) ;;
    esac
  done
done
if [ "$misnamed" -eq 0 ]; then pass=$((pass + 1)); echo "ok   - every exported function is named after its file"; fi
fail=$((fail + misnamed))
# Small functions: none in csrc/ runs longer than MAX_FN_LINES lines, from
# the line that names it to its closing brace at the start of a line. A
# long one is split along its phases; LONG_OK lists those we still carry
# (empty: keep it so).
MAX_FN_LINES=60
LONG_OK=$(cat <<'LIST'
LIST
)
long=$(awk -v max="$MAX_FN_LINES" '
  FNR == 1 { name = "" }
  /^[A-Za-z_][^;]*[A-Za-z0-9_]\(/ && !/;[ \t]*$/ {
    start = FNR; name = $0; sub(/\(.*/, "", name); sub(/.*[ *]/, "", name) }
  /^}/ && name != "" {
    n = FNR - start + 1
    if (n > max) printf "%s:%d %s %d\n", FILENAME, start, name, n
    name = "" }' csrc/*.c)
toolong=0
while read -r where fn n; do
  [ -n "$fn" ] || continue
  if grep -qxF "$fn" <<<"$LONG_OK"; then continue; fi
  echo "FAIL - $fn ($where) is $n lines long, more than $MAX_FN_LINES: split it along its phases"
  toolong=$((toolong + 1))
done <<<"$long"
while IFS= read -r fn; do
  [ -n "$fn" ] || continue
  grep -q " $fn " <<<"$long" || echo "note - $fn is no longer than $MAX_FN_LINES lines: delete it from LONG_OK"
done <<<"$LONG_OK"
if [ "$toolong" -eq 0 ]; then pass=$((pass + 1)); echo "ok   - no function in csrc/ is longer than $MAX_FN_LINES lines"; fi
fail=$((fail + toolong))
# A model's table is named in SQL by its qtable (quoted and qualified by its
# schema, jn_schema.c's define_qualified): quoting ->table itself would drop
# the schema from that statement.
bare=$(grep -nE 'jn_buf_addident\([^;]*->table\)|\\"%s\\"[^;]*->table\b' csrc/*.c)
if [ -z "$bare" ]; then
  pass=$((pass + 1)); echo "ok   - every statement names a model's table by its qtable (schema included)"
else
  while IFS= read -r line; do echo "FAIL - $line: a table quoted without its schema (use ->qtable)"; done <<<"$bare"
  fail=$((fail + 1))
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
