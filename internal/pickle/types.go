// Package pickle reads and writes Python pickles holding plain data.
//
// The Decoder understands every opcode of pickle protocols 0 to 5 that plain
// data needs, but it never imports anything: a GLOBAL (or STACK_GLOBAL, INST)
// reference resolves only through the caller's allow-list, a Globals map from
// (module, name) to a Go value standing in for the Python one. A name outside
// the allow-list is an error (a *ForbiddenError), so decoding untrusted input
// runs no code. BasicGlobals, NumpyGlobals and TorchGlobals provide stand-ins
// for collections.OrderedDict, codecs.encode and the builtins that plain
// data uses, for numpy arrays, and for PyTorch tensors.
//
// A Decoder with a Records policy also reads instances of other classes,
// such as the argparse.Namespace and yacs CfgNode objects that training
// scripts save next to their weights, as inert *Object records; calling
// such a class stays forbidden.
//
// Decoded values use these Go types:
//
//	None                   nil
//	bool                   bool
//	int                    int64, or *big.Int when it does not fit
//	float                  float64
//	str (and Python 2 str) string (Python 2 str keeps its raw bytes)
//	bytes, bytearray       []byte
//	list                   []any
//	tuple                  Tuple
//	dict, OrderedDict      *Dict (keys kept in insertion order)
//	set, frozenset         *Set
//
// The Encoder writes protocol 2 pickles of the same types, plus Global
// references and Reduce calls, with persistent ids for objects stored
// outside the pickle.
package pickle

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Tuple is a Python tuple.
type Tuple []any

// Global names a Python module-level object, such as collections.OrderedDict.
type Global struct {
	Module, Name string
}

// String returns the dotted name, such as "collections.OrderedDict".
func (g Global) String() string { return g.Module + "." + g.Name }

// Globals is an allow-list of Python globals. Each entry maps a global to the
// Go value a pickle gets when it names it; a value that REDUCE, NEWOBJ, OBJ or
// INST calls must implement Callable.
type Globals map[Global]any

// MergeGlobals returns a new Globals holding the entries of all gs; later
// maps win for a global present in several.
func MergeGlobals(gs ...Globals) Globals {
	out := make(Globals)
	for _, g := range gs {
		for k, v := range g {
			out[k] = v
		}
	}
	return out
}

// Callable is implemented by stand-ins for Python callables. The Decoder calls
// Call for REDUCE, and for NEWOBJ, NEWOBJ_EX, OBJ and INST, which create an
// instance of a class: for plain data a class and its constructor coincide.
type Callable interface {
	Call(args Tuple) (any, error)
}

// Func adapts a Go function to Callable.
type Func func(args Tuple) (any, error)

// Call calls f(args).
func (f Func) Call(args Tuple) (any, error) { return f(args) }

// SetStater is implemented by decoded objects that accept BUILD, the opcode
// that restores an object's state after it was created.
type SetStater interface {
	SetState(state any) error
}

// ForbiddenError reports a global reference that the allow-list lacks, or a
// call of a record class (see Decoder.Records).
type ForbiddenError struct {
	Global Global
	// Reason says why, when there is more to say than that the allow-list
	// lacks the name.
	Reason string
}

func (e *ForbiddenError) Error() string {
	msg := "class " + e.Global.String() + " is not allowed"
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// DictEntry is one key-value pair of a Dict.
type DictEntry struct {
	Key, Value any
}

// Dict is a Python dict or collections.OrderedDict. It keeps keys in
// insertion order. Keys follow Python's equality: 1, 1.0 and True are the
// same key, and str and bytes keys differ. Valid keys are nil, bools,
// integers, floats, strings, []byte, Tuples of valid keys and comparable Go
// values such as pointers. The zero value is an empty dict ready to use.
type Dict struct {
	// Ordered is true for a collections.OrderedDict; the Encoder writes
	// such a Dict back as an OrderedDict.
	Ordered bool
	// State is the attribute dict (a *Dict) that BUILD gave an OrderedDict,
	// such as the _metadata of a PyTorch state_dict; nil when none.
	State any

	entries []DictEntry
	index   map[any]int
}

// NewDict returns an empty dict.
func NewDict() *Dict { return &Dict{} }

// NewOrderedDict returns an empty collections.OrderedDict.
func NewOrderedDict() *Dict { return &Dict{Ordered: true} }

// Len returns the number of entries.
func (d *Dict) Len() int { return len(d.entries) }

// Get returns the value stored under key and whether it was present.
func (d *Dict) Get(key any) (any, bool) {
	k, err := hashKey(key)
	if err != nil {
		return nil, false
	}
	i, ok := d.index[k]
	if !ok {
		return nil, false
	}
	return d.entries[i].Value, true
}

// Set stores value under key. A key already present keeps its position (and
// its original key object, as in Python). It fails only for an unhashable key.
func (d *Dict) Set(key, value any) error {
	k, err := hashKey(key)
	if err != nil {
		return err
	}
	if i, ok := d.index[k]; ok {
		d.entries[i].Value = value
		return nil
	}
	if d.index == nil {
		d.index = make(map[any]int)
	}
	d.index[k] = len(d.entries)
	d.entries = append(d.entries, DictEntry{key, value})
	return nil
}

// Delete removes key and reports whether it was present.
func (d *Dict) Delete(key any) bool {
	k, err := hashKey(key)
	if err != nil {
		return false
	}
	i, ok := d.index[k]
	if !ok {
		return false
	}
	delete(d.index, k)
	d.entries = append(d.entries[:i], d.entries[i+1:]...)
	for j := i; j < len(d.entries); j++ {
		kj, _ := hashKey(d.entries[j].Key) // hashable: it was hashed on insertion
		d.index[kj] = j
	}
	return true
}

// Keys returns the keys in insertion order.
func (d *Dict) Keys() []any {
	keys := make([]any, len(d.entries))
	for i, e := range d.entries {
		keys[i] = e.Key
	}
	return keys
}

// Entries returns the key-value pairs in insertion order. The slice is a
// copy; changing it does not change d.
func (d *Dict) Entries() []DictEntry {
	return append([]DictEntry(nil), d.entries...)
}

// SetState implements BUILD for an OrderedDict: the state's attributes are
// kept in State. Plain dicts, like Python's, have no attributes to set.
func (d *Dict) SetState(state any) error {
	if !d.Ordered {
		return fmt.Errorf("cannot BUILD a dict")
	}
	parts := []any{state}
	if t, ok := state.(Tuple); ok && len(t) == 2 {
		parts = t // (state, slotstate)
	}
	for _, p := range parts {
		switch p := p.(type) {
		case nil:
		case *Dict:
			if cur, ok := d.State.(*Dict); ok {
				for _, e := range p.entries {
					if err := cur.Set(e.Key, e.Value); err != nil {
						return err
					}
				}
			} else {
				d.State = p
			}
		default:
			return fmt.Errorf("cannot BUILD an OrderedDict from %s", typeName(state))
		}
	}
	return nil
}

// Set is a Python set or frozenset; it keeps elements in insertion order.
// Elements follow the same rules as Dict keys. The zero value is an empty
// set ready to use.
type Set struct {
	// Frozen is true for a frozenset.
	Frozen bool

	items []any
	index map[any]int
}

// NewSet returns a set holding items.
func NewSet(items ...any) (*Set, error) {
	s := &Set{}
	for _, it := range items {
		if err := s.Add(it); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Add adds v; it fails only when v is unhashable.
func (s *Set) Add(v any) error {
	k, err := hashKey(v)
	if err != nil {
		return err
	}
	if _, ok := s.index[k]; ok {
		return nil
	}
	if s.index == nil {
		s.index = make(map[any]int)
	}
	s.index[k] = len(s.items)
	s.items = append(s.items, v)
	return nil
}

// Has reports whether v is in the set.
func (s *Set) Has(v any) bool {
	k, err := hashKey(v)
	if err != nil {
		return false
	}
	_, ok := s.index[k]
	return ok
}

// Len returns the number of elements.
func (s *Set) Len() int { return len(s.items) }

// Items returns the elements in insertion order, as a new slice.
func (s *Set) Items() []any { return append([]any(nil), s.items...) }

// Comparable stand-ins for Python values used as map keys.
type (
	noneKey  struct{}
	bytesKey string
	bigKey   string
	tupleKey string
)

// maxKeyBytes bounds the text built for a tuple key, so that a pickle of
// tuples nested as a DAG cannot make hashing take exponential time.
const maxKeyBytes = 64 << 10

// hashKey maps a Python-hashable value to a comparable Go value such that
// two values are equal as Python dict keys exactly when their hash keys are
// equal.
func hashKey(v any) (any, error) {
	switch v := v.(type) {
	case nil:
		return noneKey{}, nil
	case bool:
		if v {
			return int64(1), nil
		}
		return int64(0), nil
	case int64:
		return v, nil
	case int:
		return int64(v), nil
	case *big.Int:
		if v.IsInt64() {
			return v.Int64(), nil
		}
		return bigKey(v.Text(16)), nil
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<63 {
			return int64(v), nil
		}
		return v, nil
	case string:
		return v, nil
	case []byte:
		return bytesKey(v), nil
	case Tuple:
		var b strings.Builder
		if err := writeTupleKey(&b, v, 0); err != nil {
			return nil, err
		}
		return tupleKey(b.String()), nil
	case *Set:
		if v.Frozen {
			// Equal frozensets are equal keys whatever their order.
			parts := make([]string, len(v.items))
			for i, it := range v.items {
				var b strings.Builder
				if err := writeTupleKey(&b, Tuple{it}, 0); err != nil {
					return nil, err
				}
				parts[i] = b.String()
			}
			sort.Strings(parts)
			return tupleKey("frozenset" + strings.Join(parts, "")), nil
		}
		return nil, errors.New("unhashable type: set")
	case *pyList, []any, *Dict:
		return nil, fmt.Errorf("unhashable type: %s", typeName(v))
	}
	if reflect.ValueOf(v).Comparable() {
		return v, nil // compared by identity (pointers) or by value
	}
	return nil, fmt.Errorf("unhashable type: %s", typeName(v))
}

func writeTupleKey(b *strings.Builder, t Tuple, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	b.WriteByte('(')
	for i, e := range t {
		if i > 0 {
			b.WriteByte(',')
		}
		if et, ok := e.(Tuple); ok {
			if err := writeTupleKey(b, et, depth+1); err != nil {
				return err
			}
		} else {
			k, err := hashKey(e)
			if err != nil {
				return err
			}
			switch k := k.(type) {
			case noneKey:
				b.WriteString("N")
			case int64:
				b.WriteString("i" + strconv.FormatInt(k, 10))
			case float64:
				b.WriteString("f" + strconv.FormatFloat(k, 'g', -1, 64))
			case string:
				b.WriteString("s" + strconv.Quote(k))
			case bytesKey:
				b.WriteString("b" + strconv.Quote(string(k)))
			case bigKey:
				b.WriteString("n" + string(k))
			default:
				fmt.Fprintf(b, "o%T:%#v", k, k)
			}
		}
		if b.Len() > maxKeyBytes {
			return fmt.Errorf("tuple key longer than %d bytes", maxKeyBytes)
		}
	}
	b.WriteByte(')')
	return nil
}

// typeName names the Python type of a decoded value, for error messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case []any, *pyList:
		return "list"
	case Tuple:
		return "tuple"
	case *Dict:
		return "dict"
	case *Set:
		return "set"
	case *Object:
		return v.(*Object).Class.String() + " object"
	case *Class:
		return "class " + v.(*Class).Global.String()
	}
	return fmt.Sprintf("%T", v)
}
