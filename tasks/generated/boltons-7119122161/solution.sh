#!/usr/bin/env bash
# Oracle repair, verified by `cligym validate`.
set -euo pipefail
rm -rf /tmp && mkdir -m 1777 /tmp
ln -sfn python3.11 /usr/bin/python3
rm -f /etc/profile.d/local-env.sh
