#!/usr/bin/env bash
# install-cuda-toolkit.sh installs Debian's nvidia-cuda-toolkit (nvcc and the
# CUDA headers) so that scripts/gen-ptx.sh (and the PTX drift check of
# scripts/cuda-check.sh) works on a machine without a GPU; building splash
# needs none of it. It enables the contrib
# and non-free components of the Debian archive already configured (deb822
# *.sources files or one-line sources.list entries), then installs the
# package (about 1.6 GB to download). Idempotent: it does nothing when nvcc is
# already on PATH. Needs root.
set -euo pipefail

log() { printf 'install-cuda-toolkit: %s\n' "$*" >&2; }

if command -v nvcc >/dev/null 2>&1; then
  log "nvcc already installed: $(nvcc --version | tail -n 1)"
  exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
  log "must run as root (apt-get install)"
  exit 1
fi

# add_components_deb822 FILE: add contrib and non-free to every Components:
# line of a deb822 sources file that points at a Debian archive.
add_components_deb822() {
  local f="$1"
  grep -qE '^URIs:.*debian' "$f" || return 0
  local c
  for c in contrib non-free; do
    # Append the component to each Components: line that lacks it.
    sed -i -E "/^Components:/ { / ${c}( |\$)/! s/\$/ ${c}/ }" "$f"
  done
}

# add_components_list FILE: the same for one-line "deb URI suite comps" files.
add_components_list() {
  local f="$1"
  local c
  for c in contrib non-free; do
    sed -i -E "/^deb(-src)? .*debian.* main/ { / ${c}( |\$)/! s/\$/ ${c}/ }" "$f"
  done
}

shopt -s nullglob
for f in /etc/apt/sources.list.d/*.sources; do
  add_components_deb822 "$f"
done
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [[ -f "$f" ]] && add_components_list "$f"
done

log "apt-get update"
apt-get update -q
log "installing nvidia-cuda-toolkit (about 1.6 GB)"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nvidia-cuda-toolkit
log "installed: $(nvcc --version | tail -n 1)"
