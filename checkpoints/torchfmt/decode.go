package torchfmt

import (
	"fmt"
	"strings"

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

// notRecords are the top-level modules whose names never decode as records
// (Object): those whose members run code or reach the system (a pickle
// naming them is refused outright, whatever opcode uses the name), and
// those whose data classes the allow-list already names (torch, numpy,
// collections, codecs, copyreg), where an unknown name is unsupported, not
// a record.
var notRecords = []string{
	"builtins", "__builtin__", "os", "posix", "nt", "sys", "subprocess", "shutil", "socket", "io", "_io",
	"importlib", "runpy", "pickle", "_pickle", "marshal", "code", "codeop", "ctypes", "types", "functools",
	"operator", "pty", "signal", "threading", "multiprocessing", "asyncio", "webbrowser", "tempfile",
	"torch", "numpy", "collections", "codecs", "_codecs", "copyreg", "copy_reg",
}

// isRecordClass is the readers' Records policy: a class outside the
// allow-list reads as an inert record (pickle.Object), such as the
// argparse.Namespace of timm's and DeiT's checkpoints or Swin's yacs
// CfgNode, unless its module is in notRecords. Calling such a class is
// refused by the decoder whatever its module.
func isRecordClass(g pickle.Global) bool {
	top, _, _ := strings.Cut(g.Module, ".")
	for _, m := range notRecords {
		if top == m {
			return false
		}
	}
	return g.Module != "" && g.Name != ""
}

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
	case *Object:
		return v, c.walkObject(v, path, depth)
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

// walkObject converts the tensors a record holds, so that a tree holds
// *Tensor values only, wherever they are.
func (c *fromPickle) walkObject(o *Object, path string, depth int) error {
	if c.seen[o] {
		return nil
	}
	c.seen[o] = true
	st, err := c.walk(o.State, path, depth+1)
	if err != nil {
		return err
	}
	o.State = st
	if o.Items != nil {
		if _, err := c.walk(o.Items, path, depth+1); err != nil {
			return err
		}
	}
	if err := c.walkItems(o.Args, path, depth); err != nil {
		return err
	}
	return c.walkItems(o.List, path, depth)
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
