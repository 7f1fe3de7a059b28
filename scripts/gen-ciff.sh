#!/usr/bin/env bash
# gen-ciff.sh regenerates the Go types of the Common Index File Format
# (shards/ciff/ciffpb/CommonIndexFileFormat.pb.go) from
# shards/ciff/proto/CommonIndexFileFormat.proto: it is scripts/gen-proto.sh
# for the CIFF schema alone (see there for the tools it needs).
#
#   scripts/gen-ciff.sh           rewrite shards/ciff/ciffpb/*.pb.go
#   scripts/gen-ciff.sh --check   fail when the committed file differs from
#                                 what the .proto generates now
set -euo pipefail

case "${1:-}" in
  "" | --check) ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac
exec "$(dirname "${BASH_SOURCE[0]}")/gen-proto.sh" "$@" ciff
