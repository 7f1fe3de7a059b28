package onnxpb_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/splash-encode/splash/encode/onnxpb"
)

// TestGeneratedCurrent runs scripts/gen-proto.sh --check onnx: the committed
// onnx.proto3.pb.go must be what proto/onnx.proto3 generates. It skips
// unless protoc 3.21.12 and protoc-gen-go at go.mod's version of
// google.golang.org/protobuf are installed (the versions in the generated
// header; see proto/README.md).
func TestGeneratedCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping in -short mode")
	}
	for _, tool := range []string{"go", "bash", "protoc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s is not on PATH", tool)
		}
	}
	if out, err := exec.Command("protoc", "--version").Output(); err != nil || strings.TrimSpace(string(out)) != "libprotoc 3.21.12" {
		t.Skipf("skipping: protoc is %q, the generated file names 3.21.12", strings.TrimSpace(string(out)))
	}
	want := goOutput(t, "list", "-m", "-f", "{{.Version}}", "google.golang.org/protobuf")
	gen, err := exec.LookPath("protoc-gen-go")
	if err != nil {
		gen = filepath.Join(goOutput(t, "env", "GOPATH"), "bin", "protoc-gen-go")
	}
	out, err := exec.Command(gen, "--version").Output()
	if err != nil {
		t.Skipf("skipping: protoc-gen-go not installed (go install google.golang.org/protobuf/cmd/protoc-gen-go@%s)", want)
	}
	if have := strings.TrimPrefix(strings.TrimSpace(string(out)), "protoc-gen-go "); have != want {
		t.Skipf("skipping: protoc-gen-go is %s, go.mod has google.golang.org/protobuf %s", have, want)
	}
	cmd := exec.Command("bash", filepath.Join("..", "..", "scripts", "gen-proto.sh"), "--check", "onnx")
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(gen)+string(os.PathListSeparator)+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("scripts/gen-proto.sh --check onnx: %v\n%s", err, out)
	}
}

func goOutput(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// TestWireFormat pins the field numbers that gpu/ort and encode/weights also
// read and write by hand with protowire (ModelProto.ir_version 1, graph 7,
// opset_import 8; GraphProto.initializer 5; TensorProto.name 8), and
// round-trips a model through proto.Marshal and proto.Unmarshal.
func TestWireFormat(t *testing.T) {
	m := &onnxpb.ModelProto{
		IrVersion:   8,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 14}},
		Graph: &onnxpb.GraphProto{
			Name:        "g",
			Initializer: []*onnxpb.TensorProto{{Name: "w", DataType: int32(onnxpb.TensorProto_FLOAT), Dims: []int64{1}, RawData: []byte{0, 0, 0x80, 0x3f}}},
		},
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	fields := map[protowire.Number][]byte{}
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		rest = rest[n:]
		var v []byte
		if typ == protowire.BytesType {
			v, n = protowire.ConsumeBytes(rest)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, rest)
		}
		if n < 0 {
			t.Fatalf("field %d: %v", num, protowire.ParseError(n))
		}
		fields[num] = v
		rest = rest[n:]
	}
	for _, num := range []protowire.Number{1, 7, 8} {
		if _, ok := fields[num]; !ok {
			t.Errorf("ModelProto field %d missing from %x", num, b)
		}
	}
	if !bytes.Contains(fields[7], []byte{5<<3 | 2}) || !bytes.Contains(fields[7], []byte{8<<3 | 2, 1, 'w'}) {
		t.Errorf("GraphProto %x: want initializer (5) holding name (8) \"w\"", fields[7])
	}
	var back onnxpb.ModelProto
	if err := proto.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(m, &back) {
		t.Errorf("round trip: got %v, want %v", &back, m)
	}
	if got := onnxpb.TensorProto_DataType_name[int32(onnxpb.TensorProto_FLOAT16)]; got != "FLOAT16" {
		t.Errorf("TensorProto_FLOAT16 is named %q", got)
	}
}
