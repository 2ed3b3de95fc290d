#!/usr/bin/env bash
# Oracle repair, verified by `cligym validate`.
set -euo pipefail
chmod 0755 /usr/bin/python3.11
pip install --force-reinstall --no-deps markupsafe==3.0.4
