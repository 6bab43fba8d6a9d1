package datasets

import (
	"errors"
	"fmt"

	"github.com/gsrmt/gsrmt/internal/pickle"
)

// pickleGlobals is the allow-list for data set pickles: plain data and
// numpy arrays, nothing else.
var pickleGlobals = pickle.MergeGlobals(pickle.BasicGlobals(), pickle.NumpyGlobals())

// pickleDict decodes a pickle whose top-level value must be a dict.
func pickleDict(what, name string, data []byte) (*pickle.Dict, error) {
	v, err := pickle.Unmarshal(data, pickleGlobals)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, name, err)
	}
	d, ok := v.(*pickle.Dict)
	if !ok {
		return nil, fmt.Errorf("%s %s: pickle holds a %T, want a dict", what, name, v)
	}
	return d, nil
}

// dictGet looks key up as bytes (Python 3, b'key') and then as str (Python
// 2 str keys decode to strings, as do Python 3 str keys).
func dictGet(d *pickle.Dict, key string) (any, bool) {
	if v, ok := d.Get([]byte(key)); ok {
		return v, true
	}
	return d.Get(key)
}

// toInts converts a pickled list (or tuple, or integer numpy array) of
// ints.
func toInts(v any) ([]int64, error) {
	switch x := v.(type) {
	case []any:
		out := make([]int64, len(x))
		for i, e := range x {
			n, ok := e.(int64)
			if !ok {
				return nil, fmt.Errorf("item %d is a %T, want an int", i, e)
			}
			out[i] = n
		}
		return out, nil
	case pickle.Tuple:
		return toInts([]any(x))
	case *pickle.NDArray:
		if x.DType.Kind != 'i' && x.DType.Kind != 'u' {
			return nil, fmt.Errorf("numpy array of %s, want integers", x.DType)
		}
		if len(x.Shape) != 1 {
			return nil, fmt.Errorf("numpy array of shape %v, want one dimension", x.Shape)
		}
		return x.Int64s()
	}
	return nil, fmt.Errorf("a %T, want a list of ints", v)
}

// toStrings converts a pickled list of str or bytes.
func toStrings(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		if t, isTuple := v.(pickle.Tuple); isTuple {
			list = t
		} else {
			return nil, fmt.Errorf("a %T, want a list of strings", v)
		}
	}
	out := make([]string, len(list))
	for i, e := range list {
		switch s := e.(type) {
		case string:
			out[i] = s
		case []byte:
			out[i] = string(s)
		default:
			return nil, fmt.Errorf("item %d is a %T, want str or bytes", i, e)
		}
	}
	return out, nil
}

// uint8Array checks that v is a C-ordered uint8 numpy array of the given
// rank and returns it.
func uint8Array(v any, rank int) (*pickle.NDArray, error) {
	a, ok := v.(*pickle.NDArray)
	if !ok {
		return nil, fmt.Errorf("a %T, want a numpy array", v)
	}
	if a.DType.Kind != 'u' || a.DType.ItemSize != 1 {
		return nil, fmt.Errorf("numpy array of %s, want uint8", a.DType)
	}
	if len(a.Shape) != rank {
		return nil, fmt.Errorf("numpy array of shape %v, want %d dimensions", a.Shape, rank)
	}
	if a.FortranOrder && a.Len() > 0 {
		return nil, errors.New("numpy array in Fortran order, want C order")
	}
	return a, nil
}

// ParseCIFARPickleBatch parses a CIFAR-10 python batch: a pickled dict
// (protocol 2, bytes or Python 2 str keys) whose b'data' is a uint8 numpy
// array (N, 3072), channel-major like the binary records, and whose
// b'labels' is a list of N ints in 0-9. name is used in errors only.
func ParseCIFARPickleBatch(name string, data []byte) (pix, labels []byte, err error) {
	return cifar10.parsePickleBatch(name, data)
}

// ParseCIFAR100PickleBatch parses a CIFAR-100 python file (train or test)
// like ParseCIFARPickleBatch, its labels being b'fine_labels' in 0-99.
func ParseCIFAR100PickleBatch(name string, data []byte) (pix, labels []byte, err error) {
	return cifar100.parsePickleBatch(name, data)
}

// parsePickleBatch parses a python batch of the set: b'data' and the
// labels under the set's key.
func (s *cifarSet) parsePickleBatch(name string, data []byte) (pix, labels []byte, err error) {
	what := s.name + " python batch"
	d, err := pickleDict(what, name, data)
	if err != nil {
		return nil, nil, err
	}
	bad := func(format string, args ...any) ([]byte, []byte, error) {
		return nil, nil, fmt.Errorf("%s %s: %s", what, name, fmt.Sprintf(format, args...))
	}
	dv, ok := dictGet(d, "data")
	if !ok {
		return bad("no b'data' key")
	}
	arr, err := uint8Array(dv, 2)
	if err != nil {
		return bad("b'data' is %v", err)
	}
	if arr.Shape[1] != cifarPixels {
		return bad("b'data' has shape %v, want (N, %d)", arr.Shape, cifarPixels)
	}
	lv, ok := dictGet(d, s.pyLabels)
	if !ok {
		return bad("no b'%s' key", s.pyLabels)
	}
	ls, err := toInts(lv)
	if err != nil {
		return bad("b'%s' is %v", s.pyLabels, err)
	}
	if len(ls) != arr.Shape[0] {
		return bad("%d labels for %d images", len(ls), arr.Shape[0])
	}
	if len(ls) == 0 {
		return bad("no images")
	}
	labels = make([]byte, len(ls))
	for i, l := range ls {
		if l < 0 || l >= int64(len(s.classes)) {
			return bad("label %d of record %d out of range [0, %d)", l, i, len(s.classes))
		}
		labels[i] = byte(l)
	}
	return arr.Data, labels, nil
}

// parsePickleMeta reads the class names (b'label_names', CIFAR-100's
// b'fine_label_names') from the python meta file.
func (s *cifarSet) parsePickleMeta(name string, data []byte) ([]string, error) {
	what := s.name + " python meta"
	d, err := pickleDict(what, name, data)
	if err != nil {
		return nil, err
	}
	v, ok := dictGet(d, s.pyNames)
	if !ok {
		return nil, fmt.Errorf("%s %s: no b'%s' key", what, name, s.pyNames)
	}
	names, err := toStrings(v)
	if err != nil {
		return nil, fmt.Errorf("%s %s: b'%s' is %v", what, name, s.pyNames, err)
	}
	return names, nil
}
