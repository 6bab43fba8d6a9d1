package pickle

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/big"
	"slices"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// Opcodes of pickle protocols 0 to 5.
const (
	opMark           = '('
	opStop           = '.'
	opPop            = '0'
	opPopMark        = '1'
	opDup            = '2'
	opFloat          = 'F'
	opInt            = 'I'
	opBinInt         = 'J'
	opBinInt1        = 'K'
	opLong           = 'L'
	opBinInt2        = 'M'
	opNone           = 'N'
	opPersID         = 'P'
	opBinPersID      = 'Q'
	opReduce         = 'R'
	opString         = 'S'
	opBinString      = 'T'
	opShortBinString = 'U'
	opUnicode        = 'V'
	opBinUnicode     = 'X'
	opAppend         = 'a'
	opBuild          = 'b'
	opGlobal         = 'c'
	opDict           = 'd'
	opEmptyDict      = '}'
	opAppends        = 'e'
	opGet            = 'g'
	opBinGet         = 'h'
	opInst           = 'i'
	opLongBinGet     = 'j'
	opList           = 'l'
	opEmptyList      = ']'
	opObj            = 'o'
	opPut            = 'p'
	opBinPut         = 'q'
	opLongBinPut     = 'r'
	opSetItem        = 's'
	opTuple          = 't'
	opEmptyTuple     = ')'
	opSetItems       = 'u'
	opBinFloat       = 'G'

	// Protocol 2.
	opProto    = 0x80
	opNewObj   = 0x81
	opExt1     = 0x82
	opExt2     = 0x83
	opExt4     = 0x84
	opTuple1   = 0x85
	opTuple2   = 0x86
	opTuple3   = 0x87
	opNewTrue  = 0x88
	opNewFalse = 0x89
	opLong1    = 0x8a
	opLong4    = 0x8b

	// Protocol 3.
	opBinBytes      = 'B'
	opShortBinBytes = 'C'

	// Protocol 4.
	opShortBinUnicode = 0x8c
	opBinUnicode8     = 0x8d
	opBinBytes8       = 0x8e
	opEmptySet        = 0x8f
	opAddItems        = 0x90
	opFrozenSet       = 0x91
	opNewObjEx        = 0x92
	opStackGlobal     = 0x93
	opMemoize         = 0x94
	opFrame           = 0x95

	// Protocol 5.
	opByteArray8     = 0x96
	opNextBuffer     = 0x97
	opReadonlyBuffer = 0x98
)

// HighestProtocol is the newest pickle protocol the Decoder reads.
const HighestProtocol = 5

var opNames = map[byte]string{
	opMark: "MARK", opStop: "STOP", opPop: "POP", opPopMark: "POP_MARK", opDup: "DUP",
	opFloat: "FLOAT", opInt: "INT", opBinInt: "BININT", opBinInt1: "BININT1", opLong: "LONG",
	opBinInt2: "BININT2", opNone: "NONE", opPersID: "PERSID", opBinPersID: "BINPERSID",
	opReduce: "REDUCE", opString: "STRING", opBinString: "BINSTRING",
	opShortBinString: "SHORT_BINSTRING", opUnicode: "UNICODE", opBinUnicode: "BINUNICODE",
	opAppend: "APPEND", opBuild: "BUILD", opGlobal: "GLOBAL", opDict: "DICT",
	opEmptyDict: "EMPTY_DICT", opAppends: "APPENDS", opGet: "GET", opBinGet: "BINGET",
	opInst: "INST", opLongBinGet: "LONG_BINGET", opList: "LIST", opEmptyList: "EMPTY_LIST",
	opObj: "OBJ", opPut: "PUT", opBinPut: "BINPUT", opLongBinPut: "LONG_BINPUT",
	opSetItem: "SETITEM", opTuple: "TUPLE", opEmptyTuple: "EMPTY_TUPLE", opSetItems: "SETITEMS",
	opBinFloat: "BINFLOAT", opProto: "PROTO", opNewObj: "NEWOBJ", opExt1: "EXT1",
	opExt2: "EXT2", opExt4: "EXT4", opTuple1: "TUPLE1", opTuple2: "TUPLE2", opTuple3: "TUPLE3",
	opNewTrue: "NEWTRUE", opNewFalse: "NEWFALSE", opLong1: "LONG1", opLong4: "LONG4",
	opBinBytes: "BINBYTES", opShortBinBytes: "SHORT_BINBYTES",
	opShortBinUnicode: "SHORT_BINUNICODE", opBinUnicode8: "BINUNICODE8",
	opBinBytes8: "BINBYTES8", opEmptySet: "EMPTY_SET", opAddItems: "ADDITEMS",
	opFrozenSet: "FROZENSET", opNewObjEx: "NEWOBJ_EX", opStackGlobal: "STACK_GLOBAL",
	opMemoize: "MEMOIZE", opFrame: "FRAME", opByteArray8: "BYTEARRAY8",
	opNextBuffer: "NEXT_BUFFER", opReadonlyBuffer: "READONLY_BUFFER",
}

// maxDepth bounds the nesting of containers the Decoder and Encoder walk.
const maxDepth = 5000

// maxIntDigits bounds decimal integer literals (Python's own default limit).
const maxIntDigits = 4300

var errTooDeep = fmt.Errorf("containers nested more than %d deep", maxDepth)

// python2Modules maps Python 2 module names to their Python 3 names, as
// Python's own Unpickler does with fix_imports.
var python2Modules = map[string]string{
	"__builtin__": "builtins",
	"copy_reg":    "copyreg",
}

// pyList is a list while it is being decoded: APPEND after the list was
// memoized must change the memoized list too, which a Go slice cannot do.
// Decode turns every pyList into a []any before returning.
type pyList struct {
	items []any
}

type byteReader interface {
	io.Reader
	io.ByteReader
}

// A Decoder reads pickles from an input stream.
type Decoder struct {
	// Globals is the allow-list that GLOBAL, STACK_GLOBAL and INST
	// resolve through; a name it lacks is a *ForbiddenError. Nil allows
	// nothing.
	Globals Globals
	// PersistentLoad returns the object for a persistent id (PERSID,
	// BINPERSID). Nil makes persistent ids an error.
	PersistentLoad func(pid any) (any, error)
	// Records, when set, decides which globals outside Globals decode as
	// record classes (*Class) instead of a *ForbiddenError: NEWOBJ and
	// NEWOBJ_EX instantiate one as an inert *Object, which BUILD,
	// SETITEM(S) and APPEND(S) fill; calling one (REDUCE, INST, OBJ) is a
	// *ForbiddenError.
	Records func(Global) bool

	r     byteReader
	pos   int64        // bytes consumed from r
	avail func() int64 // bytes known to be left in r; nil when unknown

	opPos     int64
	stack     []any
	metastack [][]any
	memo      map[int64]any
	lists     map[*pyList][]any
}

// NewDecoder returns a Decoder reading from r. If r does not implement
// io.ByteReader it is wrapped in a bufio.Reader, and the Decoder may read
// past the end of a pickle; give it a *bufio.Reader to read other data that
// follows a pickle. When r can tell how many bytes it holds (bytes.Reader,
// strings.Reader, bytes.Buffer, os.File), a length field that overruns the
// input is reported before any memory is allocated for it.
func NewDecoder(r io.Reader) *Decoder {
	d := &Decoder{}
	if br, ok := r.(byteReader); ok {
		d.r = br
	} else {
		d.r = bufio.NewReader(r)
	}
	switch s := r.(type) {
	case interface{ Len() int }:
		d.avail = func() int64 { return int64(s.Len()) }
	case interface {
		Stat() (fs.FileInfo, error)
		io.Seeker
	}:
		if fi, err := s.Stat(); err == nil && fi.Mode().IsRegular() {
			if cur, err := s.Seek(0, io.SeekCurrent); err == nil {
				left := fi.Size() - cur
				d.avail = func() int64 { return left - d.pos }
			}
		}
	}
	return d
}

// Unmarshal decodes the single pickle in data, resolving globals through
// globals. Bytes after the pickle's STOP opcode are an error.
func Unmarshal(data []byte, globals Globals) (any, error) {
	r := bytes.NewReader(data)
	d := NewDecoder(r)
	d.Globals = globals
	v, err := d.Decode()
	if err != nil {
		return nil, err
	}
	if r.Len() > 0 {
		return nil, fmt.Errorf("pickle: %d bytes after STOP at offset %d", r.Len(), d.pos)
	}
	return v, nil
}

// Decode reads the next pickle from the input and returns its value. It
// returns io.EOF when the input is at its end before the pickle starts.
func (d *Decoder) Decode() (any, error) {
	d.stack = d.stack[:0]
	d.metastack = d.metastack[:0]
	d.memo = make(map[int64]any)
	d.lists = make(map[*pyList][]any)
	defer func() {
		// Drop references so that a Decoder kept around does not pin the
		// decoded values.
		d.stack, d.metastack, d.memo, d.lists = nil, nil, nil, nil
	}()
	start := d.pos
	for {
		d.opPos = d.pos
		op, err := d.readByte()
		if err != nil {
			if d.pos == start && errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("pickle: offset %d: %w", d.opPos, err)
		}
		if op == opStop {
			top, err := d.pop()
			if err == nil {
				top, err = d.finish(top)
			}
			if err != nil {
				return nil, d.opError(op, err)
			}
			return top, nil
		}
		if err := d.step(op); err != nil {
			return nil, d.opError(op, err)
		}
	}
}

func (d *Decoder) opError(op byte, err error) error {
	name, ok := opNames[op]
	if !ok {
		return fmt.Errorf("pickle: offset %d: unknown opcode 0x%02x", d.opPos, op)
	}
	return fmt.Errorf("pickle: %s at offset %d: %w", name, d.opPos, err)
}

func (d *Decoder) step(op byte) error {
	switch op {
	case opProto:
		p, err := d.readByte()
		if err != nil {
			return err
		}
		if p > HighestProtocol {
			return fmt.Errorf("unsupported pickle protocol %d", p)
		}
	case opFrame:
		// Frames only group opcodes for buffering; the length is a hint.
		if _, err := d.readUint(8); err != nil {
			return err
		}
	case opMark:
		d.metastack = append(d.metastack, d.stack)
		d.stack = nil
	case opPop:
		if len(d.stack) > 0 {
			d.stack = d.stack[:len(d.stack)-1]
			return nil
		}
		_, err := d.popMark()
		return err
	case opPopMark:
		_, err := d.popMark()
		return err
	case opDup:
		top, err := d.top()
		if err != nil {
			return err
		}
		d.push(top)

	case opNone:
		d.push(nil)
	case opNewTrue:
		d.push(true)
	case opNewFalse:
		d.push(false)
	case opInt:
		line, err := d.readLine()
		if err != nil {
			return err
		}
		switch string(line) {
		case "01":
			d.push(true)
		case "00":
			d.push(false)
		default:
			n, err := parseInt(line)
			if err != nil {
				return err
			}
			d.push(n)
		}
	case opLong:
		line, err := d.readLine()
		if err != nil {
			return err
		}
		line = bytes.TrimSuffix(line, []byte("L"))
		n, err := parseInt(line)
		if err != nil {
			return err
		}
		d.push(n)
	case opBinInt:
		u, err := d.readUint(4)
		if err != nil {
			return err
		}
		d.push(int64(int32(uint32(u))))
	case opBinInt1:
		u, err := d.readUint(1)
		if err != nil {
			return err
		}
		d.push(int64(u))
	case opBinInt2:
		u, err := d.readUint(2)
		if err != nil {
			return err
		}
		d.push(int64(u))
	case opLong1, opLong4:
		size := 1
		if op == opLong4 {
			size = 4
		}
		u, err := d.readUint(size)
		if err != nil {
			return err
		}
		n := int64(u)
		if op == opLong4 {
			n = int64(int32(uint32(u)))
			if n < 0 {
				return fmt.Errorf("negative byte count %d", n)
			}
		}
		b, err := d.read(n)
		if err != nil {
			return err
		}
		d.push(decodeLong(b))
	case opFloat:
		line, err := d.readLine()
		if err != nil {
			return err
		}
		f, err := strconv.ParseFloat(string(line), 64)
		if err != nil {
			return fmt.Errorf("bad float %q", line)
		}
		d.push(f)
	case opBinFloat:
		u, err := d.read(8)
		if err != nil {
			return err
		}
		d.push(math.Float64frombits(binary.BigEndian.Uint64(u)))

	case opString:
		line, err := d.readLine()
		if err != nil {
			return err
		}
		s, err := unquotePython2(line)
		if err != nil {
			return err
		}
		d.push(s)
	case opBinString, opShortBinString, opBinUnicode, opShortBinUnicode, opBinUnicode8:
		b, err := d.readCounted(op)
		if err != nil {
			return err
		}
		d.push(bytesToString(b))
	case opUnicode:
		line, err := d.readLine()
		if err != nil {
			return err
		}
		s, err := decodeRawUnicodeEscape(line)
		if err != nil {
			return err
		}
		d.push(s)
	case opBinBytes, opShortBinBytes, opBinBytes8, opByteArray8:
		b, err := d.readCounted(op)
		if err != nil {
			return err
		}
		d.push(b)
	case opNextBuffer:
		return errors.New("out-of-band buffers are not supported")
	case opReadonlyBuffer:
		_, err := d.top()
		return err

	case opEmptyTuple:
		d.push(Tuple{})
	case opTuple1, opTuple2, opTuple3:
		n := int(op-opTuple1) + 1
		if len(d.stack) < n {
			return errors.New("stack underflow")
		}
		t := make(Tuple, n)
		copy(t, d.stack[len(d.stack)-n:])
		d.stack = append(d.stack[:len(d.stack)-n], t)
	case opTuple:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		d.push(Tuple(items))
	case opEmptyList:
		d.push(&pyList{})
	case opList:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		d.push(&pyList{items: items})
	case opAppend:
		v, err := d.pop()
		if err != nil {
			return err
		}
		return d.appendItems([]any{v})
	case opAppends:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		return d.appendItems(items)
	case opEmptyDict:
		d.push(&Dict{})
	case opDict:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		dict := &Dict{}
		if err := setItems(dict, items); err != nil {
			return err
		}
		d.push(dict)
	case opSetItem:
		if len(d.stack) < 3 {
			return errors.New("stack underflow")
		}
		n := len(d.stack)
		if err := setItemsOf(d.stack[n-3], d.stack[n-2:]); err != nil {
			return err
		}
		d.stack = d.stack[:n-2]
	case opSetItems:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		top, err := d.top()
		if err != nil {
			return err
		}
		return setItemsOf(top, items)
	case opEmptySet:
		d.push(&Set{})
	case opAddItems:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		top, err := d.top()
		if err != nil {
			return err
		}
		s, ok := top.(*Set)
		if !ok || s.Frozen {
			return fmt.Errorf("cannot add items to %s", typeName(top))
		}
		for _, it := range items {
			if err := s.Add(it); err != nil {
				return err
			}
		}
	case opFrozenSet:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		s, err := NewSet(items...)
		if err != nil {
			return err
		}
		s.Frozen = true
		d.push(s)

	case opPut:
		line, err := d.readLine()
		if err != nil {
			return err
		}
		i, err := strconv.ParseInt(string(line), 10, 64)
		if err != nil || i < 0 {
			return fmt.Errorf("bad memo index %q", line)
		}
		return d.put(i)
	case opBinPut, opLongBinPut:
		size := 1
		if op == opLongBinPut {
			size = 4
		}
		i, err := d.readUint(size)
		if err != nil {
			return err
		}
		return d.put(int64(i))
	case opMemoize:
		return d.put(int64(len(d.memo)))
	case opGet:
		line, err := d.readLine()
		if err != nil {
			return err
		}
		i, err := strconv.ParseInt(string(line), 10, 64)
		if err != nil {
			return fmt.Errorf("bad memo index %q", line)
		}
		return d.get(i)
	case opBinGet, opLongBinGet:
		size := 1
		if op == opLongBinGet {
			size = 4
		}
		i, err := d.readUint(size)
		if err != nil {
			return err
		}
		return d.get(int64(i))

	case opGlobal, opInst:
		module, err := d.readLine()
		if err != nil {
			return err
		}
		name, err := d.readLine()
		if err != nil {
			return err
		}
		g, err := d.global(string(module), string(name))
		if err != nil {
			return err
		}
		if op == opGlobal {
			d.push(g)
			return nil
		}
		args, err := d.popMark()
		if err != nil {
			return err
		}
		return d.call(g, args)
	case opStackGlobal:
		if len(d.stack) < 2 {
			return errors.New("stack underflow")
		}
		n := len(d.stack)
		module, ok1 := d.stack[n-2].(string)
		name, ok2 := d.stack[n-1].(string)
		if !ok1 || !ok2 {
			return errors.New("module and name must be strings")
		}
		d.stack = d.stack[:n-2]
		g, err := d.global(module, name)
		if err != nil {
			return err
		}
		d.push(g)
	case opExt1, opExt2, opExt4:
		return errors.New("extension registry codes are not supported")
	case opReduce:
		args, err := d.pop()
		if err != nil {
			return err
		}
		t, ok := args.(Tuple)
		if !ok {
			return fmt.Errorf("arguments must be a tuple, not %s", typeName(args))
		}
		f, err := d.pop()
		if err != nil {
			return err
		}
		return d.call(f, t)
	case opNewObj, opNewObjEx:
		if op == opNewObjEx {
			kw, err := d.pop()
			if err != nil {
				return err
			}
			if kd, ok := kw.(*Dict); !ok || kd.Len() > 0 {
				return errors.New("keyword arguments are not supported")
			}
		}
		args, err := d.pop()
		if err != nil {
			return err
		}
		t, ok := args.(Tuple)
		if !ok {
			return fmt.Errorf("arguments must be a tuple, not %s", typeName(args))
		}
		cls, err := d.pop()
		if err != nil {
			return err
		}
		if c, ok := cls.(*Class); ok {
			return d.newObject(c, t)
		}
		return d.call(cls, t)
	case opObj:
		items, err := d.popMark()
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return errors.New("stack underflow")
		}
		return d.call(items[0], items[1:])
	case opBuild:
		state, err := d.pop()
		if err != nil {
			return err
		}
		top, err := d.top()
		if err != nil {
			return err
		}
		s, ok := top.(SetStater)
		if !ok {
			return fmt.Errorf("cannot BUILD %s", typeName(top))
		}
		state, err = d.finish(state)
		if err != nil {
			return err
		}
		return s.SetState(state)
	case opPersID:
		line, err := d.readLine()
		if err != nil {
			return err
		}
		return d.persistentLoad(string(line))
	case opBinPersID:
		pid, err := d.pop()
		if err != nil {
			return err
		}
		return d.persistentLoad(pid)
	default:
		return errors.New("unknown opcode")
	}
	return nil
}

func (d *Decoder) push(v any) { d.stack = append(d.stack, v) }

func (d *Decoder) pop() (any, error) {
	if len(d.stack) == 0 {
		return nil, errors.New("stack underflow")
	}
	v := d.stack[len(d.stack)-1]
	d.stack = d.stack[:len(d.stack)-1]
	return v, nil
}

func (d *Decoder) top() (any, error) {
	if len(d.stack) == 0 {
		return nil, errors.New("stack underflow")
	}
	return d.stack[len(d.stack)-1], nil
}

// appendItems implements APPEND and APPENDS on the list (or list
// subclass record) on top of the stack.
func (d *Decoder) appendItems(items []any) error {
	top, err := d.top()
	if err != nil {
		return err
	}
	switch l := top.(type) {
	case *pyList:
		l.items = append(l.items, items...)
	case *Object:
		l.List = append(l.List, items...)
	default:
		return fmt.Errorf("cannot append to %s", typeName(top))
	}
	return nil
}

func (d *Decoder) popMark() ([]any, error) {
	if len(d.metastack) == 0 {
		return nil, errors.New("no MARK on the stack")
	}
	items := d.stack
	d.stack = d.metastack[len(d.metastack)-1]
	d.metastack = d.metastack[:len(d.metastack)-1]
	return items, nil
}

func (d *Decoder) put(i int64) error {
	top, err := d.top()
	if err != nil {
		return err
	}
	d.memo[i] = top
	return nil
}

func (d *Decoder) get(i int64) error {
	v, ok := d.memo[i]
	if !ok {
		return fmt.Errorf("memo has no entry %d", i)
	}
	d.push(v)
	return nil
}

// setItemsOf implements SETITEM and SETITEMS on a dict (or a dict
// subclass record).
func setItemsOf(target any, items []any) error {
	switch t := target.(type) {
	case *Dict:
		return setItems(t, items)
	case *Object:
		return t.setItems(items)
	}
	return fmt.Errorf("cannot set items of %s", typeName(target))
}

func setItems(dict *Dict, items []any) error {
	if len(items)%2 != 0 {
		return errors.New("odd number of items for a dict")
	}
	for i := 0; i < len(items); i += 2 {
		if err := dict.Set(items[i], items[i+1]); err != nil {
			return err
		}
	}
	return nil
}

func (d *Decoder) global(module, name string) (any, error) {
	g := Global{module, name}
	if v, ok := d.Globals[g]; ok {
		return v, nil
	}
	if m, ok := python2Modules[module]; ok {
		if v, ok := d.Globals[Global{m, name}]; ok {
			return v, nil
		}
	}
	return d.record(g)
}

func (d *Decoder) call(f any, args Tuple) error {
	c, ok := f.(Callable)
	if !ok {
		return callError(f)
	}
	fa, err := d.finish(args)
	if err != nil {
		return err
	}
	v, err := c.Call(fa.(Tuple))
	if err != nil {
		return err
	}
	d.push(v)
	return nil
}

func (d *Decoder) persistentLoad(pid any) error {
	if d.PersistentLoad == nil {
		return errors.New("persistent id found but the Decoder has no PersistentLoad")
	}
	pid, err := d.finish(pid)
	if err != nil {
		return err
	}
	v, err := d.PersistentLoad(pid)
	if err != nil {
		return err
	}
	d.push(v)
	return nil
}

// finish replaces the lists being decoded (*pyList) inside v by []any,
// keeping shared lists shared and cyclic lists cyclic.
func (d *Decoder) finish(v any) (any, error) {
	f := finisher{lists: d.lists, tuples: make(map[*any]bool), dicts: make(map[*Dict]bool), objects: make(map[*Object]bool)}
	return f.walk(v, 0)
}

type finisher struct {
	lists   map[*pyList][]any // shared by all calls of one Decode
	tuples  map[*any]bool     // visited tuples, by first element
	dicts   map[*Dict]bool
	objects map[*Object]bool
}

func (f *finisher) walk(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	switch v := v.(type) {
	case *pyList:
		if out, ok := f.lists[v]; ok {
			return out, nil
		}
		out := make([]any, len(v.items))
		f.lists[v] = out
		for i, it := range v.items {
			w, err := f.walk(it, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = w
		}
		return out, nil
	case []any:
		// A list that an earlier call finished, elements included.
		return v, nil
	case Tuple:
		if len(v) == 0 || f.tuples[&v[0]] {
			return v, nil
		}
		f.tuples[&v[0]] = true
		for i, it := range v {
			w, err := f.walk(it, depth+1)
			if err != nil {
				return nil, err
			}
			v[i] = w
		}
	case *Dict:
		if f.dicts[v] {
			return v, nil
		}
		f.dicts[v] = true
		for i := range v.entries {
			w, err := f.walk(v.entries[i].Value, depth+1)
			if err != nil {
				return nil, err
			}
			v.entries[i].Value = w
		}
		st, err := f.walk(v.State, depth+1)
		if err != nil {
			return nil, err
		}
		v.State = st
	case *Object:
		return v, f.walkObject(v, depth)
	}
	return v, nil
}

// walkObject finishes a record's state and items.
func (f *finisher) walkObject(o *Object, depth int) error {
	if f.objects[o] {
		return nil
	}
	f.objects[o] = true
	parts := []*any{&o.State}
	for i := range o.List {
		parts = append(parts, &o.List[i])
	}
	for _, p := range parts {
		w, err := f.walk(*p, depth+1)
		if err != nil {
			return err
		}
		*p = w
	}
	if o.Items != nil {
		_, err := f.walk(o.Items, depth+1)
		return err
	}
	return nil
}

func (d *Decoder) readByte() (byte, error) {
	b, err := d.r.ReadByte()
	if err != nil {
		return 0, noEOF(err)
	}
	d.pos++
	return b, nil
}

// readUint reads an n-byte little-endian unsigned integer.
func (d *Decoder) readUint(n int) (uint64, error) {
	var buf [8]byte
	m, err := io.ReadFull(d.r, buf[:n])
	d.pos += int64(m)
	if err != nil {
		return 0, noEOF(err)
	}
	return binary.LittleEndian.Uint64(buf[:]), nil
}

// readCounted reads the length-prefixed payload of a string or bytes opcode.
func (d *Decoder) readCounted(op byte) ([]byte, error) {
	var size int
	switch op {
	case opShortBinString, opShortBinUnicode, opShortBinBytes:
		size = 1
	case opBinString, opBinUnicode, opBinBytes:
		size = 4
	default:
		size = 8
	}
	u, err := d.readUint(size)
	if err != nil {
		return nil, err
	}
	n := int64(u)
	if op == opBinString {
		n = int64(int32(uint32(u)))
	}
	if u > math.MaxInt64 || n < 0 {
		return nil, fmt.Errorf("byte count %d out of range", u)
	}
	return d.read(n)
}

const readChunk = 1 << 20

// read reads exactly n bytes. When the input's size is unknown, it grows the
// buffer as data arrives, so that a corrupt length cannot allocate far more
// memory than the input holds.
func (d *Decoder) read(n int64) ([]byte, error) {
	if n < 0 || uint64(n) > math.MaxInt {
		return nil, fmt.Errorf("byte count %d out of range", n)
	}
	if d.avail != nil {
		if left := d.avail(); n > left {
			return nil, fmt.Errorf("needs %d bytes, input has %d: %w", n, left, io.ErrUnexpectedEOF)
		}
	}
	if d.avail != nil || n <= readChunk {
		buf := make([]byte, n)
		m, err := io.ReadFull(d.r, buf)
		d.pos += int64(m)
		if err != nil {
			return nil, noEOF(err)
		}
		return buf, nil
	}
	buf := make([]byte, 0, readChunk)
	for int64(len(buf)) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, int(min(int64(len(buf)), n-int64(len(buf)))))
		}
		end := int(min(int64(cap(buf)), n))
		m, err := io.ReadFull(d.r, buf[len(buf):end])
		buf = buf[:len(buf)+m]
		d.pos += int64(m)
		if err != nil {
			return nil, noEOF(err)
		}
	}
	return buf, nil
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF: input ending inside a pickle
// is always truncated.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readLine reads up to and including the next newline and returns the line
// without it (and without a carriage return before it).
func (d *Decoder) readLine() ([]byte, error) {
	var line []byte
	for {
		b, err := d.readByte()
		if err != nil {
			return nil, err
		}
		if b == '\n' {
			return bytes.TrimSuffix(line, []byte("\r")), nil
		}
		line = append(line, b)
	}
}

// bytesToString returns b as a string without copying; b must not change
// afterwards.
func bytesToString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// parseInt parses a decimal integer literal of the text protocol.
func parseInt(s []byte) (any, error) {
	if n, err := strconv.ParseInt(string(s), 10, 64); err == nil {
		return n, nil
	}
	if len(s) > maxIntDigits {
		return nil, fmt.Errorf("integer literal of %d digits exceeds the limit of %d", len(s), maxIntDigits)
	}
	b, ok := new(big.Int).SetString(string(s), 10)
	if !ok {
		return nil, fmt.Errorf("bad integer %q", s)
	}
	return normalizeInt(b), nil
}

// normalizeInt returns b as an int64 when it fits.
func normalizeInt(b *big.Int) any {
	if b.IsInt64() {
		return b.Int64()
	}
	return b
}

// decodeLong decodes a little-endian two's complement integer (LONG1, LONG4).
func decodeLong(b []byte) any {
	if len(b) == 0 {
		return int64(0)
	}
	if len(b) <= 8 {
		var u uint64
		for i := len(b) - 1; i >= 0; i-- {
			u = u<<8 | uint64(b[i])
		}
		shift := uint(64 - 8*len(b))
		return int64(u<<shift) >> shift
	}
	be := make([]byte, len(b))
	for i, c := range b {
		be[len(b)-1-i] = c
	}
	n := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return normalizeInt(n)
}

// unquotePython2 decodes the quoted repr of a Python 2 str (STRING opcode)
// into its raw bytes, held in a Go string.
func unquotePython2(line []byte) (string, error) {
	if len(line) < 2 || (line[0] != '\'' && line[0] != '"') || line[len(line)-1] != line[0] {
		return "", fmt.Errorf("STRING argument %q is not quoted", line)
	}
	s := line[1 : len(line)-1]
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			out = append(out, c)
			continue
		}
		i++
		switch c = s[i]; c {
		case '\\', '\'', '"':
			out = append(out, c)
		case 'a':
			out = append(out, '\a')
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'v':
			out = append(out, '\v')
		case 'x':
			if i+3 > len(s) {
				return "", fmt.Errorf("truncated \\x escape in %q", line)
			}
			v, err := strconv.ParseUint(string(s[i+1:i+3]), 16, 8)
			if err != nil {
				return "", fmt.Errorf("bad \\x escape in %q", line)
			}
			out = append(out, byte(v))
			i += 2
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := 0
			j := i
			for ; j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '7'; j++ {
				v = v*8 + int(s[j]-'0')
			}
			out = append(out, byte(v))
			i = j - 1
		default:
			out = append(out, '\\', c)
		}
	}
	return string(out), nil
}

// decodeRawUnicodeEscape decodes Python's raw-unicode-escape codec (the
// UNICODE opcode): \uXXXX and \UXXXXXXXX escapes, other bytes are Latin-1.
func decodeRawUnicodeEscape(s []byte) (string, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U') {
			n := 4
			if s[i+1] == 'U' {
				n = 8
			}
			if i+2+n > len(s) {
				return "", fmt.Errorf("truncated \\%c escape", s[i+1])
			}
			v, err := strconv.ParseUint(string(s[i+2:i+2+n]), 16, 32)
			if err != nil || v > utf8.MaxRune {
				return "", fmt.Errorf("bad \\%c escape %q", s[i+1], s[i:i+2+n])
			}
			out = utf8.AppendRune(out, rune(v))
			i += 1 + n
			continue
		}
		out = utf8.AppendRune(out, rune(c))
	}
	return string(out), nil
}
