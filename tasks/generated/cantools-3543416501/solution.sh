#!/usr/bin/env bash
# Oracle repair, verified by `cligym validate`.
set -euo pipefail
rm -f /opt/venv/lib/python3.11/site-packages/00-overrides.pth && rm -rf /usr/local/lib/python3/site-overrides
