#!/usr/bin/env bash
# Oracle repair, verified by `cligym validate`.
set -euo pipefail
ln -sfn python3.11 /usr/bin/python3
apt-get install --reinstall -y -o Dpkg::Options::=--force-confmiss libuuid1
