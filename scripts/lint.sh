#!/usr/bin/env bash
# Lint the deployment sources: cfn-lint over templates/ as written and over the nested
# templates with the values each preset deploys (scripts/lint_deployed.py), checkov over
# templates/, and shellcheck over every *.sh (the server scripts with -o all) and over
# the scripts the server scripts write out (<<'SCRIPT' heredocs).
# (The parameter files are checked against templates/root.yaml by `cargo test`.)
# pyflakes over the Python files (the registrar's Lambda code, test fakes).
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
  command -v shellcheck >/dev/null 2>&1 || bash scripts/debian-packages.sh shellcheck
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

# What is deployed: each nested template with the values the root stack really passes
# for each preset and mode (scripts/lint_deployed.py), so that a value fed through a
# parameter (an engine version, an instance type, an invalid combination) is checked too.
deployed_dir=$(mktemp -d)
cleanup_dirs=("$deployed_dir")
trap 'rm -rf "${cleanup_dirs[@]}"' EXIT
cases=(
  "scalable params/scalable.json"
  "scalable-ec2 params/scalable.json BBBECSInstanceType=t3.large"
  "image-cache params/scalable.json BBBDockerHubCredentialsArn=arn:aws:secretsmanager:eu-central-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf"
  "single params/single.json"
  "param-file bbb-on-aws-param.json"
  "defaults -"
)
say "cfn-lint with deployed values (${#cases[@]} cases: ${cases[*]%% *})"
status=0
deployed=()
for case_args in "${cases[@]}"; do
  read -ra args <<<"$case_args"
  out=$("$VENV/bin/python" scripts/lint_deployed.py "$deployed_dir" "${args[@]}") || status=1
  mapfile -t -O "${#deployed[@]}" deployed <<<"$out"
done
"$VENV/bin/cfn-lint" --format parseable -- "${deployed[@]}" || status=$?
record deployed "$status" "${#deployed[@]} nested templates with the values of ${#cases[@]} presets/modes"

# The check above must be able to fail: Aurora PostgreSQL 16.4, the old default, can no
# longer create clusters (cfn-lint W3690) and must be refused when passed as a value.
canary_dir=$(mktemp -d)
cleanup_dirs+=("$canary_dir")
say "cfn-lint with deployed values refuses BBBDBEngineVersion=16.4"
status=0
mapfile -t canary < <("$VENV/bin/python" scripts/lint_deployed.py "$canary_dir" canary \
  params/scalable.json BBBDBEngineVersion=16.4)
canary_out=$("$VENV/bin/cfn-lint" --format parseable -- "${canary[@]}" || true)
grep -q "W3690:Engine version '16.4'" <<<"$canary_out" || status=1
record canary "$status" "a deprecated engine version passed through the root stack is caught (W3690)"

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

# Every skip must name a check checkov runs on that resource: checkov counts only those as
# skipped, and says nothing of a skip for a check it never runs (a Terraform-only id, a
# check of another resource type). (Whether each skipped check would fail without its
# skip: run checkov on a copy of templates/ with the checkov: metadata renamed.)
say "checkov skips name checks that run"
status=0
declared=$(grep -Ec '^[[:space:]]*- id: CKV' "${templates[@]}" | awk -F: '{ n += $NF } END { print n + 0 }')
skipped=$(grep -Eo 'Skipped checks: [0-9]+' <<<"$checkov_out" | grep -Eo '[0-9]+' || echo 0)
[ "$declared" -eq "$skipped" ] || status=1
record skips "$status" "$declared skips declared, $skipped applied"


# The registrar's Lambda code, the test fakes and these scripts: Python that compiles and that pyflakes
# finds nothing in (unused or undefined names, shadowed imports).
mapfile -t python_files < <(find templates/scripts tests/fixtures scripts -name '*.py' | sort)
say "pyflakes (${#python_files[@]} Python files)"
status=0
"$VENV/bin/python" -m py_compile "${python_files[@]}" && "$VENV/bin/pyflakes" "${python_files[@]}" || status=$?
record pyflakes "$status" "${#python_files[@]} Python files"

mapfile -d '' scripts < <(find . \( -path ./.venv -o -path ./target -o -path ./.git \) -prune -o \
  -type f -name '*.sh' -print0 | sort -z)
say "shellcheck -S warning (${#scripts[@]} scripts)"
status=0
shellcheck --severity=warning -- "${scripts[@]}" || status=$?
record shellcheck "$status" "${#scripts[@]} scripts at severity warning and above"

# The scripts that run on the servers: every optional check too (a check that does not
# apply is skipped in the script, with its reason).
server_scripts=(templates/scripts/*.sh)
say "shellcheck -o all (${#server_scripts[@]} server scripts)"
status=0
shellcheck --enable=all -- "${server_scripts[@]}" || status=$?
record servers "$status" "${#server_scripts[@]} server scripts with every optional check"

# Scripts that a bootstrap script writes out verbatim (heredoc <<'SCRIPT' ... SCRIPT)
# are checked too: they run on the servers just like their parent.
embedded_dir=$(mktemp -d)
cleanup_dirs+=("$embedded_dir")
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
