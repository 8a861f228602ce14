#!/usr/bin/env bash
# Installs the Debian packages named as arguments that are not installed yet (with sudo
# when not root). Used by scripts/lint.sh (shellcheck) and by the tests that run our
# scripts against real programs (tests/database_setup.rs: postgresql, ruby-pg). Quiet
# when everything is there; one apt-get update per call otherwise.
set -euo pipefail

missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q 'install ok installed' || missing+=("${pkg}")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi
echo "installing ${missing[*]} (Debian packages)" >&2
"${sudo[@]}" apt-get update -qq >&2
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
