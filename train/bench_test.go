package train

import (
	"runtime"
	"testing"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// The Go benchmarks behind gsrmt-cli bench: a training step (forward,
// backward, AdamW) and an evaluation forward of nano at 32 px, batch 64, per
// variant, with libtorch's thread count (OMP_NUM_THREADS sets it; Debian's
// libtorch starts with one). Run: go test -bench . -run XXX ./train
func BenchmarkTrainStep(b *testing.B) { benchModel(b, true) }

func BenchmarkEvalForward(b *testing.B) { benchModel(b, false) }

func benchModel(b *testing.B, training bool) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, variant := range []string{"swat", "retention", "rmt"} {
		b.Run(variant, func(b *testing.B) {
			cfg, err := gsrmt.PresetConfig(variant, "nano", 100)
			if err != nil {
				b.Fatal(err)
			}
			m, err := gsrmt.New(cfg, gotch.CPU)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			opt, err := NewAdamW(m.Trainable(), DefaultAdamW())
			if err != nil {
				b.Fatal(err)
			}
			defer opt.Close()
			x := ts.MustRandn([]int64{64, 3, 32, 32}, gotch.Float, gotch.CPU)
			defer x.MustDrop()
			lab := make([]int64, 64)
			for i := range lab {
				lab[i] = int64(i % 100)
			}
			labels := ts.MustOfSlice(lab)
			defer labels.MustDrop()
			step := func() {
				if !training {
					torch.NoGrad(func() {
						y, err := m.Forward(x, false)
						if err != nil {
							b.Fatal(err)
						}
						y.MustDrop()
					})
					return
				}
				if err := opt.ZeroGrad(); err != nil {
					b.Fatal(err)
				}
				y, err := m.Forward(x, true)
				if err != nil {
					b.Fatal(err)
				}
				loss, err := CrossEntropy(y, labels)
				y.MustDrop()
				if err != nil {
					b.Fatal(err)
				}
				if err := loss.Backward(); err != nil {
					b.Fatal(err)
				}
				loss.MustDrop()
				if err := opt.Update(1e-4); err != nil {
					b.Fatal(err)
				}
			}
			step() // warm-up: tables, allocator
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				step()
			}
			b.ReportMetric(float64(64*b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
