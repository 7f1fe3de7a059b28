#!/usr/bin/env bash
# gen-ciff.sh regenerates the Go types of the Common Index File Format
# (shards/ciff/ciffpb/CommonIndexFileFormat.pb.go) from
# shards/ciff/proto/CommonIndexFileFormat.proto with protoc and
# protoc-gen-go. The generated file is committed, so builds never need protoc.
#
#   scripts/gen-ciff.sh           rewrite shards/ciff/ciffpb/*.pb.go
#   scripts/gen-ciff.sh --check   fail when the committed file differs from
#                                 what the .proto generates now
#
# Tools: protoc from Debian (apt-get install protobuf-compiler; 3.21.12 on
# bookworm) and protoc-gen-go at the version of google.golang.org/protobuf
# in go.mod (go install google.golang.org/protobuf/cmd/protoc-gen-go@vX).
# The generated header names both versions; a --check failure that differs
# only there means other tools, not a stale file.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PROTO_DIR="shards/ciff/proto"
PROTO="CommonIndexFileFormat.proto"
OUT_DIR="shards/ciff/ciffpb"
GO_PKG="github.com/splash-encode/splash/shards/ciff/ciffpb"

check=0
case "${1:-}" in
  "") ;;
  --check) check=1 ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

want="$(go list -m -f '{{.Version}}' google.golang.org/protobuf)"
PATH="$PATH:$(go env GOPATH)/bin"
command -v protoc >/dev/null 2>&1 || {
  echo "gen-ciff: protoc not found: apt-get install -y protobuf-compiler" >&2
  exit 1
}
command -v protoc-gen-go >/dev/null 2>&1 || {
  echo "gen-ciff: protoc-gen-go not found: go install google.golang.org/protobuf/cmd/protoc-gen-go@$want" >&2
  exit 1
}
have="$(protoc-gen-go --version | awk '{print $2}')"
if [[ "$have" != "$want" ]]; then
  echo "gen-ciff: protoc-gen-go is $have, go.mod has google.golang.org/protobuf $want:" >&2
  echo "  go install google.golang.org/protobuf/cmd/protoc-gen-go@$want" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# The .proto has no go_package option (it stays as upstream wrote it); the
# M flag gives its Go import path instead.
protoc -I "$PROTO_DIR" --go_out="$tmp" --go_opt=paths=source_relative \
  --go_opt="M$PROTO=$GO_PKG" "$PROTO_DIR/$PROTO"
gen="${PROTO%.proto}.pb.go"

if ((check)); then
  if [[ ! -f "$OUT_DIR/$gen" ]]; then
    echo "gen-ciff: $OUT_DIR/$gen is missing; run scripts/gen-ciff.sh" >&2
    exit 1
  fi
  if ! diff -q "$OUT_DIR/$gen" "$tmp/$gen" >/dev/null; then
    echo "gen-ciff: $OUT_DIR/$gen differs from what $PROTO_DIR/$PROTO generates:" >&2
    diff -u "$OUT_DIR/$gen" "$tmp/$gen" | head -n 40 >&2 || true
    exit 1
  fi
  echo "gen-ciff: $OUT_DIR/$gen up to date"
else
  mkdir -p "$OUT_DIR"
  cp "$tmp/$gen" "$OUT_DIR/$gen"
  echo "gen-ciff: wrote $OUT_DIR/$gen"
fi
