#!/usr/bin/env bash
# Oracle repair, verified by `cligym validate`.
set -euo pipefail
apt-get install --reinstall -y less
