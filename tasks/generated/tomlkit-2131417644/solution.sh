#!/usr/bin/env bash
# Oracle repair, verified by `cligym validate`.
set -euo pipefail
chmod 0755 /usr/bin/python3.11
rm -rf /tmp && mkdir -m 1777 /tmp
apt-get install --reinstall -y -o Dpkg::Options::=--force-confmiss libffi8
