package checkpoints

import (
	"fmt"
	"math"
	"math/big"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/sugarme/gotch/ts"
)

// The plain-value codec between Go values and the trees torchfmt writes:
// plainValue encodes any Go value of plain data (structs included) for
// saving, plainDict and fromLoaded normalize what the reader returns, and
// decodePlain fills a typed value (a section struct) from it.

// maxDepth bounds the nesting of the values plainValue converts.
const maxDepth = 1000

// at names the value at a dotted path in an error message.
func at(path string) string {
	if path == "" {
		return "top-level value"
	}
	return strconv.Quote(path)
}

// sub extends a dotted path by a key or an index.
func sub(path string, key any) string {
	if path == "" {
		return fmt.Sprint(key)
	}
	return fmt.Sprintf("%s.%v", path, key)
}

// fieldKey is the key of a struct field in a checkpoint: its json name, or
// its Go name without a json tag; "" for a field that is not stored
// (unexported, or tagged "-").
func fieldKey(f reflect.StructField) string {
	tag := f.Tag.Get("json")
	if tag == "-" || !f.IsExported() {
		return ""
	}
	if name, _, _ := strings.Cut(tag, ","); name != "" {
		return name
	}
	return f.Name
}

// structKeys are the keys of the stored fields of struct type t, in field
// order.
func structKeys(t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if k := fieldKey(t.Field(i)); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// plainValue converts a caller's value into the values torchfmt.Save
// accepts (dicts, lists, strings, numbers, booleans, None, tensors): any
// integer type becomes int64 (*big.Int beyond int64), float32 float64,
// []byte a uint8 tensor, a libtorch tensor a checkpoint tensor, maps with
// string keys dicts (keys sorted), structs dicts (fields under fieldKey, in
// field order, json's omitempty honoured) and slices of any element type
// lists.
func plainValue(v any, path string, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%s: nested more than %d deep", at(path), maxDepth)
	}
	switch x := v.(type) {
	case nil, string, bool, int64, float64, *Tensor, *Dict, *big.Int:
		return v, nil
	case float32:
		return float64(x), nil
	case []byte:
		t, err := NewTensor(Uint8, []int64{int64(len(x))}, append([]byte(nil), x...))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at(path), err)
		}
		return t, nil
	case *ts.Tensor:
		t, err := FromTorchTensor(x)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at(path), err)
		}
		return t, nil
	case Tuple:
		out, err := plainList(reflect.ValueOf([]any(x)), path, depth)
		return Tuple(out), err
	}
	return plainReflect(reflect.ValueOf(v), path, depth)
}

// plainReflect is plainValue for the values told apart by their kind.
func plainReflect(rv reflect.Value, path string, depth int) (any, error) {
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return new(big.Int).SetUint64(u), nil
		}
		return int64(u), nil
	case reflect.Float32, reflect.Float64:
		return rv.Float(), nil
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.String:
		return rv.String(), nil
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil, nil
		}
		return plainValue(rv.Elem().Interface(), path, depth+1)
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return []any{}, nil
		}
		return plainList(rv, path, depth)
	case reflect.Map:
		return plainMapDict(rv, path, depth)
	case reflect.Struct:
		return plainStruct(rv, path, depth)
	}
	return nil, fmt.Errorf("%s: cannot save a value of type %v", at(path), rv.Type())
}

// plainList converts the items of a slice or array.
func plainList(rv reflect.Value, path string, depth int) ([]any, error) {
	out := make([]any, rv.Len())
	for i := range out {
		w, err := plainValue(rv.Index(i).Interface(), sub(path, i), depth+1)
		if err != nil {
			return nil, err
		}
		out[i] = w
	}
	return out, nil
}

// plainMapDict converts a map with string keys into a dict, keys sorted.
func plainMapDict(rv reflect.Value, path string, depth int) (*Dict, error) {
	if rv.Type().Key().Kind() != reflect.String {
		return nil, fmt.Errorf("%s: map keys must be strings, not %v", at(path), rv.Type().Key())
	}
	keys := make([]string, 0, rv.Len())
	for _, k := range rv.MapKeys() {
		keys = append(keys, k.String())
	}
	sort.Strings(keys)
	d := NewDict()
	for _, k := range keys {
		w, err := plainValue(rv.MapIndex(reflect.ValueOf(k).Convert(rv.Type().Key())).Interface(), sub(path, k), depth+1)
		if err != nil {
			return nil, err
		}
		d.Set(k, w) // cannot fail: strings are hashable
	}
	return d, nil
}

// plainStruct converts a struct into a dict of its stored fields.
func plainStruct(rv reflect.Value, path string, depth int) (*Dict, error) {
	d := NewDict()
	t := rv.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := fieldKey(f)
		if key == "" || (strings.Contains(f.Tag.Get("json"), ",omitempty") && rv.Field(i).IsZero()) {
			continue
		}
		w, err := plainValue(rv.Field(i).Interface(), sub(path, key), depth+1)
		if err != nil {
			return nil, err
		}
		d.Set(key, w) // cannot fail: strings are hashable
	}
	return d, nil
}

// plainDict converts a loaded dict (or nil) into map[string]any, nested
// dicts with string keys included; a dict with other keys stays a *Dict.
func plainDict(v any, path string) (map[string]any, error) {
	if v == nil {
		return nil, nil
	}
	switch d := v.(type) {
	case map[string]any:
		return d, nil
	case *Dict:
		out := make(map[string]any, d.Len())
		for _, e := range d.Entries() {
			k, ok := e.Key.(string)
			if !ok {
				return nil, fmt.Errorf("%s: key %v is a %T, not a string", at(path), e.Key, e.Key)
			}
			out[k] = fromLoaded(e.Value)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s is a %T, not a dict", at(path), v)
}

func fromLoaded(v any) any {
	switch v := v.(type) {
	case *Dict:
		if m, err := plainDict(v, ""); err == nil {
			return m
		}
		return v
	case []any:
		return fromLoadedItems(v)
	case Tuple:
		return fromLoadedItems(v)
	}
	return v
}

func fromLoadedItems(items []any) []any {
	out := make([]any, len(items))
	for i, e := range items {
		out[i] = fromLoaded(e)
	}
	return out
}

// decodePlain sets dst from v, a plain value as the reader returns it or
// encoding/json decodes it: a struct from a dict (each stored field from
// its key, or its Go name as the JSON of older files has it; absent keys
// leave the field as it is, unknown keys are ignored), a slice from a list,
// integers from integers (or integral floats, as JSON gives them), floats
// from numbers (None is NaN, as JSON's null was written for it), strings
// and bools from themselves; a pointer is set to a new value, or nil from
// None.
func decodePlain(v any, dst reflect.Value, path string) error {
	switch dst.Kind() {
	case reflect.Pointer:
		if v == nil {
			dst.SetZero()
			return nil
		}
		p := reflect.New(dst.Type().Elem())
		if err := decodePlain(v, p.Elem(), path); err != nil {
			return err
		}
		dst.Set(p)
		return nil
	case reflect.Struct:
		return decodeStruct(v, dst, path)
	case reflect.Slice:
		return decodeSlice(v, dst, path)
	case reflect.String, reflect.Bool:
		x := reflect.ValueOf(v)
		if v == nil || x.Kind() != dst.Kind() {
			return fmt.Errorf("%s is a %T, not a %v", at(path), v, dst.Kind())
		}
		dst.Set(x.Convert(dst.Type()))
		return nil
	}
	return decodeNumber(v, dst, path)
}

func decodeStruct(v any, dst reflect.Value, path string) error {
	m, err := plainDict(v, path)
	if err != nil {
		return err
	}
	t := dst.Type()
	for i := 0; i < t.NumField(); i++ {
		key := fieldKey(t.Field(i))
		if key == "" {
			continue
		}
		x, ok := m[key]
		if !ok {
			x, ok = m[t.Field(i).Name]
		}
		if !ok {
			continue
		}
		if err := decodePlain(x, dst.Field(i), sub(path, key)); err != nil {
			return err
		}
	}
	return nil
}

func decodeSlice(v any, dst reflect.Value, path string) error {
	var items []any
	switch x := v.(type) {
	case nil:
		dst.SetZero()
		return nil
	case []any:
		items = x
	case Tuple:
		items = x
	default:
		return fmt.Errorf("%s is a %T, not a list", at(path), v)
	}
	s := reflect.MakeSlice(dst.Type(), len(items), len(items))
	for i, x := range items {
		if err := decodePlain(x, s.Index(i), sub(path, i)); err != nil {
			return err
		}
	}
	dst.Set(s)
	return nil
}

// decodeNumber sets an integer or float dst from v.
func decodeNumber(v any, dst reflect.Value, path string) error {
	var f float64
	var n *big.Int
	switch x := v.(type) {
	case int64:
		f, n = float64(x), big.NewInt(x)
	case *big.Int:
		f, _ = new(big.Float).SetInt(x).Float64()
		n = x
	case float64:
		f = x
		if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
			n = big.NewInt(int64(x))
		}
	case nil:
		f = math.NaN()
	default:
		return fmt.Errorf("%s is a %T (%v), not a number", at(path), v, v)
	}
	switch dst.Kind() {
	case reflect.Float32, reflect.Float64:
		dst.SetFloat(f)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n != nil && n.IsInt64() && !dst.OverflowInt(n.Int64()) {
			dst.SetInt(n.Int64())
			return nil
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		// Older files wrote a uint64 beyond int64 as a negative int64.
		if n != nil && n.IsInt64() && n.Sign() < 0 && dst.Kind() == reflect.Uint64 {
			n = new(big.Int).SetUint64(uint64(n.Int64()))
		}
		if n != nil && n.IsUint64() && !dst.OverflowUint(n.Uint64()) {
			dst.SetUint(n.Uint64())
			return nil
		}
	default:
		return fmt.Errorf("%s: cannot decode into a %v", at(path), dst.Type())
	}
	return fmt.Errorf("%s: %v is not a %v", at(path), v, dst.Type())
}
