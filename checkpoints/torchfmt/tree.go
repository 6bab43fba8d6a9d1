package torchfmt

import (
	"fmt"
	"strconv"

	"github.com/gsrmt/gsrmt/internal/pickle"
)

// Dict is an ordered map, the Go form of Python's dict and OrderedDict
// (see Dict.Ordered). Keys are usually strings; ints, bools, floats, None
// and tuples of these also work, with Python's equality.
type Dict = pickle.Dict

// DictEntry is one key-value pair of a Dict.
type DictEntry = pickle.DictEntry

// Tuple is a Python tuple.
type Tuple = pickle.Tuple

// Object is an instance of a class that is not plain data, such as the
// argparse.Namespace or yacs CfgNode that training scripts save next to
// their weights, read as an inert record: its class, and the state and
// items the pickle gave it. Nothing of the class runs. Write cannot write
// one back.
type Object = pickle.Object

// NewDict returns an empty dict.
func NewDict() *Dict { return pickle.NewDict() }

// NewOrderedDict returns an empty OrderedDict, the type of a PyTorch
// state_dict.
func NewOrderedDict() *Dict { return pickle.NewOrderedDict() }

// maxDepth is how deep containers may nest in a tree that is read or
// written.
const maxDepth = 1000

// joinPath extends the dotted path of a value in a tree by a dict key or a
// list index, for error messages: "model.head.weight", "rows.3".
func joinPath(path string, key any) string {
	var k string
	switch key := key.(type) {
	case string:
		k = key
	case int:
		k = strconv.Itoa(key)
	default:
		k = fmt.Sprint(key)
	}
	if path == "" {
		return k
	}
	return path + "." + k
}

// pathName quotes a path made by joinPath for an error message; the empty
// path is the "top-level value".
func pathName(path string) string {
	if path == "" {
		return "top-level value"
	}
	return strconv.Quote(path)
}

func ints(s []int64) Tuple {
	t := make(Tuple, len(s))
	for i, v := range s {
		t[i] = v
	}
	return t
}

func anySlice[T any](s []T) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
