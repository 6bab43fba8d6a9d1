package torchfmt

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/internal/atomicfile"
	"github.com/gsrmt/gsrmt/internal/pickle"
)

// describe renders a checkpoint tree as plain JSON-like values, so that
// trees from Go and from Python compare with reflect.DeepEqual after a JSON
// round trip. Storages are numbered in order of first appearance, so shared
// storages show as equal numbers.
func describe(v any, ids map[*Storage]int) any {
	switch v := v.(type) {
	case nil:
		return map[string]any{"none": true}
	case bool:
		return map[string]any{"bool": v}
	case int:
		return map[string]any{"int": strconv.Itoa(v)}
	case int64:
		return map[string]any{"int": strconv.FormatInt(v, 10)}
	case *big.Int:
		return map[string]any{"int": v.String()}
	case float32:
		return describe(float64(v), ids)
	case float64:
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], math.Float64bits(v))
		return map[string]any{"float": hex.EncodeToString(b[:])}
	case string:
		return map[string]any{"str": v}
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = describe(e, ids)
		}
		return map[string]any{"list": out}
	case Tuple:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = describe(e, ids)
		}
		return map[string]any{"tuple": out}
	case *Dict:
		out := make([]any, 0, v.Len())
		for _, e := range v.Entries() {
			out = append(out, []any{describe(e.Key, ids), describe(e.Value, ids)})
		}
		return map[string]any{"dict": out}
	case *Tensor:
		id, ok := ids[v.Storage]
		if !ok {
			id = len(ids)
			ids[v.Storage] = id
		}
		raw, err := v.Bytes()
		if err != nil {
			return map[string]any{"error": err.Error()}
		}
		return map[string]any{"tensor": map[string]any{
			"dtype": v.DType().String(), "shape": v.Shape, "stride": v.Stride,
			"offset": v.StorageOffset, "hex": hex.EncodeToString(raw), "storage": id,
			"requires_grad": v.RequiresGrad,
		}}
	}
	return map[string]any{"unknown": fmt.Sprintf("%T", v)}
}

func mustTensor(t testing.TB) func(*Tensor, error) *Tensor {
	return func(x *Tensor, err error) *Tensor {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
}

func set(t testing.TB, d *Dict, kv ...any) *Dict {
	t.Helper()
	for i := 0; i < len(kv); i += 2 {
		if err := d.Set(kv[i], kv[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// sampleTensors returns one tensor of every dtype, views, shared storages,
// empty and zero-dimensional tensors.
func sampleTensors(t testing.TB) *Dict {
	must := mustTensor(t)
	d := NewOrderedDict()
	vals := []float32{0, 1, -1.5, 3.25, 65504, -0.0001, 1e-8, float32(math.Inf(1)), 1e30, -7}
	for _, dt := range []DType{Float32, Float64, Float16, BFloat16} {
		set(t, d, "f_"+dt.String(), must(FromFloat32(dt, []int64{2, 5}, vals)))
	}
	ints := []int64{0, 1, -1, 100, -100, 127, -128, 5}
	for _, dt := range []DType{Int64, Int32, Int16, Int8} {
		set(t, d, "i_"+dt.String(), must(FromInt64(dt, []int64{4, 2}, ints)))
	}
	set(t, d, "u8", must(FromInt64(Uint8, []int64{3}, []int64{0, 128, 255})))
	set(t, d, "bool", must(FromInt64(Bool, []int64{2, 2}, []int64{1, 0, 0, 1})))
	set(t, d, "big_i64", must(FromInt64(Int64, []int64{2}, []int64{math.MaxInt64, math.MinInt64})))
	set(t, d, "empty", must(FromFloat32(Float32, []int64{0, 3}, nil)))
	set(t, d, "scalar", must(FromFloat32(Float32, []int64{}, []float32{42.5})))

	base := must(FromFloat32(Float32, []int64{3, 4}, []float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}))
	set(t, d, "base", base)
	set(t, d, "transposed", &Tensor{Storage: base.Storage, Shape: []int64{4, 3}, Stride: []int64{1, 4}})
	set(t, d, "row_slice", &Tensor{Storage: base.Storage, StorageOffset: 5, Shape: []int64{3}, Stride: []int64{1}})
	set(t, d, "col_step", &Tensor{Storage: base.Storage, StorageOffset: 1, Shape: []int64{2, 2}, Stride: []int64{8, 2}})
	set(t, d, "broadcast", &Tensor{Storage: base.Storage, StorageOffset: 2, Shape: []int64{2, 3}, Stride: []int64{0, 1}})
	half := must(FromFloat32(Float16, []int64{6}, []float32{1, 2, 3, 4, 5, 6}))
	set(t, d, "half_view", &Tensor{Storage: half.Storage, StorageOffset: 2, Shape: []int64{2, 2}, Stride: []int64{1, 2}})
	param := must(FromFloat32(Float32, []int64{2}, []float32{1, 2}))
	param.RequiresGrad = true
	set(t, d, "param", param)
	return d
}

// sampleTree is a full checkpoint: tensors inside nested containers and
// plain values.
func sampleTree(t testing.TB) *Dict {
	tensors := sampleTensors(t)
	base, _ := tensors.Get("base")
	metrics := set(t, NewDict(), "top1", 0.75, "top5", 0.9375, "loss", 1.25e-3)
	return set(t, NewDict(),
		"format", "gsrmt-checkpoint-v1",
		"model", tensors,
		"epoch", int64(3),
		"step", int64(1)<<40,
		"big", new(big.Int).Lsh(big.NewInt(1), 80),
		"negative", int64(-5),
		"flags", []any{true, false, nil},
		"names", []string{"a", "ü"},
		"shape", Tuple{int64(224), int64(224)},
		"metrics", metrics,
		"optimizer", set(t, NewDict(),
			"state", set(t, NewDict(), int64(0), set(t, NewDict(), "step", int64(7), "exp_avg", base)),
			"param_groups", []any{set(t, NewDict(), "lr", 1e-3, "params", []any{int64(0), int64(1)})},
		),
		"nested", []any{[]any{Tuple{set(t, NewOrderedDict(), "deep", []any{})}}},
	)
}

func roundTrip(t *testing.T, v any) any {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ckpt.pt")
	if err := Save(path, v); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func sameDescription(t *testing.T, got, want any) {
	t.Helper()
	g, w := describe(got, map[*Storage]int{}), describe(want, map[*Storage]int{})
	if !reflect.DeepEqual(g, w) {
		t.Errorf("trees differ:\n got %v\nwant %v", g, w)
	}
}

func TestRoundTrip(t *testing.T) {
	want := sampleTree(t)
	got := roundTrip(t, want)
	// Go values come back as the Python types: ints as int64, []string as a
	// list, so compare against the normalized form.
	want.Set("names", []any{"a", "ü"})
	sameDescription(t, got, want)

	mv, _ := got.(*Dict).Get("model")
	m := mv.(*Dict)
	if !m.Ordered {
		t.Error("the state_dict lost its OrderedDict type")
	}
	base, _ := m.Get("base")
	tr, _ := m.Get("transposed")
	if base.(*Tensor).Storage != tr.(*Tensor).Storage {
		t.Error("tensors sharing a storage were loaded with two storages")
	}
	opt, _ := got.(*Dict).Get("optimizer")
	st, _ := opt.(*Dict).Get("state")
	s0, _ := st.(*Dict).Get(int64(0))
	avg, _ := s0.(*Dict).Get("exp_avg")
	if avg != base {
		t.Error("a tensor saved twice was loaded as two tensors")
	}
}

func TestStoragesWrittenOnce(t *testing.T) {
	var buf bytes.Buffer
	tree := sampleTree(t)
	if err := Write(&buf, tree); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if f.Method != zip.Store {
			t.Errorf("%s is compressed", f.Name)
		}
		off, err := f.DataOffset()
		if err != nil {
			t.Fatal(err)
		}
		if off%64 != 0 {
			t.Errorf("%s data at offset %d, not 64-byte aligned", f.Name, off)
		}
	}
	// One record per distinct storage, whatever the number of views.
	model, _ := tree.Get("model")
	distinct := map[*Storage]bool{}
	for _, e := range model.(*Dict).Entries() {
		distinct[e.Value.(*Tensor).Storage] = true
	}
	want := []string{"archive/data.pkl", "archive/byteorder"}
	keys := make([]string, len(distinct))
	for i := range keys {
		keys[i] = strconv.Itoa(i)
	}
	sortStrings(keys)
	for _, k := range keys {
		want = append(want, "archive/data/"+k)
	}
	want = append(want, "archive/version")
	if !reflect.DeepEqual(names, want) {
		t.Errorf("records %v, want %v", names, want)
	}
	for _, f := range zr.File {
		if f.Name == "archive/version" || f.Name == "archive/byteorder" {
			b, _ := readRecord(f, -1, int64(buf.Len()), 100)
			if w := map[string]string{"archive/version": "3\n", "archive/byteorder": "little"}[f.Name]; string(b) != w {
				t.Errorf("%s = %q, want %q", f.Name, b, w)
			}
		}
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestArchiveName(t *testing.T) {
	for path, want := range map[string]string{
		"/x/model.pt": "model", "my.model.pth": "my.model", "ckpt": "ckpt", ".pt": "archive", "/x/modèle.pt": "archive",
	} {
		if got := archiveName(path); got != want {
			t.Errorf("archiveName(%q) = %q, want %q", path, got, want)
		}
	}
	path := filepath.Join(t.TempDir(), "best.ckpt.pt")
	if err := Save(path, NewDict()); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if zr.File[0].Name != "best.ckpt/data.pkl" {
		t.Errorf("first record %s, want best.ckpt/data.pkl", zr.File[0].Name)
	}
}

// failingWriter fails once n bytes have been written.
type failingWriter struct {
	w io.Writer
	n int
}

var errInjected = errors.New("injected write failure")

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n, _ := f.w.Write(p[:f.n])
		f.n = 0
		return n, errInjected
	}
	f.n -= len(p)
	return f.w.Write(p)
}

func TestAtomicSave(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ckpt.pt")
	old := set(t, NewDict(), "epoch", int64(1))
	if err := Save(path, old); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	for _, n := range []int{0, 10, 100, 1000, 5000} {
		old := atomicfile.SetTestHook(func(w io.Writer) io.Writer { return &failingWriter{w, n} })
		err := Save(path, sampleTree(t))
		atomicfile.SetTestHook(old)
		if !errors.Is(err, errInjected) {
			t.Fatalf("failing after %d bytes: got %v, want the injected error", n, err)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(before, after) {
			t.Fatalf("failing after %d bytes changed the previous file", n)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Fatalf("failing after %d bytes left files behind: %v", n, entries)
		}
	}
	// Values that cannot be saved fail before anything is written.
	if err := Save(path, map[string]any{"bad": struct{}{}}); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Errorf("saving a struct: %v", err)
	}
	if err := Save(filepath.Join(dir, "missing", "x.pt"), old); err == nil {
		t.Error("saving into a missing folder succeeded")
	}
	// A successful save replaces the file.
	if err := Save(path, sampleTree(t)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("saved file: %v %v", fi.Mode(), err)
	}
}

func TestSaveErrors(t *testing.T) {
	must := mustTensor(t)
	good := must(FromFloat32(Float32, []int64{4}, []float32{1, 2, 3, 4}))
	for name, v := range map[string]any{
		"view past the end":  &Tensor{Storage: good.Storage, StorageOffset: 2, Shape: []int64{3}, Stride: []int64{1}},
		"negative stride":    &Tensor{Storage: good.Storage, StorageOffset: 3, Shape: []int64{2}, Stride: []int64{-1}},
		"stride length":      &Tensor{Storage: good.Storage, Shape: []int64{2}, Stride: []int64{1, 1}},
		"no storage":         &Tensor{Shape: []int64{}},
		"bad dtype":          &Tensor{Storage: &Storage{DType: 99, Data: []byte{1}}, Shape: []int64{1}, Stride: []int64{1}},
		"ragged storage":     &Tensor{Storage: &Storage{DType: Float32, Data: []byte{1, 2}}, Shape: []int64{0}, Stride: []int64{1}},
		"channel":            make(chan int),
		"tensor key":         set(t, NewDict(), good, int64(1)),
		"invalid utf-8":      "\xff",
		"negative dimension": &Tensor{Storage: good.Storage, Shape: []int64{-1}, Stride: []int64{1}},
	} {
		if err := Write(io.Discard, map[string]any{"x": v}); err == nil {
			t.Errorf("%s: saved", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// legacyView is a test-only stand-in for a legacy storage view.
type legacyView struct {
	root       *Storage
	key        string
	offset, nn int64
}

// legacyPersistentID names storages as the legacy format does: with view
// metadata for a legacyView, None for a whole storage.
func legacyPersistentID(c *toPickle) func(any) (any, bool) {
	return func(x any) (any, bool) {
		if lv, ok := x.(*legacyView); ok {
			pid, _ := c.persistentID(lv.root)
			return append(pid.(Tuple), Tuple{lv.key, lv.offset, lv.nn}), true
		}
		pid, ok := c.persistentID(x)
		if !ok {
			return nil, false
		}
		return append(pid.(Tuple), nil), true
	}
}

// writeLegacy writes v in PyTorch's legacy format, as torch.save did before
// 1.6 (and does with _use_new_zipfile_serialization=False).
func writeLegacy(t testing.TB, v any, bigEndian bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := pickle.NewEncoder(&buf)
	magic := new(big.Int).Set(legacyMagic)
	sysInfo := set(t, NewDict(), "protocol_version", int64(1001), "little_endian", !bigEndian,
		"type_sizes", set(t, NewDict(), "short", int64(2), "int", int64(4), "long", int64(4)))
	for _, x := range []any{magic, int64(1001), sysInfo} {
		if err := enc.Encode(x); err != nil {
			t.Fatal(err)
		}
	}
	c := newToPickle()
	tree, err := c.convert(v, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	enc.PersistentID = legacyPersistentID(c)
	if err := enc.Encode(tree); err != nil {
		t.Fatal(err)
	}
	enc.PersistentID = nil
	keys := make([]any, len(c.storages))
	for i, s := range c.storages {
		keys[i] = c.keys[s]
	}
	if err := enc.Encode(keys); err != nil {
		t.Fatal(err)
	}
	for _, s := range c.storages {
		var n [8]byte
		data := append([]byte(nil), s.Data...)
		if bigEndian {
			binary.BigEndian.PutUint64(n[:], uint64(s.Numel()))
			swapBytes(data, s.DType.Size())
		} else {
			binary.LittleEndian.PutUint64(n[:], uint64(s.Numel()))
		}
		buf.Write(n[:])
		buf.Write(data)
	}
	return buf.Bytes()
}

func TestLegacy(t *testing.T) {
	for _, bigEndian := range []bool{false, true} {
		want := sampleTree(t)
		data := writeLegacy(t, want, bigEndian)
		got, err := Read(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("big endian %v: %v", bigEndian, err)
		}
		want.Set("names", []any{"a", "ü"})
		sameDescription(t, got, want)
	}
}

func TestLegacyStorageView(t *testing.T) {
	root := mustTensor(t)(FromFloat32(Float32, []int64{10}, []float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}))
	view := &legacyView{root: root.Storage, key: "view0", offset: 4, nn: 4}
	tree := []any{
		&pickle.Reduce{Callable: rebuildTensorV2, Args: Tuple{view, int64(1), Tuple{int64(2)}, Tuple{int64(2)}, false, NewOrderedDict()}},
		root,
	}
	// Build the file by hand: the tree holds pickle values directly.
	var buf bytes.Buffer
	enc := pickle.NewEncoder(&buf)
	for _, x := range []any{new(big.Int).Set(legacyMagic), int64(1001), set(t, NewDict(), "little_endian", true)} {
		enc.Encode(x)
	}
	c := newToPickle()
	rootPickled, _ := c.convert(root, "", 0)
	tree[1] = rootPickled
	enc.PersistentID = legacyPersistentID(c)
	if err := enc.Encode(tree); err != nil {
		t.Fatal(err)
	}
	enc.PersistentID = nil
	enc.Encode([]any{"0"})
	binary.Write(&buf, binary.LittleEndian, int64(10))
	buf.Write(root.Storage.Data)
	got, err := Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	l := got.([]any)
	v := l[0].(*Tensor)
	vals, _ := v.Float32s()
	if fmt.Sprint(vals) != "[5 7]" || v.Storage != l[1].(*Tensor).Storage || v.StorageOffset != 5 {
		t.Errorf("view = %v at offset %d", vals, v.StorageOffset)
	}
}

// zipWith builds a zip checkpoint from a raw pickle and storage records.
func zipWith(t testing.TB, pkl []byte, records map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := &alignedZipWriter{zw: zip.NewWriter(&buf)}
	if err := zw.add("archive/data.pkl", pkl); err != nil {
		t.Fatal(err)
	}
	for name, data := range records {
		if err := zw.add("archive/"+name, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tensorPickle is the pickle of {'t': tensor} over a storage with the given
// class, key and size.
func tensorPickle(t testing.TB, class, key string, numel int64, size, stride []int64, offset int64) []byte {
	t.Helper()
	pid := &pickle.Reduce{Callable: pickle.Global{Module: "builtins", Name: "pid"}}
	tree := set(t, NewDict(), "t", &pickle.Reduce{Callable: rebuildTensorV2,
		Args: Tuple{pid, offset, ints(size), ints(stride), false, NewOrderedDict()}})
	var buf bytes.Buffer
	enc := pickle.NewEncoder(&buf)
	enc.PersistentID = func(v any) (any, bool) {
		if v == pid {
			return Tuple{"storage", pickle.Global{Module: "torch", Name: class}, key, "cpu", numel}, true
		}
		return nil, false
	}
	if err := enc.Encode(tree); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBadCheckpoints(t *testing.T) {
	var good bytes.Buffer
	if err := Write(&good, sampleTree(t)); err != nil {
		t.Fatal(err)
	}
	f32 := func(n int) []byte { return make([]byte, 4*n) }
	osSystem := []byte("\x80\x02cos\nsystem\nX\x0a\x00\x00\x00echo pwnedq\x00\x85R.")
	corrupt := append([]byte(nil), good.Bytes()...)
	corrupt[len(corrupt)/2] ^= 0xff // inside some storage: CRC mismatch
	tests := map[string]struct {
		data []byte
		want string
	}{
		"empty":            {nil, "read header"},
		"not a checkpoint": {[]byte("hello world"), "not a PyTorch checkpoint"},
		"truncated zip":    {good.Bytes()[:good.Len()/2], "zip"},
		"corrupt storage":  {corrupt, "checksum"},
		"os.system":        {zipWith(t, osSystem, nil), "class os.system is not allowed"},
		"corrupt pickle":   {zipWith(t, []byte("\x80\x02}q\x00(X\x01\x00\x00\x00a"), nil), "data.pkl"},
		"no data.pkl": {func() []byte {
			var b bytes.Buffer
			zw := zip.NewWriter(&b)
			zw.Create("x/y")
			zw.Close()
			return b.Bytes()
		}(), "no <archive>/data.pkl"},
		"complex dtype":     {zipWith(t, tensorPickle(t, "ComplexFloatStorage", "0", 2, []int64{2}, []int64{1}, 0), map[string][]byte{"data/0": f32(4)}), "unsupported storage type torch.ComplexFloatStorage"},
		"unknown class":     {zipWith(t, tensorPickle(t, "EvilStorage", "0", 2, []int64{2}, []int64{1}, 0), map[string][]byte{"data/0": f32(2)}), "class torch.EvilStorage is not allowed"},
		"size mismatch":     {zipWith(t, tensorPickle(t, "FloatStorage", "0", 3, []int64{2}, []int64{1}, 0), map[string][]byte{"data/0": f32(2)}), "holds 8 bytes, want 12"},
		"missing storage":   {zipWith(t, tensorPickle(t, "FloatStorage", "0", 2, []int64{2}, []int64{1}, 0), nil), "missing"},
		"view out of range": {zipWith(t, tensorPickle(t, "FloatStorage", "0", 4, []int64{2, 2}, []int64{2, 1}, 1), map[string][]byte{"data/0": f32(4)}), "reaches element 4"},
		"path in key":       {zipWith(t, tensorPickle(t, "FloatStorage", "../0", 2, []int64{2}, []int64{1}, 0), nil), "bad storage key"},
		"bad byteorder":     {zipWith(t, []byte("\x80\x02N."), map[string][]byte{"byteorder": []byte("middle")}), "byte order"},
		"legacy truncated":  {func() []byte { b := writeLegacy(t, sampleTree(t), false); return b[:len(b)-100] }(), "unexpected EOF"},
		"legacy bad magic":  {[]byte("\x80\x02K\x05."), "magic number"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			v, err := Read(bytes.NewReader(tt.data), int64(len(tt.data)))
			if err == nil {
				t.Fatalf("read %v, want an error", v)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			notCheckpoint := name == "not a checkpoint" || name == "no data.pkl" || name == "legacy bad magic"
			if errors.Is(err, ErrFormat) != notCheckpoint {
				t.Errorf("errors.Is(%q, ErrFormat) = %v", err, !notCheckpoint)
			}
			t.Log(err)
		})
	}
	path := filepath.Join(t.TempDir(), "missing.pt")
	if _, err := Load(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v", err)
	}
}

// Every prefix of a checkpoint is an error, never a panic.
func TestTruncated(t *testing.T) {
	small := set(t, NewDict(), "w", mustTensor(t)(FromFloat32(Float16, []int64{3}, []float32{1, 2, 3})), "n", int64(1))
	var z bytes.Buffer
	if err := Write(&z, small); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"zip": z.Bytes(), "legacy": writeLegacy(t, small, false)} {
		for n := 0; n < len(data); n++ {
			if _, err := Read(bytes.NewReader(data[:n]), int64(n)); err == nil {
				t.Fatalf("%s: prefix of %d/%d bytes read without error", name, n, len(data))
			}
		}
		if _, err := Read(bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func TestTensorHelpers(t *testing.T) {
	must := mustTensor(t)
	base := must(FromInt64(Int32, []int64{2, 3}, []int64{0, 1, 2, 3, 4, 5}))
	tr := &Tensor{Storage: base.Storage, Shape: []int64{3, 2}, Stride: []int64{1, 3}}
	if tr.IsContiguous() || !base.IsContiguous() {
		t.Error("IsContiguous")
	}
	if got, _ := tr.Int64s(); fmt.Sprint(got) != "[0 3 1 4 2 5]" {
		t.Errorf("transposed = %v", got)
	}
	b, _ := tr.Bytes()
	if len(b) != 24 || binary.LittleEndian.Uint32(b[4:]) != 3 {
		t.Errorf("Bytes = %v", b)
	}
	if _, err := tr.Float32s(); err == nil {
		t.Error("Float32s of an int tensor")
	}
	if _, err := must(FromFloat32(Float32, []int64{1}, []float32{1})).Int64s(); err == nil {
		t.Error("Int64s of a float tensor")
	}
	if _, err := FromInt64(Int8, []int64{1}, []int64{128}); err == nil {
		t.Error("128 fits int8")
	}
	if _, err := FromFloat32(Int64, []int64{1}, []float32{1}); err == nil {
		t.Error("FromFloat32 to int64")
	}
	if _, err := FromFloat32(Float32, []int64{2}, []float32{1}); err == nil {
		t.Error("shape mismatch accepted")
	}
	if _, err := NewTensor(Float32, []int64{2}, make([]byte, 7)); err == nil {
		t.Error("NewTensor size mismatch accepted")
	}
	// Float16 and bfloat16 round to nearest even.
	for _, c := range []struct {
		in   float32
		dt   DType
		want float32
	}{
		{1 + 1.0/2048, Float16, 1},             // halfway, rounds to even
		{1 + 3.0/2048, Float16, 1 + 2.0/1024},  // halfway, rounds up to even
		{65520, Float16, float32(math.Inf(1))}, // overflows
		{1e-8, Float16, 0},                     // underflows
		{6e-8, Float16, 5.9604645e-08},         // smallest subnormal
		{1 + 1.0/256, BFloat16, 1},             // halfway, to even
		{1 + 3.0/256, BFloat16, 1 + 2.0/128},   // halfway, up
		{3.1415927, BFloat16, 3.140625},        // nearest
		{-2.5, Float16, -2.5},                  // exact
		{float32(math.Inf(-1)), BFloat16, float32(math.Inf(-1))},
	} {
		x := must(FromFloat32(c.dt, []int64{1}, []float32{c.in}))
		got, _ := x.Float32s()
		if got[0] != c.want {
			t.Errorf("%v(%v) = %v, want %v", c.dt, c.in, got[0], c.want)
		}
	}
	nan := must(FromFloat32(Float16, []int64{2}, []float32{float32(math.NaN()), 0}))
	bnan := must(FromFloat32(BFloat16, []int64{1}, []float32{float32(math.NaN())}))
	if g, _ := nan.Float32s(); !math.IsNaN(float64(g[0])) {
		t.Error("float16 NaN")
	}
	if g, _ := bnan.Float32s(); !math.IsNaN(float64(g[0])) {
		t.Error("bfloat16 NaN")
	}
	// Every float16 value survives float16 -> float32 -> float16.
	for h := 0; h < 1<<16; h++ {
		f := halfToFloat32(uint16(h))
		if f != f {
			continue
		}
		if back := float32ToHalf(f); back != uint16(h) {
			t.Fatalf("half %#04x -> %v -> %#04x", h, f, back)
		}
	}
}

func TestSafetensors(t *testing.T) {
	d := sampleTensors(t)
	named, err := NamedTensors(d)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.safetensors")
	md := map[string]string{"format": "pt", "note": "ü \"quoted\""}
	if err := SaveSafetensors(path, named, md); err != nil {
		t.Fatal(err)
	}
	got, gotMD, err := LoadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotMD, md) {
		t.Errorf("metadata %v, want %v", gotMD, md)
	}
	if len(got) != len(named) {
		t.Fatalf("%d tensors, want %d", len(got), len(named))
	}
	for i, nt := range named {
		g := got[i]
		wb, _ := nt.Tensor.Bytes()
		gb, _ := g.Tensor.Bytes()
		if g.Name != nt.Name || g.Tensor.DType() != nt.Tensor.DType() || fmt.Sprint(g.Tensor.Shape) != fmt.Sprint(nt.Tensor.Shape) || !bytes.Equal(wb, gb) {
			t.Errorf("tensor %d: got %s %v %v, want %s %v %v", i, g.Name, g.Tensor.DType(), g.Tensor.Shape, nt.Name, nt.Tensor.DType(), nt.Tensor.Shape)
		}
	}
	raw, _ := os.ReadFile(path)
	hlen := binary.LittleEndian.Uint64(raw)
	if hlen%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", hlen)
	}
	if !bytes.HasPrefix(raw[8:], []byte(`{"__metadata__":{"format":"pt"`)) {
		t.Errorf("header starts %q", raw[8:40])
	}
	if d2 := TensorDict(got); d2.Len() != d.Len() || !d2.Ordered {
		t.Error("TensorDict")
	}
}

func TestBadSafetensors(t *testing.T) {
	header := func(h string) []byte {
		var b bytes.Buffer
		binary.Write(&b, binary.LittleEndian, uint64(len(h)))
		b.WriteString(h)
		b.Write(make([]byte, 8))
		return b.Bytes()
	}
	tests := map[string][]byte{
		"empty":          nil,
		"huge header":    {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		"bad json":       header(`{"a":`),
		"bad dtype":      header(`{"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}`),
		"size mismatch":  header(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`),
		"out of range":   header(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`),
		"negative shape": header(`{"a":{"dtype":"U8","shape":[-8],"data_offsets":[0,8]}}`),
		"overlap":        header(`{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}`),
		"bad metadata":   header(`{"__metadata__":{"a":1}}`),
		"unknown field":  header(`{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8],"x":1}}`),
	}
	for name, data := range tests {
		if _, _, err := ReadSafetensors(bytes.NewReader(data), int64(len(data))); err == nil {
			t.Errorf("%s: read without error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if _, _, err := ReadSafetensors(bytes.NewReader(header(`{}`)), 18); err != nil {
		t.Errorf("empty safetensors: %v", err)
	}
	dup := []NamedTensor{{"a", mustTensor(t)(FromInt64(Uint8, []int64{1}, []int64{1}))}, {"a", nil}}
	if err := WriteSafetensors(io.Discard, dup, nil); err == nil {
		t.Error("repeated names accepted")
	}
}

// A zip checkpoint with two records of one name is refused, naming the file
// and the record: torch.load reads the first, and reading the last (as
// archive/zip's listing order would) gave other weights.
func TestDuplicateZipRecord(t *testing.T) {
	pkl := tensorPickle(t, "FloatStorage", "0", 2, []int64{2}, []int64{1}, 0)
	var buf bytes.Buffer
	zw := &alignedZipWriter{zw: zip.NewWriter(&buf)}
	for _, r := range []struct {
		name string
		data []byte
	}{
		{"archive/data.pkl", pkl},
		{"archive/data/0", le32(1, 2)},
		{"archive/data/0", le32(3, 4)},
		{"archive/version", []byte("3\n")},
	} {
		if err := zw.add(r.name, r.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.zw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dup.pt")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if !errors.Is(err, ErrDuplicateRecord) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `"archive/data/0"`) {
		t.Errorf("error %v, want ErrDuplicateRecord naming %s and archive/data/0", err, path)
	}
	// The same records without the duplicate load.
	good := zipWith(t, pkl, map[string][]byte{"data/0": le32(1, 2)})
	if _, err := Read(bytes.NewReader(good), int64(len(good))); err != nil {
		t.Fatal(err)
	}
}

// le32 is the little-endian bytes of float32 values.
func le32(vals ...float32) []byte {
	b := make([]byte, 0, 4*len(vals))
	for _, v := range vals {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}
