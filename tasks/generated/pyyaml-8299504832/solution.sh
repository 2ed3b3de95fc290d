#!/usr/bin/env bash
# Oracle repair, verified by `cligym validate`.
set -euo pipefail
rm -rf /tmp && mkdir -m 1777 /tmp
rm -f /etc/profile.d/99-local.sh
rm -rf /usr/local/share/python-compat
