package train

import (
	"runtime"
	"testing"
	"time"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/sysmon"
	"github.com/sugarme/gotch"
)

// The Go benchmarks behind gsrmt-cli bench: a training step (forward,
// backward, AdamW) and an evaluation forward of nano at 32 px, batch 64, per
// variant, with libtorch's thread count (OMP_NUM_THREADS sets it; Debian's
// libtorch starts with one). As gsrmt-cli does, they lower the Go runtime's
// monitor thread first (package sysmon; GSRMT_SYSMON=normal leaves it).
// Run: go test -bench . -run XXX ./train
func BenchmarkTrainStep(b *testing.B) { runModelBench(b, true) }

func BenchmarkEvalForward(b *testing.B) { runModelBench(b, false) }

func runModelBench(b *testing.B, training bool) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if _, err := sysmon.QuietUnlessDisabled(time.Second); err != nil {
		b.Logf("sysmon stays at normal priority: %v", err)
	}
	for _, variant := range []string{"swat", "retention", "rmt"} {
		b.Run(variant, func(b *testing.B) {
			cfg, err := gsrmt.PresetConfig(variant, "nano", 100)
			if err != nil {
				b.Fatal(err)
			}
			bm, err := newBenchModel(cfg, 32, 64, gotch.CPU, false)
			if err != nil {
				b.Fatal(err)
			}
			defer bm.close()
			step := bm.evalStep
			if training {
				step = bm.trainStep
			}
			if err := step(); err != nil { // warm-up: tables, allocator
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := step(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(64*b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
