package torchfmt

import (
	"bytes"
	"testing"
)

func fuzzSeedTree(t testing.TB) *Dict {
	must := mustTensor(t)
	base := must(FromFloat32(Float16, []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6}))
	return set(t, NewDict(),
		"w", base,
		"t", &Tensor{Storage: base.Storage, StorageOffset: 1, Shape: []int64{2, 2}, Stride: []int64{1, 3}},
		"i", must(FromInt64(Int64, []int64{2}, []int64{-1, 1})),
		"n", []any{int64(1), "x", nil, Tuple{true}},
	)
}

// FuzzRead checks that no input makes the checkpoint reader panic. Plain go
// test runs only the seed corpus.
func FuzzRead(f *testing.F) {
	var z bytes.Buffer
	if err := Write(&z, fuzzSeedTree(f)); err != nil {
		f.Fatal(err)
	}
	f.Add(z.Bytes())
	f.Add(writeLegacy(f, fuzzSeedTree(f), false))
	f.Add(writeLegacy(f, fuzzSeedTree(f), true))
	f.Add([]byte("\x80\x02K\x05."))
	f.Add(zipWith(f, []byte(namespacePickle), nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Read(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		// Whatever was read is well-formed enough to write back.
		if err := Write(&bytes.Buffer{}, v); err != nil {
			t.Logf("read but cannot write back: %v", err)
		}
	})
}

// FuzzReadSafetensors checks that no input makes the safetensors reader
// panic.
func FuzzReadSafetensors(f *testing.F) {
	named, err := NamedTensors(set(f, NewDict(), "a", mustTensor(f)(FromInt64(Int16, []int64{2}, []int64{1, 2}))))
	if err != nil {
		f.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteSafetensors(&b, named, map[string]string{"k": "v"}); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, _, err := ReadSafetensors(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		for _, nt := range ts {
			if _, err := nt.Tensor.Bytes(); err != nil {
				t.Fatalf("read an invalid tensor %q: %v", nt.Name, err)
			}
		}
	})
}
