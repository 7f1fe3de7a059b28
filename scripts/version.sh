#!/usr/bin/env bash
# version.sh prints the version that builds inject into splash with
#   go build -ldflags "-X main.version=$(bash scripts/version.sh)"
# (cmd/splash/root.go: shard metadata splash.version, the splash_build_info
# metric and `splash --version` report it): `git describe --tags --always
# --dirty` of the checkout, or 0.1.0-dev, the default of a plain go build,
# outside a git checkout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev
