#!/usr/bin/env bash
# Oracle repair, verified by `cligym validate`.
set -euo pipefail
chmod 755 /usr/bin/python3.11
