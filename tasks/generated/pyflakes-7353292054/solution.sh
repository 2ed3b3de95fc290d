#!/usr/bin/env bash
# Oracle repair, verified by `cligym validate`.
set -euo pipefail
rm -f /etc/ld.so.preload
apt-get install --reinstall -y -o Dpkg::Options::=--force-confmiss libpython3.11-stdlib
