package torchfmt

import (
	"fmt"

	"github.com/gsrmt/gsrmt/internal/pickle"
)

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

func (c *fromPickle) walk(v any, path string, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%s: containers nested more than %d deep", pathName(path), maxDepth)
	}
	switch v := v.(type) {
	case *pickle.TorchTensor:
		return c.tensor(v, path)
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
		return v, c.walkItems(v, path, depth)
	case Tuple:
		return v, c.walkItems(v, path, depth)
	case storageRef:
		return nil, fmt.Errorf("%s: a bare storage is not supported", pathName(path))
	}
	return v, nil
}

// walkItems converts the items of a list or tuple in place.
func (c *fromPickle) walkItems(items []any, path string, depth int) error {
	if len(items) == 0 || c.seen[&items[0]] {
		return nil
	}
	c.seen[&items[0]] = true
	for i, e := range items {
		w, err := c.walk(e, joinPath(path, i), depth+1)
		if err != nil {
			return err
		}
		items[i] = w
	}
	return nil
}

// tensor converts a decoded tensor, once however often the pickle names it.
func (c *fromPickle) tensor(v *pickle.TorchTensor, path string) (*Tensor, error) {
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
}
