#!/usr/bin/env bash
# Oracle repair, verified by `cligym validate`.
set -euo pipefail
pip install text-unidecode
