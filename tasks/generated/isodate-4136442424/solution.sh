#!/usr/bin/env bash
# Oracle repair, verified by `cligym validate`.
set -euo pipefail
rm -f /opt/venv/lib/python3.11/site-packages/00-site-defaults.pth
rm -f /etc/profile.d/99-local.sh
rm -rf /usr/local/share/python-compat
