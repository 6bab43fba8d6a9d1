package torchfmt

import (
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkSaveLoad saves and loads a 64 MiB state_dict of 16 float32
// tensors; bytes per operation count both directions.
func BenchmarkSaveLoad(b *testing.B) {
	sd := NewOrderedDict()
	const per = 1 << 20 // float32 elements per tensor
	for i := 0; i < 16; i++ {
		sd.Set(fmt.Sprintf("blocks.%d.weight", i), &Tensor{
			Storage: &Storage{DType: Float32, Data: make([]byte, 4*per)},
			Shape:   []int64{1024, 1024}, Stride: []int64{1024, 1},
		})
	}
	path := filepath.Join(b.TempDir(), "bench.pt")
	b.Run("Save", func(b *testing.B) {
		b.SetBytes(16 * 4 * per)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := Save(path, sd); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Load", func(b *testing.B) {
		b.SetBytes(16 * 4 * per)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := Load(path); err != nil {
				b.Fatal(err)
			}
		}
	})
}
