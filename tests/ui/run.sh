#!/usr/bin/env bash
# Runs hoard's browser tests: Node's test runner drives Debian's Chromium through
# playwright-core against a hoard binary (HOARD_BIN, default target/debug/hoard).
# Installs Chromium (apt-get) and the npm packages when they are missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/../.." && pwd))"
export HOARD_BIN="${HOARD_BIN:-$root/target/debug/hoard}"

if [ ! -x "$HOARD_BIN" ]; then
  echo "hoard binary not found at $HOARD_BIN: build it with 'cargo build' or set HOARD_BIN" >&2
  exit 1
fi

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v mkfifo >/dev/null 2>&1 || need+=(coreutils)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "the browser tests need: ${need[*]} (install them, or run as root to let this script do it)" >&2
    exit 1
  fi
  echo "installing ${need[*]}..." >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

cd "$here"
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
else
  npm install --no-audit --no-fund --loglevel=error >/dev/null
fi

# One test file at a time: each starts its own hoard and browser, and the timing of
# backups under --io-limit-mib-s is steadier without another suite competing for 2 cores.
exec node --test --test-concurrency=1 --test-reporter=spec "$@" tests/*.test.mjs
