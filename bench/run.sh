#!/usr/bin/env bash
# `make bench`: installs the baseline tools when missing, then runs bench/bench.py against
# the release build. Results go to bench/results/latest.md and latest.json.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in zstd pigz wrk curl tar python3; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "the benchmark needs: ${need[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

exec python3 bench/bench.py "$@"
