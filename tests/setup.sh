#!/usr/bin/env bash
# Installs the system tools the tests use, when they are missing (CI starts from a fresh
# machine). Safe to run again: it installs nothing that is already there.
#
# Sourced, it only defines `install_missing`, which `bench/run.sh` uses for its own tools.
set -euo pipefail

# install_missing WHAT TOOL[:PACKAGE]...: installs the Debian package of every tool (a
# command, or an absolute path) that is not there; PACKAGE defaults to the tool's name.
install_missing() {
  local what=$1 need=() spec tool
  shift
  for spec in "$@"; do
    tool=${spec%%:*}
    if [[ $tool == /* ]]; then [ -x "$tool" ] && continue; else command -v "$tool" >/dev/null 2>&1 && continue; fi
    need+=("${spec#*:}")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "$what need: ${need[*]} (install them, or run as root to let this script do it)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  install_missing "tests" zstd tar sha256sum:coreutils curl fincore:util-linux
fi
