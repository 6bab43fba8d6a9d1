package torchfmt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Storage is a flat buffer of elements that tensors view. Several tensors
// may share one Storage.
type Storage struct {
	// Key names the storage in the file it was read from (the zip entry
	// data/<Key>); writing assigns fresh keys and ignores it.
	Key   string
	DType DType
	// Data holds the elements, little-endian. Its length is a multiple of
	// DType.Size().
	Data []byte
}

// Numel returns the number of elements in s.
func (s *Storage) Numel() int64 {
	if size := s.DType.Size(); size > 0 {
		return int64(len(s.Data) / size)
	}
	return 0
}

// Tensor is a strided view of a Storage, as in PyTorch: element (i0, i1, ...)
// is Storage element StorageOffset + i0*Stride[0] + i1*Stride[1] + ....
type Tensor struct {
	Storage *Storage
	// StorageOffset is the Storage index of the first element.
	StorageOffset int64
	Shape         []int64
	// Stride holds the step of each dimension, in elements.
	Stride       []int64
	RequiresGrad bool
}

// ContiguousStrides returns the row-major strides of shape.
func ContiguousStrides(shape []int64) []int64 {
	stride := make([]int64, len(shape))
	step := int64(1)
	for i := len(shape) - 1; i >= 0; i-- {
		stride[i] = step
		if shape[i] > 1 {
			step *= shape[i]
		}
	}
	return stride
}

// ShapeNumel returns the number of elements of shape, failing for negative
// dimensions or overflow.
func ShapeNumel(shape []int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, fmt.Errorf("shape %v has too many elements", shape)
		}
		n *= d
	}
	return n, nil
}

// NewTensor returns a contiguous tensor of shape over data, the elements'
// little-endian bytes. It uses data without copying it.
func NewTensor(dtype DType, shape []int64, data []byte) (*Tensor, error) {
	if !dtype.valid() {
		return nil, fmt.Errorf("torchfmt: invalid dtype %v", dtype)
	}
	n, err := ShapeNumel(shape)
	if err != nil {
		return nil, fmt.Errorf("torchfmt: %w", err)
	}
	if n > math.MaxInt64/int64(dtype.Size()) || n*int64(dtype.Size()) != int64(len(data)) {
		return nil, fmt.Errorf("torchfmt: %s tensor of shape %v needs %d bytes, got %d", dtype, shape, n*int64(dtype.Size()), len(data))
	}
	return &Tensor{
		Storage: &Storage{DType: dtype, Data: data},
		Shape:   append([]int64{}, shape...),
		Stride:  ContiguousStrides(shape),
	}, nil
}

// FromFloat32 returns a contiguous tensor of shape holding values converted
// to dtype, which must be Float32, Float64, Float16 or BFloat16 (the last two
// round to nearest even).
func FromFloat32(dtype DType, shape []int64, values []float32) (*Tensor, error) {
	if !dtype.IsFloat() {
		return nil, fmt.Errorf("torchfmt: FromFloat32: %v is not a floating-point dtype", dtype)
	}
	n, err := ShapeNumel(shape)
	if err != nil {
		return nil, fmt.Errorf("torchfmt: FromFloat32: %w", err)
	}
	if n != int64(len(values)) {
		return nil, fmt.Errorf("torchfmt: FromFloat32: shape %v holds %d elements, got %d values", shape, n, len(values))
	}
	size := dtype.Size()
	data := make([]byte, len(values)*size)
	for i, v := range values {
		b := data[i*size:]
		switch dtype {
		case Float32:
			binary.LittleEndian.PutUint32(b, math.Float32bits(v))
		case Float64:
			binary.LittleEndian.PutUint64(b, math.Float64bits(float64(v)))
		case Float16:
			binary.LittleEndian.PutUint16(b, float32ToHalf(v))
		case BFloat16:
			binary.LittleEndian.PutUint16(b, float32ToBFloat16(v))
		}
	}
	return NewTensor(dtype, shape, data)
}

// FromInt64 returns a contiguous tensor of shape holding values converted to
// dtype, which must be an integer type or Bool; a value out of dtype's range
// is an error.
func FromInt64(dtype DType, shape []int64, values []int64) (*Tensor, error) {
	var lo, hi int64
	switch dtype {
	case Int64:
		lo, hi = math.MinInt64, math.MaxInt64
	case Int32:
		lo, hi = math.MinInt32, math.MaxInt32
	case Int16:
		lo, hi = math.MinInt16, math.MaxInt16
	case Int8:
		lo, hi = math.MinInt8, math.MaxInt8
	case Uint8:
		lo, hi = 0, math.MaxUint8
	case Bool:
		lo, hi = 0, 1
	default:
		return nil, fmt.Errorf("torchfmt: FromInt64: %v is not an integer dtype", dtype)
	}
	n, err := ShapeNumel(shape)
	if err != nil {
		return nil, fmt.Errorf("torchfmt: FromInt64: %w", err)
	}
	if n != int64(len(values)) {
		return nil, fmt.Errorf("torchfmt: FromInt64: shape %v holds %d elements, got %d values", shape, n, len(values))
	}
	size := dtype.Size()
	data := make([]byte, len(values)*size)
	for i, v := range values {
		if v < lo || v > hi {
			return nil, fmt.Errorf("torchfmt: FromInt64: value %d at %d is out of range for %v", v, i, dtype)
		}
		putInt(data[i*size:], size, v)
	}
	return NewTensor(dtype, shape, data)
}

func putInt(b []byte, size int, v int64) {
	switch size {
	case 1:
		b[0] = byte(v)
	case 2:
		binary.LittleEndian.PutUint16(b, uint16(v))
	case 4:
		binary.LittleEndian.PutUint32(b, uint32(v))
	case 8:
		binary.LittleEndian.PutUint64(b, uint64(v))
	}
}

// DType returns the element type (that of the storage); 0 when the tensor
// has no storage.
func (t *Tensor) DType() DType {
	if t.Storage == nil {
		return 0
	}
	return t.Storage.DType
}

// Numel returns the number of elements in the view (0 for an invalid shape).
func (t *Tensor) Numel() int64 {
	n, err := ShapeNumel(t.Shape)
	if err != nil {
		return 0
	}
	return n
}

// IsContiguous reports whether the view's elements lie in row-major order
// without gaps, as PyTorch's is_contiguous does.
func (t *Tensor) IsContiguous() bool {
	if len(t.Stride) != len(t.Shape) {
		return false
	}
	step := int64(1)
	for i := len(t.Shape) - 1; i >= 0; i-- {
		if t.Shape[i] == 0 {
			return true
		}
		if t.Shape[i] != 1 && t.Stride[i] != step {
			return false
		}
		step *= t.Shape[i]
	}
	return true
}

// Validate checks that t is well-formed: a storage of a known dtype, shape
// and stride of the same length with no negative entries, and every element
// of the view inside the storage.
func (t *Tensor) Validate() error {
	s := t.Storage
	if s == nil {
		return errors.New("tensor has no storage")
	}
	if !s.DType.valid() {
		return fmt.Errorf("storage has invalid dtype %v", s.DType)
	}
	if len(s.Data)%s.DType.Size() != 0 {
		return fmt.Errorf("%s storage of %d bytes is not a whole number of elements", s.DType, len(s.Data))
	}
	if len(t.Shape) != len(t.Stride) {
		return fmt.Errorf("shape %v and stride %v differ in length", t.Shape, t.Stride)
	}
	if t.StorageOffset < 0 {
		return fmt.Errorf("negative storage offset %d", t.StorageOffset)
	}
	n, err := ShapeNumel(t.Shape)
	if err != nil {
		return err
	}
	size := s.Numel()
	if n == 0 {
		if t.StorageOffset > size {
			return fmt.Errorf("storage offset %d is past the storage's %d elements", t.StorageOffset, size)
		}
		return nil
	}
	last := t.StorageOffset
	for i, d := range t.Shape {
		st := t.Stride[i]
		if st < 0 {
			return fmt.Errorf("negative stride %v", t.Stride)
		}
		if st != 0 && d-1 > (math.MaxInt64-last)/st {
			return fmt.Errorf("view of shape %v and stride %v overflows", t.Shape, t.Stride)
		}
		last += (d - 1) * st
	}
	if last >= size {
		return fmt.Errorf("view (offset %d, shape %v, stride %v) reaches element %d of a storage of %d elements",
			t.StorageOffset, t.Shape, t.Stride, last, size)
	}
	return nil
}

// Bytes returns the view's elements in row-major order as a new slice of
// little-endian bytes, whatever the strides.
func (t *Tensor) Bytes() ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("torchfmt: %w", err)
	}
	out := make([]byte, 0, t.Numel()*int64(t.DType().Size()))
	t.eachRun(func(run []byte) { out = append(out, run...) })
	return out, nil
}

// eachRun calls f with the view's bytes in row-major order, in runs as long
// as the strides allow. t must be valid.
func (t *Tensor) eachRun(f func(run []byte)) {
	size := int64(t.DType().Size())
	data := t.Storage.Data
	n := t.Numel()
	if n == 0 {
		return
	}
	if t.IsContiguous() {
		f(data[t.StorageOffset*size : (t.StorageOffset+n)*size])
		return
	}
	// The innermost dimensions that are contiguous form one run.
	dims := len(t.Shape)
	runLen := int64(1)
	for dims > 0 && (t.Shape[dims-1] == 1 || t.Stride[dims-1] == runLen) {
		runLen *= t.Shape[dims-1]
		dims--
	}
	idx := make([]int64, dims)
	off := t.StorageOffset
	for {
		f(data[off*size : (off+runLen)*size])
		d := dims - 1
		for ; d >= 0; d-- {
			idx[d]++
			off += t.Stride[d]
			if idx[d] < t.Shape[d] {
				break
			}
			off -= idx[d] * t.Stride[d]
			idx[d] = 0
		}
		if d < 0 {
			return
		}
	}
}

// Float32s returns the view's elements in row-major order as float32s; the
// dtype must be Float32, Float64, Float16 or BFloat16.
func (t *Tensor) Float32s() ([]float32, error) {
	dt := t.DType()
	if !dt.IsFloat() {
		return nil, fmt.Errorf("torchfmt: Float32s of a %v tensor", dt)
	}
	raw, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	size := dt.Size()
	out := make([]float32, len(raw)/size)
	for i := range out {
		b := raw[i*size:]
		switch dt {
		case Float32:
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b))
		case Float64:
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b)))
		case Float16:
			out[i] = halfToFloat32(binary.LittleEndian.Uint16(b))
		case BFloat16:
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b)) << 16)
		}
	}
	return out, nil
}

// Int64s returns the view's elements in row-major order as int64s; the dtype
// must be an integer type or Bool.
func (t *Tensor) Int64s() ([]int64, error) {
	dt := t.DType()
	if !dt.valid() || dt.IsFloat() {
		return nil, fmt.Errorf("torchfmt: Int64s of a %v tensor", dt)
	}
	raw, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	size := dt.Size()
	out := make([]int64, len(raw)/size)
	for i := range out {
		b := raw[i*size:]
		switch dt {
		case Int64:
			out[i] = int64(binary.LittleEndian.Uint64(b))
		case Int32:
			out[i] = int64(int32(binary.LittleEndian.Uint32(b)))
		case Int16:
			out[i] = int64(int16(binary.LittleEndian.Uint16(b)))
		case Int8:
			out[i] = int64(int8(b[0]))
		case Uint8, Bool:
			out[i] = int64(b[0])
		}
	}
	return out, nil
}
