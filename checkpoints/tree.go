package checkpoints

import (
	"errors"
	"fmt"
	"math/big"
	"sort"
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

// NewDict returns an empty dict.
func NewDict() *Dict { return pickle.NewDict() }

// NewOrderedDict returns an empty OrderedDict, the type of a PyTorch
// state_dict.
func NewOrderedDict() *Dict { return pickle.NewOrderedDict() }

// storageRef is what the readers' PersistentLoad gives a tensor: a storage,
// and for legacy storage views the view's offset into it.
type storageRef struct {
	s      *Storage
	offset int64
}

// allowed is the allow-list of globals a checkpoint may name.
var allowed = pickle.MergeGlobals(pickle.BasicGlobals(), pickle.NumpyGlobals(), pickle.TorchGlobals())

// fromPickle replaces the decoded *pickle.TorchTensor values in v by
// *Tensor, in place, keeping shared tensors shared.
type fromPickle struct {
	tensors map[*pickle.TorchTensor]*Tensor
	seen    map[any]bool
}

func convertDecoded(v any) (any, error) {
	c := fromPickle{tensors: make(map[*pickle.TorchTensor]*Tensor), seen: make(map[any]bool)}
	return c.walk(v, "", 0)
}

const maxDepth = 1000

func (c *fromPickle) walk(v any, path string, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%s: containers nested more than %d deep", pathName(path), maxDepth)
	}
	switch v := v.(type) {
	case *pickle.TorchTensor:
		if t, ok := c.tensors[v]; ok {
			return t, nil
		}
		ref, ok := v.Storage.(storageRef)
		if !ok {
			return nil, fmt.Errorf("%s: tensor storage is a %T, not a storage", pathName(path), v.Storage)
		}
		t := &Tensor{
			Storage:       ref.s,
			StorageOffset: ref.offset + v.StorageOffset,
			Shape:         v.Size,
			Stride:        v.Stride,
			RequiresGrad:  v.RequiresGrad,
		}
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", pathName(path), err)
		}
		c.tensors[v] = t
		return t, nil
	case *Dict:
		if c.seen[v] {
			return v, nil
		}
		c.seen[v] = true
		for _, e := range v.Entries() {
			w, err := c.walk(e.Value, joinPath(path, e.Key), depth+1)
			if err != nil {
				return nil, err
			}
			if _, ok := e.Value.(*pickle.TorchTensor); ok {
				v.Set(e.Key, w) // cannot fail: the key is already in v
			}
		}
	case []any:
		if len(v) == 0 || c.seen[&v[0]] {
			return v, nil
		}
		c.seen[&v[0]] = true
		for i, e := range v {
			w, err := c.walk(e, joinPath(path, i), depth+1)
			if err != nil {
				return nil, err
			}
			v[i] = w
		}
	case Tuple:
		if len(v) == 0 || c.seen[&v[0]] {
			return v, nil
		}
		c.seen[&v[0]] = true
		for i, e := range v {
			w, err := c.walk(e, joinPath(path, i), depth+1)
			if err != nil {
				return nil, err
			}
			v[i] = w
		}
	case storageRef:
		return nil, fmt.Errorf("%s: a bare storage is not supported", pathName(path))
	}
	return v, nil
}

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

func pathName(path string) string {
	if path == "" {
		return "top-level value"
	}
	return strconv.Quote(path)
}

// Globals the writer names.
var (
	rebuildTensorV2 = pickle.Global{Module: "torch._utils", Name: "_rebuild_tensor_v2"}
	orderedDict     = pickle.Global{Module: "collections", Name: "OrderedDict"}
)

// toPickle converts a checkpoint tree into values for the pickle Encoder:
// each *Tensor becomes a _rebuild_tensor_v2 call over its *Storage, which
// the Encoder's PersistentID turns into a storage persistent id.
type toPickle struct {
	tensors  map[*Tensor]*pickle.Reduce
	dicts    map[*Dict]*pickle.Dict
	keys     map[*Storage]string
	storages []*Storage // in key order
}

func newToPickle() *toPickle {
	return &toPickle{
		tensors: make(map[*Tensor]*pickle.Reduce),
		dicts:   make(map[*Dict]*pickle.Dict),
		keys:    make(map[*Storage]string),
	}
}

// persistentID implements the Encoder's PersistentID: storages become
// ('storage', torch.<Class>Storage, key, 'cpu', numel), keys numbered in the
// order the pickle meets them, as torch.save does.
func (c *toPickle) persistentID(v any) (any, bool) {
	s, ok := v.(*Storage)
	if !ok {
		return nil, false
	}
	key, ok := c.keys[s]
	if !ok {
		key = strconv.Itoa(len(c.keys))
		c.keys[s] = key
		c.storages = append(c.storages, s)
	}
	class := pickle.Global{Module: "torch", Name: dtypeInfo[s.DType].storage}
	return Tuple{"storage", class, key, "cpu", s.Numel()}, true
}

func (c *toPickle) convert(v any, path string, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%s: containers nested more than %d deep", pathName(path), maxDepth)
	}
	switch v := v.(type) {
	case nil, bool, string, int, int8, int16, int32, int64, uint8, uint16, uint32, uint, uint64, float32, float64:
		return v, nil
	case *big.Int:
		if v == nil {
			return nil, fmt.Errorf("%s: nil *big.Int", pathName(path))
		}
		return v, nil
	case *Tensor:
		if v == nil {
			return nil, fmt.Errorf("%s: nil tensor", pathName(path))
		}
		if r, ok := c.tensors[v]; ok {
			return r, nil
		}
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", pathName(path), err)
		}
		r := &pickle.Reduce{
			Callable: rebuildTensorV2,
			Args: Tuple{
				v.Storage,
				v.StorageOffset,
				ints(v.Shape),
				ints(v.Stride),
				v.RequiresGrad,
				&pickle.Reduce{Callable: orderedDict, Args: Tuple{}}, // backward hooks
			},
		}
		c.tensors[v] = r
		return r, nil
	case *Dict:
		if v == nil {
			return nil, fmt.Errorf("%s: nil *Dict", pathName(path))
		}
		if d, ok := c.dicts[v]; ok {
			return d, nil
		}
		d := &pickle.Dict{Ordered: v.Ordered}
		c.dicts[v] = d
		for _, e := range v.Entries() {
			if _, isTensor := e.Key.(*Tensor); isTensor {
				return nil, fmt.Errorf("%s: a tensor cannot be a dict key", pathName(path))
			}
			w, err := c.convert(e.Value, joinPath(path, e.Key), depth+1)
			if err != nil {
				return nil, err
			}
			if err := d.Set(e.Key, w); err != nil {
				return nil, fmt.Errorf("%s: %w", pathName(path), err)
			}
		}
		if v.State != nil {
			st, err := c.convert(v.State, joinPath(path, "__dict__"), depth+1)
			if err != nil {
				return nil, err
			}
			d.State = st
		}
		return d, nil
	case map[string]any:
		d := NewDict()
		for _, k := range sortedKeys(v) {
			d.Set(k, v[k]) // cannot fail: strings are hashable
		}
		return c.convert(d, path, depth)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			w, err := c.convert(e, joinPath(path, i), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = w
		}
		return out, nil
	case Tuple:
		out := make(Tuple, len(v))
		for i, e := range v {
			w, err := c.convert(e, joinPath(path, i), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = w
		}
		return out, nil
	case []*Tensor:
		return c.convert(anySlice(v), path, depth)
	case []string:
		return anySlice(v), nil
	case []int:
		return anySlice(v), nil
	case []int64:
		return anySlice(v), nil
	case []float32:
		return anySlice(v), nil
	case []float64:
		return anySlice(v), nil
	case []bool:
		return anySlice(v), nil
	}
	return nil, fmt.Errorf("%s: cannot save a value of type %T", pathName(path), v)
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

// ModelState returns the model weights in a loaded checkpoint: v itself when
// it is a bare state_dict (a dict whose values are all tensors, as
// torch.save(model.state_dict(), path) writes), or the dict held under
// "model", "state_dict" or "model_state_dict".
func ModelState(v any) (*Dict, error) {
	d, ok := v.(*Dict)
	if !ok {
		return nil, fmt.Errorf("checkpoints: checkpoint is a %T, not a dict", v)
	}
	for _, key := range []string{"model", "state_dict", "model_state_dict"} {
		if m, ok := d.Get(key); ok {
			if md, ok := m.(*Dict); ok {
				return md, nil
			}
		}
	}
	if d.Len() == 0 {
		return nil, errors.New("checkpoints: checkpoint is an empty dict")
	}
	for _, e := range d.Entries() {
		if _, ok := e.Value.(*Tensor); !ok {
			return nil, fmt.Errorf("checkpoints: no state_dict: no \"model\", \"state_dict\" or \"model_state_dict\" entry, and entry %v is a %T, not a tensor", e.Key, e.Value)
		}
	}
	return d, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
