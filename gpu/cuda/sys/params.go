package sys

import (
	"encoding/binary"
	"fmt"
	"math"
)

// kernelParams lays a kernel's arguments out for cuLaunchKernel: each
// value at its natural alignment in one buffer (blob), and offsets[i] where
// argument i starts. The launch turns them into the void*[] array the
// driver reads (in C memory), so no Go pointer is ever stored where C can
// see it. The driver copies each parameter's own size from its pointer, so
// the layout of blob need not match the kernel's parameter space.
//
// Accepted types: int32, uint32, float32 (4 bytes); int64, uint64,
// uintptr, DevicePtr (8 bytes). An int is refused: the kernel's parameter
// has a width that the Go type must say.
func kernelParams(args []any) (blob []byte, offsets []uint64, err error) {
	if len(args) > maxKernelParams {
		return nil, nil, fmt.Errorf("%d kernel arguments: at most %d", len(args), maxKernelParams)
	}
	offsets = make([]uint64, len(args))
	var buf [8]byte
	for i, a := range args {
		var n int
		switch v := a.(type) {
		case int32:
			binary.NativeEndian.PutUint32(buf[:], uint32(v))
			n = 4
		case uint32:
			binary.NativeEndian.PutUint32(buf[:], v)
			n = 4
		case float32:
			binary.NativeEndian.PutUint32(buf[:], math.Float32bits(v))
			n = 4
		case int64:
			binary.NativeEndian.PutUint64(buf[:], uint64(v))
			n = 8
		case uint64:
			binary.NativeEndian.PutUint64(buf[:], v)
			n = 8
		case uintptr:
			binary.NativeEndian.PutUint64(buf[:], uint64(v))
			n = 8
		case DevicePtr:
			binary.NativeEndian.PutUint64(buf[:], uint64(v))
			n = 8
		default:
			return nil, nil, fmt.Errorf("kernel argument %d: %T is not a kernel parameter type (int32, uint32, float32, int64, uint64, uintptr, DevicePtr)", i, a)
		}
		for len(blob)%n != 0 {
			blob = append(blob, 0)
		}
		offsets[i] = uint64(len(blob))
		blob = append(blob, buf[:n]...)
	}
	if len(blob) == 0 {
		blob = []byte{0} // a valid address for the C side even without arguments
	}
	return blob, offsets, nil
}
