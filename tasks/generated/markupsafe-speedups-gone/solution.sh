#!/usr/bin/env bash
# Oracle repair, verified by `cligym validate`.
set -euo pipefail
pip install --force-reinstall --no-deps markupsafe
