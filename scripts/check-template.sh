#!/usr/bin/env bash
# Template checks for CI (.ci/run -> make test), all offline once the tools are installed:
#   1. cfn-lint (the application's venv);
#   2. sam validate --lint, with the SAM CLI in its own venv .venv-sam (it pins boto3, cfn-lint, click
#      ...: never in the application's venv);
#   3. checkov (policy scanner) in its own venv .venv-checkov: every finding fails the build unless the
#      template skips it on the resource, with the reason (Metadata: checkov: skip: [{id, comment}]).
# Missing tool venvs are created and installed here (pinned; override with SAM_CLI_VERSION /
# CHECKOV_VERSION), so a clean clone runs all three. Both venvs are gitignored.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
SAM_CLI_VERSION="${SAM_CLI_VERSION:-1.170.0}"
CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"
export SAM_CLI_TELEMETRY=0

# tool_venv DIR PACKAGE VERSION: create DIR and install PACKAGE==VERSION unless already done
tool_venv() {
  local dir="$1" package="$2" version="$3"
  local marker="$dir/.installed-$package-$version"
  if [ ! -f "$marker" ]; then
    echo "installing $package==$version into $dir"
    [ -x "$dir/bin/python" ] || "$PYTHON" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check "$package==$version"
    touch "$marker"
  fi
}

VENV_BIN="${VENV_BIN:-.venv/bin}"
CFN_LINT="${VENV_BIN}/cfn-lint"
command -v "$CFN_LINT" >/dev/null 2>&1 || CFN_LINT="cfn-lint"
echo "== cfn-lint template.yaml"
"$CFN_LINT" template.yaml

echo "== sam validate --lint (offline)"
tool_venv .venv-sam aws-sam-cli "$SAM_CLI_VERSION"
# offline: SAM needs a region (AWS_DEFAULT_REGION; AWS_REGION is not read) and credentials, dummy ones
# will do, or it probes the instance metadata address first
AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" \
  AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}" \
  .venv-sam/bin/sam validate --lint --template-file template.yaml

echo "== checkov (fails on any finding the template does not skip with a reason)"
tool_venv .venv-checkov checkov "$CHECKOV_VERSION"
# --skip-download: no call to the vendor's API (guidelines, severities); the checks are all local
.venv-checkov/bin/checkov --file template.yaml --framework cloudformation --skip-download --compact --quiet
