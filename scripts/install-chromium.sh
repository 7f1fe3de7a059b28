#!/usr/bin/env bash
# install-chromium.sh installs Debian's chromium (with fonts-liberation, the
# fonts that the report's SVG plots name) so that the headless-browser test
# of `splash report` (shards/report, TestReportInChromium)
# runs instead of skipping. Measured on a Debian 12 machine of this project
# (chromium 156 with its recommended packages): 155 MB to download, 480 MB
# installed, 22 s including apt-get update; without recommends it is less.
# Idempotent: it does nothing when chromium is already on PATH. Needs root.
set -euo pipefail

log() { printf 'install-chromium: %s\n' "$*" >&2; }

if command -v chromium >/dev/null 2>&1; then
  log "chromium already installed: $(chromium --version 2>/dev/null | head -n 1)"
  exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
  log "must run as root (apt-get install)"
  exit 1
fi

log "apt-get update"
apt-get update -q
log "installing chromium and fonts-liberation (at most about 155 MB)"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-liberation
log "installed: $(chromium --version 2>/dev/null | head -n 1)"
