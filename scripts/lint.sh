#!/usr/bin/env bash
# Lint the deployment sources: cfn-lint and checkov over templates/, and shellcheck over
# every *.sh and over the scripts the server scripts write out (<<'SCRIPT' heredocs).
# (The parameter files are checked against templates/root.yaml by `cargo test`.)
# Exits non-zero on any error, warning or failed check. Tools: pinned in
# scripts/lint-requirements.txt, installed into .venv/lint; shellcheck from apt.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

readonly VENV=.venv/lint
readonly REQUIREMENTS=scripts/lint-requirements.txt

say() { printf '==> %s\n' "$*"; }

ensure_venv() {
  local stamp="$VENV/.requirements.sha256" wanted
  wanted=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    python3 -m venv "$VENV"
  fi
  if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
    say "installing $(tr '\n' ' ' <"$REQUIREMENTS")into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
    echo "$wanted" >"$stamp"
  fi
}

ensure_shellcheck() {
  command -v shellcheck >/dev/null 2>&1 && return 0
  local -a sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
  fi
  say "installing shellcheck"
  "${sudo[@]}" apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y shellcheck
}

ensure_venv
ensure_shellcheck

declare -a summary=()
failed=0
record() { # record NAME STATUS DETAIL
  if [ "$2" -eq 0 ]; then
    summary+=("$(printf '  %-11s ok      %s' "$1" "$3")")
  else
    summary+=("$(printf '  %-11s FAILED  %s' "$1" "$3")")
    failed=1
  fi
}

templates=(templates/*.yaml)

say "cfn-lint ${templates[*]}"
status=0
"$VENV/bin/cfn-lint" --format parseable -- "${templates[@]}" || status=$?
record cfn-lint "$status" "${#templates[@]} templates, no errors or warnings allowed"

say "checkov (cloudformation) templates/"
status=0
checkov_out=$("$VENV/bin/checkov" --directory templates --framework cloudformation \
  --compact --quiet --skip-download 2>&1) || status=$?
printf '%s\n' "$checkov_out"
counts=$(grep -Eo 'Passed checks: [0-9]+, Failed checks: [0-9]+, Skipped checks: [0-9]+' <<<"$checkov_out" || true)
if [ -z "$counts" ]; then
  status=1
  counts="no scan results"
fi
record checkov "$status" "$counts"


mapfile -d '' scripts < <(find . \( -path ./.venv -o -path ./target -o -path ./.git \) -prune -o \
  -type f -name '*.sh' -print0 | sort -z)
say "shellcheck -S warning (${#scripts[@]} scripts)"
status=0
shellcheck --severity=warning -- "${scripts[@]}" || status=$?
record shellcheck "$status" "${#scripts[@]} scripts at severity warning and above"

# Scripts that a bootstrap script writes out verbatim (heredoc <<'SCRIPT' ... SCRIPT)
# are checked too: they run on the servers just like their parent.
embedded_dir=$(mktemp -d)
trap 'rm -rf "$embedded_dir"' EXIT
embedded=()
for parent in templates/scripts/*.sh; do
  [ -e "$parent" ] || continue
  out="$embedded_dir/$(basename "$parent" .sh)-embedded"
  awk -v out="$out" '
    /<<'"'"'SCRIPT'"'"'$/ { n++; file = out "-" n ".sh"; writing = 1; next }
    writing && /^SCRIPT$/ { writing = 0; close(file); next }
    writing { print > file }
  ' "$parent"
done
mapfile -t embedded < <(find "$embedded_dir" -type f -name '*.sh' | sort)
if [ "${#embedded[@]}" -gt 0 ]; then
  say "shellcheck -S warning (${#embedded[@]} scripts embedded in templates/scripts)"
  status=0
  shellcheck --severity=warning -- "${embedded[@]}" || status=$?
  record embedded "$status" "${#embedded[@]} embedded scripts at severity warning and above"
fi

echo
echo "lint summary:"
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
  echo "lint: FAILED"
  exit 1
fi
echo "lint: all clean"
