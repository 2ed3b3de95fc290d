#!/usr/bin/env bash
# Install what cligym needs on a fresh Debian/Ubuntu machine with Docker Engine running:
# debootstrap (to make the base image without a registry), a static busybox (the scoring harness's own tools,
# mounted read-only into every container) and the cligym package with its test tools.
# Usage: bash scripts/install.sh [EXTRAS]   (EXTRAS default "dev"; e.g. "dev,llm" or "dev,llm,train")
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev}"
missing=""
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing="$missing debootstrap"
dpkg -s busybox-static >/dev/null 2>&1 || [ -n "${CLIGYM_BUSYBOX:-}" ] || missing="$missing busybox-static"
if [ -n "$missing" ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq $missing >/dev/null
fi
docker info >/dev/null 2>&1 || { echo "error: the Docker daemon is not reachable (is it running?)" >&2; exit 1; }
python3 -m pip install --disable-pip-version-check -q -e ".[${extras}]"
echo "cligym installed: $(command -v cligym)"
