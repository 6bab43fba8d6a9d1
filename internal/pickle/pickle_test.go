package pickle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"
)

// equal compares decoded values structurally, as Python's == would, but
// also requires equal Go types (so a Tuple differs from a list).
func equal(a, b any) bool {
	return equalDepth(a, b, 0)
}

func equalDepth(a, b any, depth int) bool {
	if depth > 100 {
		return true // cyclic values: assume equal below this depth
	}
	switch a := a.(type) {
	case *big.Int:
		bb, ok := b.(*big.Int)
		return ok && a.Cmp(bb) == 0
	case float64:
		bb, ok := b.(float64)
		return ok && (a == bb || (math.IsNaN(a) && math.IsNaN(bb)))
	case []byte:
		bb, ok := b.([]byte)
		return ok && bytes.Equal(a, bb)
	case Tuple:
		bb, ok := b.(Tuple)
		return ok && equalSlices(a, bb, depth)
	case []any:
		bb, ok := b.([]any)
		return ok && equalSlices(a, bb, depth)
	case *Dict:
		bb, ok := b.(*Dict)
		if !ok || a.Ordered != bb.Ordered || a.Len() != bb.Len() || !equalDepth(a.State, bb.State, depth+1) {
			return false
		}
		for i, e := range a.entries {
			f := bb.entries[i]
			if !equalDepth(e.Key, f.Key, depth+1) || !equalDepth(e.Value, f.Value, depth+1) {
				return false
			}
		}
		return true
	case *Set:
		bb, ok := b.(*Set)
		return ok && a.Frozen == bb.Frozen && equalSlices(a.items, bb.items, depth)
	}
	return reflect.DeepEqual(a, b)
}

func equalSlices(a, b []any, depth int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !equalDepth(a[i], b[i], depth+1) {
			return false
		}
	}
	return true
}

func newSetT(t testing.TB, frozen bool, items ...any) *Set {
	t.Helper()
	s, err := NewSet(items...)
	if err != nil {
		t.Fatal(err)
	}
	s.Frozen = frozen
	return s
}

func mustDict(t testing.TB, ordered bool, kv ...any) *Dict {
	t.Helper()
	d := &Dict{Ordered: ordered}
	for i := 0; i < len(kv); i += 2 {
		if err := d.Set(kv[i], kv[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func bigInt(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(s)
	}
	return n
}

// sampleValue is a value exercising every type the Encoder writes.
func sampleValue(t testing.TB, longLen int) any {
	t.Helper()
	set, err := NewSet(int64(1), "two", Tuple{int64(3), nil})
	if err != nil {
		t.Fatal(err)
	}
	frozen, _ := NewSet([]byte("x"))
	frozen.Frozen = true
	long := make([]any, longLen)
	for i := range long {
		long[i] = int64(i * i)
	}
	shared := mustDict(t, false, "shared", true)
	od := mustDict(t, true, "b", int64(1), "a", int64(2))
	od.State = mustDict(t, false, "_metadata", mustDict(t, true, "", mustDict(t, false, "version", int64(1))))
	return mustDict(t, false,
		"none", nil,
		"true", true,
		"false", false,
		"ints", []any{int64(0), int64(255), int64(256), int64(65535), int64(65536), int64(-1),
			int64(math.MaxInt32), int64(math.MinInt32), int64(math.MaxInt32 + 1), int64(math.MinInt32 - 1),
			int64(math.MaxInt64), int64(math.MinInt64), int64(-128), int64(-129), int64(128)},
		"bigs", []any{bigInt("1267650600228229401496703205376"), bigInt("-1267650600228229401496703205376"),
			bigInt("9223372036854775808"), bigInt("-9223372036854775809"), new(big.Int).Lsh(big.NewInt(1), 3000)},
		"floats", []any{0.0, math.Copysign(0, -1), 1.5, -2.25e-300, math.Inf(1), math.Inf(-1), math.NaN(), math.MaxFloat64},
		"strings", []any{"", "ascii", "ünïcödé ✓ 𝄞", "line\nbreak\\back\rslash\x00nul"},
		"bytes", []any{[]byte{}, []byte("raw\x00\xff\x80bytes")},
		"tuples", []any{Tuple{}, Tuple{int64(1)}, Tuple{int64(1), "2"}, Tuple{int64(1), "2", 3.0}, Tuple{int64(1), "2", 3.0, nil, Tuple{}}},
		"long", long,
		"od", od,
		"set", set,
		"frozen", frozen,
		"keys", mustDict(t, false, int64(7), "int", Tuple{"a", int64(1)}, "tuple", []byte("b"), "bytes", "b", "str", nil, "none", 2.5, "float"),
		"shared1", shared,
		"shared2", shared,
		"nested", []any{[]any{[]any{mustDict(t, false)}}},
	)
}

func allGlobals() Globals {
	return MergeGlobals(BasicGlobals(), NumpyGlobals(), TorchGlobals())
}

func TestRoundTrip(t *testing.T) {
	v := sampleValue(t, 2500)
	data, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(data, BasicGlobals())
	if err != nil {
		t.Fatal(err)
	}
	if !equal(v, got) {
		t.Fatalf("round trip differs:\n got %v\nwant %v", got, v)
	}
	d := got.(*Dict)
	s1, _ := d.Get("shared1")
	s2, _ := d.Get("shared2")
	if s1.(*Dict) != s2.(*Dict) {
		t.Error("a dict written twice decoded as two dicts")
	}
}

func TestCycles(t *testing.T) {
	l := make([]any, 2)
	l[0] = "x"
	l[1] = l
	d := NewDict()
	d.Set("self", d)
	d.Set("list", l)
	data, err := Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	gd := got.(*Dict)
	if self, _ := gd.Get("self"); self != any(gd) {
		t.Error("dict cycle lost")
	}
	gl, _ := gd.Get("list")
	inner := gl.([]any)[1].([]any)
	if &inner[0] != &gl.([]any)[0] {
		t.Error("list cycle lost")
	}
}

func TestMemoizedReduceAndPersistent(t *testing.T) {
	type storage struct{ name string }
	s := &storage{"s"}
	r := &Reduce{Callable: Global{"collections", "OrderedDict"}, Args: Tuple{}}
	enc := func(v any) []byte {
		var buf bytes.Buffer
		e := NewEncoder(&buf)
		e.PersistentID = func(v any) (any, bool) {
			if st, ok := v.(*storage); ok {
				return Tuple{"storage", st.name}, true
			}
			return nil, false
		}
		if err := e.Encode(v); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	twice := enc([]any{s, r, s, r})
	if n := bytes.Count(twice, []byte("storage")); n != 1 {
		t.Errorf("persistent id written %d times, want 1", n)
	}
	if n := bytes.Count(twice, []byte("OrderedDict")); n != 1 {
		t.Errorf("global written %d times, want 1", n)
	}
	loads := 0
	d := NewDecoder(bytes.NewReader(twice))
	d.Globals = BasicGlobals()
	d.PersistentLoad = func(pid any) (any, error) {
		loads++
		return &storage{pid.(Tuple)[1].(string)}, nil
	}
	v, err := d.Decode()
	if err != nil {
		t.Fatal(err)
	}
	l := v.([]any)
	if loads != 1 || l[0] != l[2] || l[1] != l[3] {
		t.Errorf("shared values not shared after decoding: %d loads, %v", loads, l)
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, v := range []any{
		"\xff invalid utf-8",
		struct{}{},
		map[int]any{},
		Global{"bad\nmodule", "x"},
		(*Dict)(nil),
	} {
		if _, err := Marshal(v); err == nil {
			t.Errorf("Marshal(%#v) succeeded", v)
		}
	}
	deep := any(nil)
	for i := 0; i < maxDepth+10; i++ {
		deep = Tuple{deep}
	}
	if _, err := Marshal(deep); err == nil {
		t.Error("Marshal of a too deep value succeeded")
	}
}

// Hand-written pickles, some in Python 2's dialect.
func TestHandWritten(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want any
	}{
		{"protocol 0 ints", "(I42\nI-7\nI01\nI00\nL123456789012345678901234567890L\ntp0\n.",
			Tuple{int64(42), int64(-7), true, false, bigInt("123456789012345678901234567890")}},
		{"protocol 0 float", "(F1.5\nFinf\nF-2e-05\nl.", []any{1.5, math.Inf(1), -2e-05}},
		{"python 2 str", "(S'a\\'b\\\\c\\n\\x00\\xff\\101'\nS\"dq\"\nU\x03abcT\x02\x00\x00\x00\xfe\xfft.",
			Tuple{"a'b\\c\n\x00\xffA", "dq", "abc", "\xfe\xff"}},
		{"raw unicode escape", "V\\u00e9t\\u005c\\U0001d11e\xe9\np0\n.", "ét\\𝄞é"},
		{"dict opcode", "(S'k'\nI1\nS'j'\nI2\nd.", mustDict(t, false, "k", int64(1), "j", int64(2))},
		{"memo text", "(lp0\nI1\nag0\nI2\na.", []any{int64(1), int64(2)}},
		{"dup and pop", "(I1\n2I3\n0t.", Tuple{int64(1), int64(1)}},
		{"protocol 4 frame and memoize", "\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00\x8c\x02hi\x94h\x00\x86\x94.", Tuple{"hi", "hi"}},
		{"protocol 4 set", "\x80\x04\x8f(K\x01K\x02K\x01\x90(K\x03\x91\x86.", Tuple{newSetT(t, false, int64(1), int64(2)), newSetT(t, true, int64(3))}},
		{"bytes", "\x80\x03C\x02\x00\x01B\x01\x00\x00\x00z\x8e\x01\x00\x00\x00\x00\x00\x00\x00y\x96\x00\x00\x00\x00\x00\x00\x00\x00\x98\x87.",
			Tuple{[]byte("z"), []byte("y"), []byte{}}},
		{"long1 long4", "\x80\x02\x8a\x01\xff\x8a\x00\x8b\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x87.",
			Tuple{int64(-1), int64(0), new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), 71))}},
		{"binfloat", "\x80\x02G\x3f\xf8\x00\x00\x00\x00\x00\x00.", 1.5},
		{"python 2 builtins", "c__builtin__\nset\n(]K\x01atR.", newSetT(t, false, int64(1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Unmarshal([]byte(tt.in), BasicGlobals())
			if err != nil {
				t.Fatal(err)
			}
			if !equal(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestForbidden(t *testing.T) {
	tests := map[string]string{
		"GLOBAL":          "cos\nsystem\n(S'echo pwned'\ntR.",
		"STACK_GLOBAL":    "\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x0becho pwned\x85R.",
		"INST":            "(S'echo pwned'\nios\nsystem\n.",
		"python 2 module": "c__builtin__\neval\n(S'1'\ntR.",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Unmarshal([]byte(in), allGlobals())
			var fe *ForbiddenError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a ForbiddenError", err)
			}
			if !strings.Contains(err.Error(), "is not allowed") || !strings.Contains(err.Error(), fe.Global.String()) {
				t.Errorf("error %q does not name the class", err)
			}
			t.Log(err)
		})
	}
	if _, err := Unmarshal([]byte("cos\nsystem\n."), allGlobals()); err == nil || !strings.Contains(err.Error(), "class os.system is not allowed") {
		t.Errorf("got %v", err)
	}
}

func TestBadInput(t *testing.T) {
	tests := map[string]string{
		"empty":                  "",
		"truncated proto":        "\x80",
		"no stop":                "\x80\x02K\x01",
		"string past end":        "\x80\x02X\xff\x00\x00\x00abc.",
		"huge bytes8":            "\x80\x04\x8e\x00\x00\x00\x00\x00\x01\x00\x00.",
		"negative long4":         "\x80\x02\x8b\xff\xff\xff\xff.",
		"negative binstring":     "T\xff\xff\xff\xff.",
		"stack underflow":        "\x80\x02\x86.",
		"stop on empty":          "\x80\x02.",
		"no mark":                "\x80\x02K\x01t.",
		"memo miss":              "\x80\x02h\x05.",
		"put on empty":           "\x80\x02q\x00.",
		"unknown opcode":         "\x80\x02\xff.",
		"protocol 6":             "\x80\x06N.",
		"append to int":          "\x80\x02K\x01K\x02a.",
		"setitem on list":        "\x80\x02]K\x01K\x02s.",
		"setitems odd":           "\x80\x02}(K\x01u.",
		"unhashable key":         "\x80\x02}]K\x01s.",
		"reduce not callable":    "\x80\x02K\x01)R.",
		"reduce args not tuple":  "\x80\x02c_codecs\nencode\nK\x01R.",
		"build on int":           "\x80\x02K\x01}b.",
		"persid without loader":  "\x80\x02K\x01Q.",
		"ext1":                   "\x80\x02\x82\x01.",
		"next buffer":            "\x80\x05\x97.",
		"bad float":              "Fxyz\n.",
		"bad int":                "I12a\n.",
		"huge int literal":       "I" + strings.Repeat("9", 5000) + "\n.",
		"unquoted string":        "Sabc\n.",
		"bad escape":             "S'\\xZZ'\n.",
		"bad unicode escape":     "V\\uZZZZ\n.",
		"stack global types":     "\x80\x04K\x01K\x02\x93.",
		"newobj_ex kwargs":       "\x80\x04c_codecs\nencode\n)}K\x01K\x02s\x92.",
		"latin1 out of range":    "\x80\x02c_codecs\nencode\nX\x02\x00\x00\x00\xc4\x80X\x06\x00\x00\x00latin1\x86R.",
		"numpy unknown function": "\x80\x02cnumpy\nfrombuffer\n.",
		"trailing bytes":         "\x80\x02N.N",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			d := NewDecoder(bytes.NewReader([]byte(in)))
			d.Globals = allGlobals()
			v, err := Unmarshal([]byte(in), allGlobals())
			if err == nil {
				t.Fatalf("decoded %#v, want an error", v)
			}
			if name == "empty" {
				if _, err := d.Decode(); err != io.EOF {
					t.Errorf("Decode of empty input: %v, want io.EOF", err)
				}
			}
			t.Log(err)
		})
	}
}

func TestTooDeep(t *testing.T) {
	n := maxDepth + 10
	in := "\x80\x02" + strings.Repeat("]", n) + strings.Repeat("a", n-1) + "."
	if _, err := Unmarshal([]byte(in), nil); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Fatalf("got %v, want a nesting error", err)
	}
	// Tuples nested as a DAG would make a naive walk take exponential time.
	var b strings.Builder
	b.WriteString("\x80\x02K\x00")
	for i := 0; i < 60; i++ {
		b.WriteString("q\x00h\x00\x86") // t = (t, t)
	}
	b.WriteString("q\x00}h\x00K\x01s.") // used as a dict key
	if _, err := Unmarshal([]byte(b.String()), nil); err == nil {
		t.Fatal("a 2^60-leaf tuple key was accepted")
	}
}

// onlyReader hides everything but Read, so the Decoder cannot know the
// input's size.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestHugeLengthUnknownSize(t *testing.T) {
	in := []byte("\x80\x04\x8e\x00\x00\x00\x00\x00\x01\x00\x00abc.")
	d := NewDecoder(onlyReader{bytes.NewReader(in)})
	_, err := d.Decode()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want unexpected EOF", err)
	}
	// A large valid payload read in growing chunks.
	payload := bytes.Repeat([]byte{7}, 3*readChunk+5)
	var buf bytes.Buffer
	buf.WriteString("\x80\x04\x8e")
	binary.Write(&buf, binary.LittleEndian, uint64(len(payload)))
	buf.Write(payload)
	buf.WriteString(".")
	v, err := NewDecoder(onlyReader{&buf}).Decode()
	if err != nil || !bytes.Equal(v.([]byte), payload) {
		t.Fatalf("chunked read: %v", err)
	}
}

func TestConsecutivePickles(t *testing.T) {
	var buf bytes.Buffer
	e := NewEncoder(&buf)
	for i := 0; i < 3; i++ {
		if err := e.Encode(mustDict(t, false, "i", int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	buf.WriteString("tail")
	d := NewDecoder(&buf)
	for i := 0; i < 3; i++ {
		v, err := d.Decode()
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := v.(*Dict).Get("i"); got != int64(i) {
			t.Errorf("pickle %d: got %v", i, got)
		}
	}
	if rest := buf.String(); rest != "tail" {
		t.Errorf("decoder read past the pickles: %q left", rest)
	}
}

// Every proper prefix of a valid pickle is an error; no byte flip panics.
func TestTruncationAndCorruption(t *testing.T) {
	data, err := Marshal(sampleValue(t, 5))
	if err != nil {
		t.Fatal(err)
	}
	g := allGlobals()
	for n := 0; n < len(data); n++ {
		if _, err := Unmarshal(data[:n], g); err == nil {
			t.Fatalf("prefix of %d/%d bytes decoded without error", n, len(data))
		}
	}
	buf := make([]byte, len(data))
	for i := 0; i < len(data); i += 7 {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			copy(buf, data)
			buf[i] ^= x
			Unmarshal(buf, g) // must not panic
		}
	}
}

func TestDict(t *testing.T) {
	d := NewDict()
	for _, k := range []any{int64(1), "1", []byte("1"), Tuple{int64(1)}, nil} {
		if err := d.Set(k, k); err != nil {
			t.Fatal(err)
		}
	}
	// Python equality: True == 1 == 1.0.
	d.Set(true, "true")
	d.Set(1.0, "float")
	if d.Len() != 5 {
		t.Fatalf("len %d, want 5", d.Len())
	}
	if v, _ := d.Get(int64(1)); v != "float" {
		t.Errorf("d[1] = %v", v)
	}
	if k := d.Keys()[0]; k != int64(1) {
		t.Errorf("first key %#v, want the original int64(1)", k)
	}
	if err := d.Set([]any{}, 1); err == nil {
		t.Error("a list key was accepted")
	}
	if !d.Delete("1") || d.Delete("1") || d.Len() != 4 {
		t.Error("Delete")
	}
	if v, ok := d.Get(nil); !ok || v != nil {
		t.Error("Get after Delete lost the index")
	}
	want := []any{int64(1), []byte("1"), Tuple{int64(1)}, nil}
	if !equal(d.Keys(), want) {
		t.Errorf("keys %v, want %v", d.Keys(), want)
	}
	var zero Dict
	if _, ok := zero.Get("x"); ok || zero.Len() != 0 {
		t.Error("zero Dict")
	}
}

func TestFloat16(t *testing.T) {
	for bits, want := range map[uint16]float32{
		0x3c00: 1, 0xc000: -2, 0x7bff: 65504, 0x0001: 5.9604645e-08, 0x0000: 0,
		0x8000: float32(math.Copysign(0, -1)), 0x7c00: float32(math.Inf(1)),
	} {
		if got := halfToFloat32(bits); got != want || math.Signbit(float64(got)) != math.Signbit(float64(want)) {
			t.Errorf("half %#04x = %v, want %v", bits, got, want)
		}
	}
	if !math.IsNaN(float64(halfToFloat32(0x7e00))) {
		t.Error("half NaN")
	}
}

func ExampleUnmarshal() {
	// A protocol 0 pickle of {'answer': 42}.
	v, err := Unmarshal([]byte("(dp0\nS'answer'\np1\nI42\ns."), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	answer, _ := v.(*Dict).Get("answer")
	fmt.Println(answer)

	_, err = Unmarshal([]byte("cos\nsystem\n(S'rm -rf /'\ntR."), BasicGlobals())
	fmt.Println(err)
	// Output:
	// 42
	// pickle: GLOBAL at offset 0: class os.system is not allowed
}

func TestTorchTensor(t *testing.T) {
	in := "\x80\x02ctorch._utils\n_rebuild_parameter\nctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nHalfStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQK\x01K\x02K\x02\x86K\x03K\x01\x86\x89ccollections\nOrderedDict\n)RtR\x88h\x00)R\x87R."
	// The memo lookup h\x00 is missing: the pickle is an error ...
	if _, err := Unmarshal([]byte(in), TorchGlobals()); err == nil {
		t.Fatal("missing memo entry accepted")
	}
	// ... and with the backward hooks spelled out it decodes.
	in = strings.Replace(in, "h\x00)R", "ccollections\nOrderedDict\n)R", 1)
	d := NewDecoder(strings.NewReader(in))
	d.Globals = TorchGlobals()
	var pids []any
	d.PersistentLoad = func(pid any) (any, error) {
		pids = append(pids, pid)
		return "the storage", nil
	}
	v, err := d.Decode()
	if err != nil {
		t.Fatal(err)
	}
	want := &TorchTensor{Storage: "the storage", StorageOffset: 1, Size: []int64{2, 2}, Stride: []int64{3, 1}, RequiresGrad: true, Parameter: true}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("got %+v, want %+v", v, want)
	}
	wantPid := Tuple{"storage", TorchStorageType{"HalfStorage"}, "0", "cpu", int64(6)}
	if len(pids) != 1 || !equal(pids[0], wantPid) {
		t.Errorf("persistent ids %v, want %v", pids, wantPid)
	}
}
