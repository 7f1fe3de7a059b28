package sys

import "strconv"

// DevicePtr is an address in device memory (CUdeviceptr).
type DevicePtr uintptr

// Add returns p advanced by bytes.
func (p DevicePtr) Add(bytes int) DevicePtr { return p + DevicePtr(bytes) }

// DeviceInfo describes one device as the driver numbers it (after
// CUDA_VISIBLE_DEVICES).
type DeviceInfo struct {
	Index       int
	Name        string
	TotalMemory uint64 // bytes
	// ComputeMajor.ComputeMinor is the compute capability (9.0: Hopper).
	ComputeMajor, ComputeMinor int
}

// DataType is a matrix element type of cuBLAS's Ex functions (cudaDataType).
type DataType int32

const (
	R32F  DataType = 0  // CUDA_R_32F: float
	R16F  DataType = 2  // CUDA_R_16F: half
	R16BF DataType = 14 // CUDA_R_16BF: bfloat16
)

func (t DataType) String() string {
	switch t {
	case R32F:
		return "CUDA_R_32F"
	case R16F:
		return "CUDA_R_16F"
	case R16BF:
		return "CUDA_R_16BF"
	}
	return "cudaDataType(" + strconv.Itoa(int(t)) + ")"
}

// ComputeType is the accumulation of cuBLAS's Ex functions
// (cublasComputeType_t, cuBLAS 11 and later).
type ComputeType int32

const (
	// Compute32F: float32 accumulation, inputs as they are.
	Compute32F ComputeType = 68 // CUBLAS_COMPUTE_32F
	// Compute32FFastTF32: float32 accumulation; float32 inputs may be
	// rounded to TF32 for the tensor cores (Ampere and later).
	Compute32FFastTF32 ComputeType = 77 // CUBLAS_COMPUTE_32F_FAST_TF32
)

func (c ComputeType) String() string {
	switch c {
	case Compute32F:
		return "CUBLAS_COMPUTE_32F"
	case Compute32FFastTF32:
		return "CUBLAS_COMPUTE_32F_FAST_TF32"
	}
	return "cublasComputeType_t(" + strconv.Itoa(int(c)) + ")"
}

// Op says whether cuBLAS reads a matrix as stored or transposed
// (cublasOperation_t). cuBLAS matrices are column-major.
type Op int32

const (
	OpN Op = 0 // CUBLAS_OP_N
	OpT Op = 1 // CUBLAS_OP_T
)

func (o Op) String() string {
	switch o {
	case OpN:
		return "N"
	case OpT:
		return "T"
	}
	return "cublasOperation_t(" + strconv.Itoa(int(o)) + ")"
}

// MathMode is a cuBLAS handle's math mode (cublasMath_t).
type MathMode int32

const (
	DefaultMath      MathMode = 0  // CUBLAS_DEFAULT_MATH
	PedanticMath     MathMode = 2  // CUBLAS_PEDANTIC_MATH
	TF32TensorOpMath MathMode = 3  // CUBLAS_TF32_TENSOR_OP_MATH
	gemmDefault               = -1 // CUBLAS_GEMM_DEFAULT
)

// Driver constants.
const (
	attrComputeCapabilityMajor = 75 // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
	attrComputeCapabilityMinor = 76 // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR
	memHostAllocPortable       = 1  // CU_MEMHOSTALLOC_PORTABLE
	streamDefault              = 0  // CU_STREAM_DEFAULT: orders with the legacy NULL stream
	eventDefault               = 0  // CU_EVENT_DEFAULT: timing enabled
	jitLogSize                 = 16 << 10
	maxKernelParams            = 256
)
