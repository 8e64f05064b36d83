#!/usr/bin/env bash
# `make bench`: installs the baseline tools when missing, then runs bench/bench.py against
# the release build. Results go to bench/results/latest.md and latest.json.
set -euo pipefail
cd "$(dirname "$0")/.."

source tests/setup.sh
install_missing "the benchmark" zstd pigz wrk curl tar python3 /usr/bin/time:time

exec python3 bench/bench.py "$@"
