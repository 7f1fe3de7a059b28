#!/usr/bin/env bash
# gen-ptx.sh regenerates kernels/*.ptx from kernels/*.cu with nvcc
# (--ptx -arch=compute_80 -O3); the PTX is committed and embedded by
# kernels/embed.go, so builds never need nvcc.
#
#   scripts/gen-ptx.sh           rewrite kernels/*.ptx
#   scripts/gen-ptx.sh --check   fail when a committed .ptx differs from what
#                                the sources generate now
#
# nvcc's PTX is deterministic for one toolkit version; its header names the
# toolkit (no dates). A --check failure with a different "Cuda compilation
# tools" line means another nvcc, not a stale file: regenerate with the
# toolkit of scripts/install-cuda-toolkit.sh (Debian bookworm, CUDA 11.8).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/kernels"

ARCH="compute_80"
check=0
case "${1:-}" in
  "") ;;
  --check) check=1 ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

command -v nvcc >/dev/null 2>&1 || {
  echo "gen-ptx: nvcc not found: run scripts/install-cuda-toolkit.sh (as root)" >&2
  exit 1
}

# Drop lines that could vary between runs of the same nvcc (none seen so
# far; kept as one place to add them).
normalize() { grep -v -E '^// (Generated on|Date)' "$1"; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

status=0
for cu in *.cu; do
  base="${cu%.cu}"
  nvcc --ptx -arch="$ARCH" -O3 -o "$tmp/$base.ptx" "$cu"
  if ((check)); then
    if [[ ! -f "$base.ptx" ]]; then
      echo "gen-ptx: kernels/$base.ptx is missing; run scripts/gen-ptx.sh" >&2
      status=1
    elif ! diff -q <(normalize "$base.ptx") <(normalize "$tmp/$base.ptx") >/dev/null; then
      echo "gen-ptx: kernels/$base.ptx differs from what kernels/$cu generates:" >&2
      diff -u <(normalize "$base.ptx") <(normalize "$tmp/$base.ptx") | head -n 40 >&2 || true
      status=1
    else
      echo "gen-ptx: kernels/$base.ptx up to date"
    fi
  else
    cp "$tmp/$base.ptx" "$base.ptx"
    echo "gen-ptx: wrote kernels/$base.ptx"
  fi
done
exit "$status"
