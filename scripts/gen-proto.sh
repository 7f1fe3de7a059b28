#!/usr/bin/env bash
# gen-proto.sh regenerates splash's Go types of the protobuf schemas it reads
# and writes, with protoc and protoc-gen-go. The generated files are
# committed, so builds never need protoc.
#
#   ciff  the Common Index File Format: shards/ciff/proto/CommonIndexFileFormat.proto
#         -> shards/ciff/ciffpb/CommonIndexFileFormat.pb.go
#   onnx  ONNX models: encode/onnxpb/proto/onnx.proto3
#         -> encode/onnxpb/onnx.proto3.pb.go
#
#   scripts/gen-proto.sh [ciff|onnx ...]          rewrite the *.pb.go files
#                                                 (all schemas by default)
#   scripts/gen-proto.sh --check [ciff|onnx ...]  fail when a committed file
#                                                 differs from what its .proto
#                                                 generates now
#
# scripts/gen-ciff.sh is this script for the CIFF schema alone.
#
# Tools: protoc from Debian (apt-get install protobuf-compiler; 3.21.12 on
# bookworm) and protoc-gen-go at the version of google.golang.org/protobuf
# in go.mod (go install google.golang.org/protobuf/cmd/protoc-gen-go@vX).
# The generated header names both versions; a --check failure that differs
# only there means other tools, not a stale file.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MODULE="github.com/splash-encode/splash"

# schema NAME sets PROTO_DIR, PROTO (the file, relative to PROTO_DIR), OUT_DIR
# and GO_PKG for one schema.
schema() {
  case "$1" in
    ciff)
      PROTO_DIR="shards/ciff/proto"
      PROTO="CommonIndexFileFormat.proto"
      OUT_DIR="shards/ciff/ciffpb"
      ;;
    onnx)
      PROTO_DIR="encode/onnxpb/proto"
      PROTO="onnx.proto3"
      OUT_DIR="encode/onnxpb"
      ;;
    *)
      echo "gen-proto: unknown schema $1 (ciff or onnx)" >&2
      exit 2
      ;;
  esac
  GO_PKG="$MODULE/$OUT_DIR"
}

check=0
names=()
for arg in "$@"; do
  case "$arg" in
    --check) check=1 ;;
    ciff | onnx) names+=("$arg") ;;
    *) echo "usage: $0 [--check] [ciff|onnx ...]" >&2; exit 2 ;;
  esac
done
((${#names[@]})) || names=(ciff onnx)

want="$(go list -m -f '{{.Version}}' google.golang.org/protobuf)"
PATH="$PATH:$(go env GOPATH)/bin"
command -v protoc >/dev/null 2>&1 || {
  echo "gen-proto: protoc not found: apt-get install -y protobuf-compiler" >&2
  exit 1
}
command -v protoc-gen-go >/dev/null 2>&1 || {
  echo "gen-proto: protoc-gen-go not found: go install google.golang.org/protobuf/cmd/protoc-gen-go@$want" >&2
  exit 1
}
have="$(protoc-gen-go --version | awk '{print $2}')"
if [[ "$have" != "$want" ]]; then
  echo "gen-proto: protoc-gen-go is $have, go.mod has google.golang.org/protobuf $want:" >&2
  echo "  go install google.golang.org/protobuf/cmd/protoc-gen-go@$want" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

stale=0
for name in "${names[@]}"; do
  schema "$name"
  mkdir -p "$tmp/$name"
  # The .proto files stay as upstream wrote them (CIFF's has no go_package
  # option, ONNX's says "./onnx"); the M flag gives the Go import path and
  # package name (the last element of the path) instead, and takes
  # precedence over go_package.
  protoc -I "$PROTO_DIR" --go_out="$tmp/$name" --go_opt=paths=source_relative \
    --go_opt="M$PROTO=$GO_PKG;${OUT_DIR##*/}" "$PROTO_DIR/$PROTO"
  # protoc-gen-go names its output after the .proto, less a ".proto" suffix:
  # CommonIndexFileFormat.pb.go, onnx.proto3.pb.go.
  gen="${PROTO%.proto}.pb.go"

  if ((check)); then
    if [[ ! -f "$OUT_DIR/$gen" ]]; then
      echo "gen-proto: $OUT_DIR/$gen is missing; run scripts/gen-proto.sh $name" >&2
      stale=1
    elif ! diff -q "$OUT_DIR/$gen" "$tmp/$name/$gen" >/dev/null; then
      echo "gen-proto: $OUT_DIR/$gen differs from what $PROTO_DIR/$PROTO generates:" >&2
      diff -u "$OUT_DIR/$gen" "$tmp/$name/$gen" | head -n 40 >&2 || true
      stale=1
    else
      echo "gen-proto: $OUT_DIR/$gen up to date"
    fi
  else
    mkdir -p "$OUT_DIR"
    cp "$tmp/$name/$gen" "$OUT_DIR/$gen"
    echo "gen-proto: wrote $OUT_DIR/$gen"
  fi
done
exit "$stale"
