package torchfmt

import (
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"

	"github.com/gsrmt/gsrmt/internal/pickle"
)

// Globals the writer names.
var (
	rebuildTensorV2 = pickle.Global{Module: "torch._utils", Name: "_rebuild_tensor_v2"}
	orderedDict     = pickle.Global{Module: "collections", Name: "OrderedDict"}
)

// toPickle converts a tree into values for the pickle Encoder: each *Tensor
// becomes a _rebuild_tensor_v2 call over its *Storage, which the Encoder's
// PersistentID turns into a storage persistent id.
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

// convert converts v, found at path, depth containers deep.
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
		return c.tensor(v, path)
	case *Dict:
		return c.dict(v, path, depth)
	case map[string]any:
		d := NewDict()
		for _, k := range slices.Sorted(maps.Keys(v)) {
			d.Set(k, v[k]) // cannot fail: strings are hashable
		}
		return c.convert(d, path, depth)
	case []any:
		return c.items(v, path, depth)
	case Tuple:
		out, err := c.items(v, path, depth)
		return Tuple(out), err
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

// tensor converts a tensor into its rebuild call, once however often the
// tree holds it.
func (c *toPickle) tensor(v *Tensor, path string) (*pickle.Reduce, error) {
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
}

// dict converts a dict, its entries and its __dict__ state, once however
// often the tree holds it.
func (c *toPickle) dict(v *Dict, path string, depth int) (*pickle.Dict, error) {
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
}

// items converts the items of a list or tuple into a new slice.
func (c *toPickle) items(v []any, path string, depth int) ([]any, error) {
	out := make([]any, len(v))
	for i, e := range v {
		w, err := c.convert(e, joinPath(path, i), depth+1)
		if err != nil {
			return nil, err
		}
		out[i] = w
	}
	return out, nil
}
