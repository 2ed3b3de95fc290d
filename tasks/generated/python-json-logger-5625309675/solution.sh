#!/usr/bin/env bash
# Oracle repair, verified by `cligym validate`.
set -euo pipefail
pip install python-dateutil==4.0.0
pip install --force-reinstall --no-deps python-json-logger==4.2.0
