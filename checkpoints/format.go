package checkpoints

import "github.com/gsrmt/gsrmt/checkpoints/torchfmt"

// The format layer's names that this package's API uses, so that callers
// build and read checkpoint trees without importing torchfmt.
type (
	// Dict is torchfmt.Dict, Python's dict and OrderedDict.
	Dict = torchfmt.Dict
	// DictEntry is one key-value pair of a Dict.
	DictEntry = torchfmt.DictEntry
	// Tuple is a Python tuple.
	Tuple = torchfmt.Tuple
	// Tensor is torchfmt.Tensor, a strided view of a Storage.
	Tensor = torchfmt.Tensor
	// Storage is torchfmt.Storage, a flat buffer of little-endian elements.
	Storage = torchfmt.Storage
	// DType is a tensor's element type.
	DType = torchfmt.DType
	// NamedTensor is a tensor with its name, such as a state_dict entry.
	NamedTensor = torchfmt.NamedTensor
)

// The element types, as torchfmt declares them.
const (
	Float32  = torchfmt.Float32
	Float64  = torchfmt.Float64
	Float16  = torchfmt.Float16
	BFloat16 = torchfmt.BFloat16
	Int64    = torchfmt.Int64
	Int32    = torchfmt.Int32
	Int16    = torchfmt.Int16
	Int8     = torchfmt.Int8
	Uint8    = torchfmt.Uint8
	Bool     = torchfmt.Bool
)

// NewDict returns an empty dict (torchfmt.NewDict).
func NewDict() *Dict { return torchfmt.NewDict() }

// NewOrderedDict returns an empty OrderedDict, the type of a state_dict.
func NewOrderedDict() *Dict { return torchfmt.NewOrderedDict() }

// NewTensor returns a contiguous tensor over data (torchfmt.NewTensor).
func NewTensor(dtype DType, shape []int64, data []byte) (*Tensor, error) {
	return torchfmt.NewTensor(dtype, shape, data)
}

// FromFloat32 returns a contiguous tensor of float values converted to
// dtype (torchfmt.FromFloat32).
func FromFloat32(dtype DType, shape []int64, values []float32) (*Tensor, error) {
	return torchfmt.FromFloat32(dtype, shape, values)
}

// FromInt64 returns a contiguous tensor of integer values converted to
// dtype (torchfmt.FromInt64).
func FromInt64(dtype DType, shape []int64, values []int64) (*Tensor, error) {
	return torchfmt.FromInt64(dtype, shape, values)
}

// Save writes a tree (a state_dict, or any dict of plain values and
// tensors) to path as torch.save does, atomically (torchfmt.Save).
func Save(path string, v any) error { return torchfmt.Save(path, v) }

// Load reads a file torch.save or Save wrote as a tree (torchfmt.Load).
func Load(path string) (any, error) { return torchfmt.Load(path) }
