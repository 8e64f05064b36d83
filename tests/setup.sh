#!/usr/bin/env bash
# Installs the system tools the tests use, when they are missing (CI starts from a fresh
# machine). Safe to run again: it installs nothing that is already there.
set -euo pipefail

need=()
command -v zstd >/dev/null 2>&1 || need+=(zstd)
command -v tar >/dev/null 2>&1 || need+=(tar)
command -v sha256sum >/dev/null 2>&1 || need+=(coreutils)
command -v curl >/dev/null 2>&1 || need+=(curl)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tests need: ${need[*]} (install them, or run as root to let this script do it)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
