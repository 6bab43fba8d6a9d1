package pickle

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"reflect"
	"sort"
	"strings"
	"unicode/utf8"
)

// Reduce is a value that the Encoder writes as a call: Callable (usually a
// Global) applied to Args with REDUCE, then, when State is not nil, BUILD
// with State. A *Reduce written twice is written once and referenced after.
type Reduce struct {
	Callable any
	Args     Tuple
	State    any
}

// An Encoder writes protocol 2 pickles to an output stream.
//
// It writes nil, bools, Go integers and *big.Int, float32 and float64,
// strings (which must be valid UTF-8), []byte, Tuple, []any, []string,
// []int, []int64, []float64, *Dict (an OrderedDict when Ordered), maps with
// string keys (as dicts with sorted keys), *Set, Global and *Reduce. Dicts,
// sets, lists, Reduce values and persistent objects are memoized, so a value
// reached twice is written once and referenced after, and cycles through
// them are preserved.
type Encoder struct {
	// PersistentID, when not nil, is asked about every value before it is
	// written. When it returns ok, the Encoder writes pid followed by
	// BINPERSID instead of the value.
	PersistentID func(v any) (pid any, ok bool)

	w    *bufio.Writer
	memo map[any]int
}

// NewEncoder returns an Encoder writing to w.
func NewEncoder(w io.Writer) *Encoder {
	return &Encoder{w: bufio.NewWriter(w)}
}

// Marshal returns the protocol 2 pickle of v.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := NewEncoder(&buf).Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Encode writes the pickle of v, a complete pickle ending in STOP; each
// call starts a new memo. After an error, part of the pickle may have been
// written and the Encoder should not be used again.
func (e *Encoder) Encode(v any) error {
	e.memo = make(map[any]int)
	defer func() { e.memo = nil }()
	e.w.Write([]byte{opProto, 2})
	if err := e.save(v, 0); err != nil {
		return fmt.Errorf("pickle: %w", err)
	}
	e.w.WriteByte(opStop)
	if err := e.w.Flush(); err != nil {
		return fmt.Errorf("pickle: write: %w", err)
	}
	return nil
}

type sliceKey struct {
	first *any
	n     int
}

// identity returns a memo key for values that have an identity (pointers,
// non-empty []any), and false for values that do not.
func identity(v any) (any, bool) {
	switch v := v.(type) {
	case []any:
		if len(v) > 0 {
			return sliceKey{&v[0], len(v)}, true
		}
		return nil, false
	case Global:
		return v, true
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() {
		return v, true
	}
	return nil, false
}

func (e *Encoder) memoize(key any) {
	i := len(e.memo)
	e.memo[key] = i
	if i < 256 {
		e.w.Write([]byte{opBinPut, byte(i)})
		return
	}
	var b [5]byte
	b[0] = opLongBinPut
	binary.LittleEndian.PutUint32(b[1:], uint32(i))
	e.w.Write(b[:])
}

// fromMemo writes a reference to key's memo entry, when there is one.
func (e *Encoder) fromMemo(key any) bool {
	i, ok := e.memo[key]
	if !ok {
		return false
	}
	if i < 256 {
		e.w.Write([]byte{opBinGet, byte(i)})
	} else {
		var b [5]byte
		b[0] = opLongBinGet
		binary.LittleEndian.PutUint32(b[1:], uint32(i))
		e.w.Write(b[:])
	}
	return true
}

// save writes v: as a persistent ID when PersistentID claims it, else by
// its kind.
func (e *Encoder) save(v any, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	if e.PersistentID != nil {
		if pid, ok := e.PersistentID(v); ok {
			return e.savePersistent(v, pid, depth)
		}
	}
	if ok, err := e.saveScalar(v); ok {
		return err
	}
	return e.saveComposite(v, depth)
}

// savePersistent writes pid and BINPERSID in place of v, or a reference to
// the memo when v, having an identity, was written before.
func (e *Encoder) savePersistent(v, pid any, depth int) error {
	key, hasID := identity(v)
	if hasID && e.fromMemo(key) {
		return nil
	}
	if err := e.save(pid, depth+1); err != nil {
		return err
	}
	e.w.WriteByte(opBinPersID)
	if hasID {
		e.memoize(key)
	}
	return nil
}

// saveScalar writes v when it is None, a bool, a number, a string or bytes,
// and reports whether it was one of those.
func (e *Encoder) saveScalar(v any) (ok bool, err error) {
	switch v := v.(type) {
	case nil:
		e.w.WriteByte(opNone)
	case bool:
		if v {
			e.w.WriteByte(opNewTrue)
		} else {
			e.w.WriteByte(opNewFalse)
		}
	case int, int8, int16, int32, int64, uint8, uint16, uint32, uint, uint64, *big.Int:
		return true, e.saveInteger(v)
	case float32:
		e.saveFloat(float64(v))
	case float64:
		e.saveFloat(v)
	case string:
		return true, e.saveString(v)
	case []byte:
		return true, e.saveBytes(v)
	default:
		return false, nil
	}
	return true, nil
}

// saveInteger writes a Go integer or a *big.Int.
func (e *Encoder) saveInteger(v any) error {
	switch v := v.(type) {
	case int:
		e.saveInt(int64(v))
	case int8:
		e.saveInt(int64(v))
	case int16:
		e.saveInt(int64(v))
	case int32:
		e.saveInt(int64(v))
	case int64:
		e.saveInt(v)
	case uint8:
		e.saveInt(int64(v))
	case uint16:
		e.saveInt(int64(v))
	case uint32:
		e.saveInt(int64(v))
	case uint:
		e.saveBig(new(big.Int).SetUint64(uint64(v)))
	case uint64:
		e.saveBig(new(big.Int).SetUint64(v))
	case *big.Int:
		if v == nil {
			return errors.New("cannot encode a nil *big.Int")
		}
		e.saveBig(v)
	}
	return nil
}

// saveComposite writes tuples, lists, dicts, sets, globals and reductions.
func (e *Encoder) saveComposite(v any, depth int) error {
	switch v := v.(type) {
	case Tuple:
		return e.saveTuple(v, depth)
	case []any:
		return e.saveList(v, depth)
	case []string:
		return e.saveList(anySlice(v), depth)
	case []int:
		return e.saveList(anySlice(v), depth)
	case []int64:
		return e.saveList(anySlice(v), depth)
	case []float64:
		return e.saveList(anySlice(v), depth)
	case *Dict:
		if v == nil {
			return errors.New("cannot encode a nil *Dict")
		}
		return e.saveDict(v, depth)
	case map[string]any:
		return e.saveDict(sortedDict(v), depth)
	case *Set:
		if v == nil {
			return errors.New("cannot encode a nil *Set")
		}
		return e.saveSet(v, depth)
	case Global:
		return e.saveGlobal(v)
	case *Reduce:
		return e.saveReduce(v, depth)
	}
	return fmt.Errorf("cannot encode a value of type %T", v)
}

// sortedDict is m as a Dict with its keys in sorted order.
func sortedDict(m map[string]any) *Dict {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	d := &Dict{}
	for _, k := range keys {
		d.Set(k, m[k]) // cannot fail: strings are hashable
	}
	return d
}

func anySlice[T any](s []T) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func (e *Encoder) saveInt(n int64) {
	switch {
	case n >= 0 && n <= 0xff:
		e.w.Write([]byte{opBinInt1, byte(n)})
	case n >= 0 && n <= 0xffff:
		e.w.Write([]byte{opBinInt2, byte(n), byte(n >> 8)})
	case n >= math.MinInt32 && n <= math.MaxInt32:
		var b [5]byte
		b[0] = opBinInt
		binary.LittleEndian.PutUint32(b[1:], uint32(int32(n)))
		e.w.Write(b[:])
	default:
		e.saveBig(big.NewInt(n))
	}
}

// saveBig writes n with LONG1 or LONG4 in the minimal little-endian two's
// complement form, as Python's encode_long does.
func (e *Encoder) saveBig(n *big.Int) {
	if n.IsInt64() && n.Int64() >= math.MinInt32 && n.Int64() <= math.MaxInt32 {
		e.saveInt(n.Int64())
		return
	}
	b := encodeLong(n)
	if len(b) < 256 {
		e.w.Write([]byte{opLong1, byte(len(b))})
	} else {
		var h [5]byte
		h[0] = opLong4
		binary.LittleEndian.PutUint32(h[1:], uint32(len(b)))
		e.w.Write(h[:])
	}
	e.w.Write(b)
}

func encodeLong(n *big.Int) []byte {
	if n.Sign() == 0 {
		return nil
	}
	nbytes := n.BitLen()/8 + 1
	v := new(big.Int).Set(n)
	if n.Sign() < 0 {
		v.Add(v, new(big.Int).Lsh(big.NewInt(1), uint(8*nbytes)))
	}
	be := v.FillBytes(make([]byte, nbytes))
	le := make([]byte, nbytes)
	for i, c := range be {
		le[nbytes-1-i] = c
	}
	if n.Sign() < 0 && nbytes > 1 && le[nbytes-1] == 0xff && le[nbytes-2]&0x80 != 0 {
		le = le[:nbytes-1]
	}
	return le
}

func (e *Encoder) saveFloat(f float64) {
	var b [9]byte
	b[0] = opBinFloat
	binary.BigEndian.PutUint64(b[1:], math.Float64bits(f))
	e.w.Write(b[:])
}

func (e *Encoder) saveString(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("string %.40q is not valid UTF-8", s)
	}
	if uint64(len(s)) > math.MaxUint32 {
		return fmt.Errorf("string of %d bytes is too long for protocol 2", len(s))
	}
	var b [5]byte
	b[0] = opBinUnicode
	binary.LittleEndian.PutUint32(b[1:], uint32(len(s)))
	e.w.Write(b[:])
	e.w.WriteString(s)
	return nil
}

// saveBytes writes bytes as Python 3 does at protocol 2: bytes() when
// empty, else _codecs.encode(latin1_text, "latin1").
func (e *Encoder) saveBytes(b []byte) error {
	if len(b) == 0 {
		e.saveGlobal(Global{"__builtin__", "bytes"})
		e.w.WriteByte(opEmptyTuple)
		e.w.WriteByte(opReduce)
		return nil
	}
	e.saveGlobal(Global{"_codecs", "encode"})
	var text strings.Builder
	text.Grow(len(b) * 2)
	for _, c := range b {
		text.WriteRune(rune(c))
	}
	if err := e.saveString(text.String()); err != nil {
		return err
	}
	e.saveString("latin1")
	e.w.WriteByte(opTuple2)
	e.w.WriteByte(opReduce)
	return nil
}

func (e *Encoder) saveTuple(t Tuple, depth int) error {
	if len(t) == 0 {
		e.w.WriteByte(opEmptyTuple)
		return nil
	}
	if len(t) > 3 {
		e.w.WriteByte(opMark)
	}
	for _, it := range t {
		if err := e.save(it, depth+1); err != nil {
			return err
		}
	}
	if len(t) > 3 {
		e.w.WriteByte(opTuple)
	} else {
		e.w.WriteByte(opTuple1 + byte(len(t)-1))
	}
	return nil
}

// batchSize is how many items one APPENDS or SETITEMS carries, as in
// Python's pickler.
const batchSize = 1000

func (e *Encoder) saveList(l []any, depth int) error {
	key, hasID := identity(l)
	if hasID && e.fromMemo(key) {
		return nil
	}
	e.w.WriteByte(opEmptyList)
	if hasID {
		e.memoize(key)
	}
	for start := 0; start < len(l); start += batchSize {
		batch := l[start:min(start+batchSize, len(l))]
		if len(batch) > 1 {
			e.w.WriteByte(opMark)
		}
		for _, it := range batch {
			if err := e.save(it, depth+1); err != nil {
				return err
			}
		}
		if len(batch) > 1 {
			e.w.WriteByte(opAppends)
		} else {
			e.w.WriteByte(opAppend)
		}
	}
	return nil
}

func (e *Encoder) saveDict(d *Dict, depth int) error {
	if e.fromMemo(d) {
		return nil
	}
	if d.Ordered {
		if err := e.saveGlobal(Global{"collections", "OrderedDict"}); err != nil {
			return err
		}
		e.w.WriteByte(opEmptyTuple)
		e.w.WriteByte(opReduce)
	} else {
		e.w.WriteByte(opEmptyDict)
	}
	e.memoize(d)
	for start := 0; start < len(d.entries); start += batchSize {
		batch := d.entries[start:min(start+batchSize, len(d.entries))]
		if len(batch) > 1 {
			e.w.WriteByte(opMark)
		}
		for _, it := range batch {
			if err := e.save(it.Key, depth+1); err != nil {
				return err
			}
			if err := e.save(it.Value, depth+1); err != nil {
				return err
			}
		}
		if len(batch) > 1 {
			e.w.WriteByte(opSetItems)
		} else {
			e.w.WriteByte(opSetItem)
		}
	}
	if d.State != nil {
		if err := e.save(d.State, depth+1); err != nil {
			return err
		}
		e.w.WriteByte(opBuild)
	}
	return nil
}

func (e *Encoder) saveSet(s *Set, depth int) error {
	if e.fromMemo(s) {
		return nil
	}
	name := "set"
	if s.Frozen {
		name = "frozenset"
	}
	e.saveGlobal(Global{"__builtin__", name})
	if err := e.saveList(append([]any(nil), s.items...), depth+1); err != nil {
		return err
	}
	e.w.WriteByte(opTuple1)
	e.w.WriteByte(opReduce)
	e.memoize(s)
	return nil
}

func (e *Encoder) saveGlobal(g Global) error {
	if e.fromMemo(g) {
		return nil
	}
	if g.Module == "" || g.Name == "" || strings.ContainsAny(g.Module+g.Name, "\n\r") {
		return fmt.Errorf("bad global %q", g.String())
	}
	e.w.WriteByte(opGlobal)
	e.w.WriteString(g.Module + "\n" + g.Name + "\n")
	e.memoize(g)
	return nil
}

func (e *Encoder) saveReduce(r *Reduce, depth int) error {
	if r == nil {
		return errors.New("cannot encode a nil *Reduce")
	}
	if e.fromMemo(r) {
		return nil
	}
	if err := e.save(r.Callable, depth+1); err != nil {
		return err
	}
	if err := e.saveTuple(r.Args, depth+1); err != nil {
		return err
	}
	e.w.WriteByte(opReduce)
	e.memoize(r)
	if r.State != nil {
		if err := e.save(r.State, depth+1); err != nil {
			return err
		}
		e.w.WriteByte(opBuild)
	}
	return nil
}
