package pickle

import (
	"fmt"
	"math/big"
	"strings"
	"unicode/utf8"
)

// BasicGlobals returns stand-ins for the Python globals that pickles of
// plain data use:
//
//   - collections.OrderedDict, called with nothing, a list of pairs or a
//     dict; the result is a *Dict with Ordered set.
//   - codecs.encode and _codecs.encode, which Python 3 uses at protocols 0 to
//     2 to pickle bytes: encode(str, "latin1") gives a []byte.
//   - builtins.bytes, builtins.bytearray, builtins.set and builtins.frozenset
//     (Python 2's __builtin__ module maps to builtins).
func BasicGlobals() Globals {
	return Globals{
		{"collections", "OrderedDict"}: Func(newOrderedDict),
		{"codecs", "encode"}:           Func(codecsEncode),
		{"_codecs", "encode"}:          Func(codecsEncode),
		{"builtins", "bytes"}:          Func(newBytes),
		{"builtins", "bytearray"}:      Func(newBytes),
		{"builtins", "set"}:            Func(func(args Tuple) (any, error) { return newSet(args, false) }),
		{"builtins", "frozenset"}:      Func(func(args Tuple) (any, error) { return newSet(args, true) }),
	}
}

func newOrderedDict(args Tuple) (any, error) {
	d := NewOrderedDict()
	if len(args) == 0 {
		return d, nil
	}
	if len(args) > 1 {
		return nil, fmt.Errorf("OrderedDict takes at most 1 argument, got %d", len(args))
	}
	switch src := args[0].(type) {
	case *Dict:
		for _, e := range src.entries {
			if err := d.Set(e.Key, e.Value); err != nil {
				return nil, err
			}
		}
	case []any:
		for _, it := range src {
			var pair []any
			switch p := it.(type) {
			case []any:
				pair = p
			case Tuple:
				pair = p
			}
			if len(pair) != 2 {
				return nil, fmt.Errorf("OrderedDict item must be a pair, not %s", typeName(it))
			}
			if err := d.Set(pair[0], pair[1]); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("cannot make an OrderedDict from %s", typeName(args[0]))
	}
	return d, nil
}

// codecsEncode implements codecs.encode(obj, encoding="utf-8") for str.
func codecsEncode(args Tuple) (any, error) {
	if len(args) < 1 || len(args) > 3 {
		return nil, fmt.Errorf("encode takes 1 to 3 arguments, got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("encode: cannot encode %s", typeName(args[0]))
	}
	encoding := "utf-8"
	if len(args) > 1 {
		if encoding, ok = args[1].(string); !ok {
			return nil, fmt.Errorf("encode: encoding must be a str, not %s", typeName(args[1]))
		}
	}
	return encodeString(s, encoding)
}

func encodeString(s, encoding string) ([]byte, error) {
	switch strings.ReplaceAll(strings.ToLower(encoding), "_", "-") {
	case "latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1":
		out := make([]byte, 0, utf8.RuneCountInString(s))
		for i, r := range s {
			if r > 0xff { // also catches invalid UTF-8, decoded as U+FFFD
				return nil, fmt.Errorf("encode: character %U at byte %d is not Latin-1", r, i)
			}
			out = append(out, byte(r))
		}
		return out, nil
	case "utf-8", "utf8":
		return []byte(s), nil
	case "ascii", "us-ascii":
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return nil, fmt.Errorf("encode: byte 0x%02x at %d is not ASCII", s[i], i)
			}
		}
		return []byte(s), nil
	}
	return nil, fmt.Errorf("encode: unsupported encoding %q", encoding)
}

// newBytes implements bytes() and bytearray() for the arguments that
// pickles use: nothing, bytes, a list of ints, or a str and an encoding.
func newBytes(args Tuple) (any, error) {
	switch len(args) {
	case 0:
		return []byte{}, nil
	case 1:
		switch v := args[0].(type) {
		case []byte:
			return v, nil
		case []any:
			out := make([]byte, len(v))
			for i, it := range v {
				n, ok := it.(int64)
				if !ok || n < 0 || n > 255 {
					return nil, fmt.Errorf("bytes: element %d is not in range(256)", i)
				}
				out[i] = byte(n)
			}
			return out, nil
		}
	case 2:
		s, ok1 := args[0].(string)
		enc, ok2 := args[1].(string)
		if ok1 && ok2 {
			return encodeString(s, enc)
		}
	}
	return nil, fmt.Errorf("bytes: unsupported arguments %s", describeArgs(args))
}

func newSet(args Tuple, frozen bool) (any, error) {
	s := &Set{Frozen: frozen}
	if len(args) == 0 {
		return s, nil
	}
	if len(args) > 1 {
		return nil, fmt.Errorf("set takes at most 1 argument, got %d", len(args))
	}
	var items []any
	switch v := args[0].(type) {
	case []any:
		items = v
	case Tuple:
		items = v
	case *Set:
		items = v.items
	default:
		return nil, fmt.Errorf("cannot make a set from %s", typeName(args[0]))
	}
	for _, it := range items {
		if err := s.Add(it); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// describeArgs lists the Python types of args, for error messages.
func describeArgs(args Tuple) string {
	names := make([]string, len(args))
	for i, a := range args {
		names[i] = typeName(a)
	}
	return "(" + strings.Join(names, ", ") + ")"
}

// toInt returns v as an int64 when it is a Python int (or bool) that fits.
func toInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	case *big.Int:
		if v.IsInt64() {
			return v.Int64(), true
		}
	}
	return 0, false
}

// toInts returns a tuple or list of ints as []int64.
func toInts(v any) ([]int64, bool) {
	var items []any
	switch v := v.(type) {
	case Tuple:
		items = v
	case []any:
		items = v
	default:
		return nil, false
	}
	out := make([]int64, len(items))
	for i, it := range items {
		n, ok := toInt(it)
		if !ok {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// toBytes returns the raw bytes of a bytes value or a Python 2 str.
func toBytes(v any) ([]byte, bool) {
	switch v := v.(type) {
	case []byte:
		return v, true
	case string:
		return []byte(v), true
	}
	return nil, false
}
