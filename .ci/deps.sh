#!/usr/bin/env bash
# .ci/deps.sh -- install the Debian packages listed in .ci/packages that are
# missing; silent and fast (one dpkg-query) when everything is there.
# `make deps` calls it, and .ci/run calls it before make exists.
# Uses sudo only when not root. Exit status non-zero if apt-get fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mapfile -t pkgs < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$here/packages")

# dpkg-query prints "install ok installed" only for packages really present
# (a removed package whose config files remain is "deinstall ok config-files").
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${pkgs[@]}" 2>/dev/null |
            awk '$NF == "installed" && $2 == "install" { print $1 }' || true)
missing=()
for p in "${pkgs[@]}"; do
  grep -qxF "$p" <<<"$installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# the whole list in one apt-get line (RUNTIMES.md: avoids luajit/luajit2 churn)
log=$(mktemp)
if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
     "${pkgs[@]}" >"$log" 2>&1; then
  tail -n 40 "$log"; rm -f "$log"
  echo "deps: apt-get install failed" >&2
  exit 1
fi
rm -f "$log"
echo "deps: done"
