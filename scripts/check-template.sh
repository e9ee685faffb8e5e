#!/usr/bin/env bash
# Template checks for CI (.ci/run -> make test): cfn-lint always; `sam validate --lint` when the SAM CLI
# venv exists (SAM pins its own boto3/cfn-lint, so it lives in .venv-sam, apart from the app's venv).
# Offline: SAM needs a region and (dummy) credentials or it probes the instance metadata address.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV_BIN="${VENV_BIN:-.venv/bin}"
CFN_LINT="${VENV_BIN}/cfn-lint"
command -v "$CFN_LINT" >/dev/null 2>&1 || CFN_LINT="cfn-lint"

echo "cfn-lint template.yaml"
"$CFN_LINT" template.yaml

SAM="${SAM_BIN:-.venv-sam/bin/sam}"
if [ -x "$SAM" ]; then
  echo "sam validate --lint (offline)"
  SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" \
    AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}" \
    "$SAM" validate --lint --template-file template.yaml
else
  echo "sam validate skipped: no SAM CLI at $SAM (python3 -m venv .venv-sam && .venv-sam/bin/pip install aws-sam-cli)"
fi
