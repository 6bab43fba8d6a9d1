package torchfmt

import "fmt"

// DType is the element type of a tensor.
type DType uint8

// The element types a checkpoint can hold.
const (
	Float32 DType = iota + 1
	Float64
	Float16
	BFloat16
	Int64
	Int32
	Int16
	Int8
	Uint8
	Bool
)

var dtypeInfo = [...]struct {
	name        string // PyTorch's name, torch.<name>
	size        int    // bytes per element
	storage     string // PyTorch storage class, torch.<storage>
	safetensors string // safetensors dtype string
}{
	Float32:  {"float32", 4, "FloatStorage", "F32"},
	Float64:  {"float64", 8, "DoubleStorage", "F64"},
	Float16:  {"float16", 2, "HalfStorage", "F16"},
	BFloat16: {"bfloat16", 2, "BFloat16Storage", "BF16"},
	Int64:    {"int64", 8, "LongStorage", "I64"},
	Int32:    {"int32", 4, "IntStorage", "I32"},
	Int16:    {"int16", 2, "ShortStorage", "I16"},
	Int8:     {"int8", 1, "CharStorage", "I8"},
	Uint8:    {"uint8", 1, "ByteStorage", "U8"},
	Bool:     {"bool", 1, "BoolStorage", "BOOL"},
}

// valid reports whether d is one of the declared element types.
func (d DType) valid() bool { return d >= Float32 && d <= Bool }

// String returns PyTorch's name for d, such as "float32".
func (d DType) String() string {
	if !d.valid() {
		return fmt.Sprintf("DType(%d)", uint8(d))
	}
	return dtypeInfo[d].name
}

// Size returns the number of bytes of one element, or 0 for an invalid DType.
func (d DType) Size() int {
	if !d.valid() {
		return 0
	}
	return dtypeInfo[d].size
}

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool {
	return d == Float32 || d == Float64 || d == Float16 || d == BFloat16
}

// dtypeOfStorage maps a PyTorch storage class name to its element type.
func dtypeOfStorage(class string) (DType, bool) {
	if class == "UntypedStorage" {
		return Uint8, true
	}
	for d := Float32; d <= Bool; d++ {
		if dtypeInfo[d].storage == class {
			return d, true
		}
	}
	return 0, false
}

// dtypeOfSafetensors maps a safetensors dtype string (F32, BF16, ...) to
// its element type.
func dtypeOfSafetensors(name string) (DType, bool) {
	for d := Float32; d <= Bool; d++ {
		if dtypeInfo[d].safetensors == name {
			return d, true
		}
	}
	return 0, false
}
