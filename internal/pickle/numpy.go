package pickle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// NumpyGlobals returns stand-ins for the globals that pickled numpy arrays,
// scalars and dtypes name, for numpy 1 (numpy.core) and numpy 2
// (numpy._core): arrays decode to *NDArray and dtypes to *NumpyDType. It
// includes codecs.encode, _codecs.encode and builtins.bytes, which numpy
// pickles use for their raw bytes at protocol 2. Arrays of Python objects and structured
// dtypes are refused.
func NumpyGlobals() Globals {
	g := Globals{
		{"numpy", "ndarray"}:  ndarrayClass{},
		{"numpy", "dtype"}:    Func(newNumpyDType),
		{"codecs", "encode"}:  Func(codecsEncode),
		{"_codecs", "encode"}: Func(codecsEncode),
		{"builtins", "bytes"}: Func(newBytes),
	}
	for _, core := range []string{"numpy.core", "numpy._core"} {
		g[Global{core + ".multiarray", "_reconstruct"}] = Func(numpyReconstruct)
		g[Global{core + ".multiarray", "scalar"}] = Func(numpyScalar)
		g[Global{core + ".numeric", "_frombuffer"}] = Func(numpyFromBuffer)
	}
	return g
}

// ndarrayClass stands in for numpy.ndarray, the class argument of
// _reconstruct.
type ndarrayClass struct{}

// NumpyDType is a numpy dtype with fixed-size elements.
type NumpyDType struct {
	// Kind is numpy's kind character: 'b' bool, 'i' signed integer,
	// 'u' unsigned integer, 'f' float, 'c' complex, 'S' bytes, 'U' str,
	// 'V' raw, 'M' datetime64, 'm' timedelta64, 'O' Python object.
	Kind byte
	// ItemSize is the size of one element in bytes.
	ItemSize int
	// ByteOrder is '<' (little-endian), '>' (big-endian) or '|' (not
	// applicable).
	ByteOrder byte
}

// String returns numpy's type string, such as "<f4" or "|u1".
func (t NumpyDType) String() string {
	return string(rune(t.ByteOrder)) + string(rune(t.Kind)) + strconv.Itoa(t.ItemSize)
}

// newNumpyDType implements numpy.dtype(obj, align, copy) for the type
// strings that numpy pickles ("f8", "u1", "S5", ...).
func newNumpyDType(args Tuple) (any, error) {
	if len(args) < 1 || len(args) > 3 {
		return nil, fmt.Errorf("numpy.dtype takes 1 to 3 arguments, got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("numpy.dtype: unsupported argument %s", typeName(args[0]))
	}
	if s == "" {
		return nil, errors.New("numpy.dtype: empty type string")
	}
	t := &NumpyDType{Kind: s[0], ByteOrder: '|'}
	switch t.Kind {
	case 'b', 'i', 'u', 'f', 'c', 'S', 'U', 'V', 'M', 'm', 'O':
	default:
		return nil, fmt.Errorf("numpy.dtype: unsupported type string %q", s)
	}
	if len(s) > 1 {
		n, err := strconv.Atoi(s[1:])
		if err != nil || n < 0 || n > 1<<20 {
			return nil, fmt.Errorf("numpy.dtype: unsupported type string %q", s)
		}
		t.ItemSize = n
	}
	if t.ItemSize > 1 && t.Kind != 'S' && t.Kind != 'V' {
		t.ByteOrder = '<'
	}
	return t, nil
}

// SetState applies the state that numpy pickles for a dtype: (version,
// byteorder, subarray, names, fields, elsize, alignment, flags[, metadata]).
func (t *NumpyDType) SetState(state any) error {
	st, ok := state.(Tuple)
	if !ok || len(st) < 2 {
		return fmt.Errorf("numpy.dtype: unsupported state %s", typeName(state))
	}
	if bo, ok := st[1].(string); ok && len(bo) == 1 {
		switch bo[0] {
		case '<', '>', '|':
			t.ByteOrder = bo[0]
		case '=':
			t.ByteOrder = '<' // numpy writes '=' for native order; assume little-endian
		default:
			return fmt.Errorf("numpy.dtype: bad byte order %q", bo)
		}
	} else {
		return fmt.Errorf("numpy.dtype: bad byte order %s", typeName(st[1]))
	}
	for i := 2; i < len(st) && i <= 4; i++ {
		if st[i] != nil {
			return errors.New("numpy.dtype: structured and subarray dtypes are not supported")
		}
	}
	if len(st) > 5 {
		if n, ok := toInt(st[5]); ok && n > 0 && n <= 1<<20 {
			t.ItemSize = int(n)
		}
	}
	return nil
}

// NDArray is a numpy array.
type NDArray struct {
	DType NumpyDType
	// Shape holds the dimensions; it is empty for a numpy scalar.
	Shape []int
	// FortranOrder is true when Data holds the elements in column-major
	// (Fortran) order rather than row-major (C) order.
	FortranOrder bool
	// Data holds the elements' raw bytes, in DType's byte order.
	Data []byte
}

// Len returns the number of elements.
func (a *NDArray) Len() int {
	n := 1
	for _, d := range a.Shape {
		n *= d
	}
	return n
}

// SetState applies the state that numpy pickles for an array made by
// _reconstruct: (version, shape, dtype, is_fortran, rawdata).
func (a *NDArray) SetState(state any) error {
	st, ok := state.(Tuple)
	if !ok {
		return fmt.Errorf("numpy.ndarray: unsupported state %s", typeName(state))
	}
	if len(st) == 5 {
		st = st[1:] // drop the version
	}
	if len(st) != 4 {
		return fmt.Errorf("numpy.ndarray: state has %d items, want 4 or 5", len(st))
	}
	dt, ok := st[1].(*NumpyDType)
	if !ok {
		return fmt.Errorf("numpy.ndarray: dtype is a %s", typeName(st[1]))
	}
	fortran, ok := st[2].(bool)
	if !ok {
		return fmt.Errorf("numpy.ndarray: is_fortran is a %s", typeName(st[2]))
	}
	data, ok := toBytes(st[3])
	if !ok {
		if dt.Kind == 'O' {
			return errors.New("numpy.ndarray: arrays of Python objects are not supported")
		}
		return fmt.Errorf("numpy.ndarray: raw data is a %s", typeName(st[3]))
	}
	return a.init(st[0], dt, fortran, data)
}

func (a *NDArray) init(shape any, dt *NumpyDType, fortran bool, data []byte) error {
	if dt.Kind == 'O' {
		return errors.New("numpy: arrays of Python objects are not supported")
	}
	dims, ok := toInts(shape)
	if !ok {
		return fmt.Errorf("numpy: shape is a %s, not a tuple of ints", typeName(shape))
	}
	n := int64(1)
	a.Shape = make([]int, len(dims))
	for i, d := range dims {
		if d < 0 || (d > 0 && n > (math.MaxInt64>>21)/d) { // keeps n*ItemSize in range
			return fmt.Errorf("numpy: bad shape %v", dims)
		}
		n *= d
		a.Shape[i] = int(d)
	}
	if want := n * int64(dt.ItemSize); want != int64(len(data)) {
		return fmt.Errorf("numpy: shape %v of %s needs %d bytes, got %d", dims, dt, want, len(data))
	}
	a.DType = *dt
	a.FortranOrder = fortran
	a.Data = data
	return nil
}

// numpyReconstruct implements numpy.core.multiarray._reconstruct(subtype,
// shape, dtype); the array gets its contents from BUILD.
func numpyReconstruct(args Tuple) (any, error) {
	if len(args) != 3 {
		return nil, fmt.Errorf("_reconstruct takes 3 arguments, got %d", len(args))
	}
	if _, ok := args[0].(ndarrayClass); !ok {
		return nil, fmt.Errorf("_reconstruct: unsupported array class %s", typeName(args[0]))
	}
	return &NDArray{}, nil
}

// numpyScalar implements numpy.core.multiarray.scalar(dtype, bytes); the
// scalar becomes an NDArray of shape ().
func numpyScalar(args Tuple) (any, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("scalar takes 2 arguments, got %d", len(args))
	}
	dt, ok := args[0].(*NumpyDType)
	if !ok {
		return nil, fmt.Errorf("scalar: dtype is a %s", typeName(args[0]))
	}
	data, ok := toBytes(args[1])
	if !ok {
		return nil, fmt.Errorf("scalar: unsupported value %s", typeName(args[1]))
	}
	a := &NDArray{}
	if err := a.init(Tuple{}, dt, false, data); err != nil {
		return nil, err
	}
	return a, nil
}

// numpyFromBuffer implements numpy.core.numeric._frombuffer(buf, dtype,
// shape, order), which protocol 5 pickles use.
func numpyFromBuffer(args Tuple) (any, error) {
	if len(args) != 4 {
		return nil, fmt.Errorf("_frombuffer takes 4 arguments, got %d", len(args))
	}
	data, ok := toBytes(args[0])
	if !ok {
		return nil, fmt.Errorf("_frombuffer: buffer is a %s", typeName(args[0]))
	}
	dt, ok := args[1].(*NumpyDType)
	if !ok {
		return nil, fmt.Errorf("_frombuffer: dtype is a %s", typeName(args[1]))
	}
	order, _ := args[3].(string)
	if order != "C" && order != "F" {
		return nil, fmt.Errorf("_frombuffer: bad order %v", args[3])
	}
	a := &NDArray{}
	if err := a.init(args[2], dt, order == "F", data); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *NDArray) order() binary.ByteOrder {
	if a.DType.ByteOrder == '>' {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// Int64s returns the elements of a bool or integer array, in Data's order.
func (a *NDArray) Int64s() ([]int64, error) {
	k, size := a.DType.Kind, a.DType.ItemSize
	if (k != 'b' && k != 'i' && k != 'u') || (size != 1 && size != 2 && size != 4 && size != 8) {
		return nil, fmt.Errorf("numpy: cannot read %s elements as integers", a.DType)
	}
	bo := a.order()
	out := make([]int64, len(a.Data)/size)
	for i := range out {
		b := a.Data[i*size : (i+1)*size]
		var u uint64
		switch size {
		case 1:
			u = uint64(b[0])
		case 2:
			u = uint64(bo.Uint16(b))
		case 4:
			u = uint64(bo.Uint32(b))
		case 8:
			u = bo.Uint64(b)
		}
		if k == 'i' {
			shift := uint(64 - 8*size)
			out[i] = int64(u<<shift) >> shift
		} else {
			if u > math.MaxInt64 {
				return nil, fmt.Errorf("numpy: element %d (%d) overflows int64", i, u)
			}
			out[i] = int64(u)
		}
	}
	return out, nil
}

// Float64s returns the elements of a float, integer or bool array as
// float64s, in Data's order.
func (a *NDArray) Float64s() ([]float64, error) {
	if a.DType.Kind != 'f' {
		ints, err := a.Int64s()
		if err != nil {
			return nil, fmt.Errorf("numpy: cannot read %s elements as floats", a.DType)
		}
		out := make([]float64, len(ints))
		for i, v := range ints {
			out[i] = float64(v)
		}
		return out, nil
	}
	bo := a.order()
	size := a.DType.ItemSize
	if size != 2 && size != 4 && size != 8 {
		return nil, fmt.Errorf("numpy: cannot read %s elements as floats", a.DType)
	}
	out := make([]float64, len(a.Data)/size)
	for i := range out {
		b := a.Data[i*size : (i+1)*size]
		switch size {
		case 2:
			out[i] = float64(halfToFloat32(bo.Uint16(b)))
		case 4:
			out[i] = float64(math.Float32frombits(bo.Uint32(b)))
		case 8:
			out[i] = math.Float64frombits(bo.Uint64(b))
		}
	}
	return out, nil
}

// halfToFloat32 converts IEEE 754 binary16 bits to a float32.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
	case frac == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: value = frac * 2^-24.
	f := float32(frac) * (1.0 / (1 << 24))
	if sign != 0 {
		f = -f
	}
	return f
}
