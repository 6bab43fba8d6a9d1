package datasets

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/gsrmt/gsrmt/datasets/internal/benchjpeg"
	"github.com/gsrmt/gsrmt/internal/testutil"
)

var (
	benchJPEGOnce sync.Once
	benchJPEGRoot string
	benchJPEGErr  error
)

// benchJPEGFolder returns the ImageFolder root of the benchmark's real-size
// JPEGs (package benchjpeg: 1000 CIFAR-10 training images upscaled to
// 500x375 with texture, quality 90), generating it on first use into
// GSRMT_BENCH_JPEG_DIR, or into gsrmt-bench-jpegs under the temporary
// folder when that is unset; an up-to-date folder is reused.
func benchJPEGFolder(b *testing.B) string {
	b.Helper()
	cifar := os.Getenv("GSRMT_CIFAR10_DIR")
	if cifar == "" {
		cifar = filepath.Join(testutil.RepoRoot(b), "..", "shared", "data", "cifar10")
	}
	benchJPEGOnce.Do(func() {
		dir := os.Getenv("GSRMT_BENCH_JPEG_DIR")
		if dir == "" {
			dir = filepath.Join(os.TempDir(), "gsrmt-bench-jpegs")
		}
		_, benchJPEGErr = benchjpeg.Ensure(dir, benchjpeg.Default(cifar))
		benchJPEGRoot = dir
	})
	if benchJPEGErr != nil {
		if _, err := os.Stat(cifar); err != nil {
			b.Skipf("no benchmark JPEGs and no CIFAR-10 JPEGs to make them from at %s (set GSRMT_CIFAR10_DIR or GSRMT_BENCH_JPEG_DIR): %v", cifar, benchJPEGErr)
		}
		b.Fatal(benchJPEGErr)
	}
	return benchJPEGRoot
}

// benchWorkers returns the worker counts of BenchmarkTrainLoader224:
// GSRMT_BENCH_WORKERS (comma-separated), 1 and 2 by default.
func benchWorkers(b *testing.B) []int {
	s := os.Getenv("GSRMT_BENCH_WORKERS")
	if s == "" {
		return []int{1, 2}
	}
	var ws []int
	for _, f := range strings.Split(s, ",") {
		w, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || w < 1 {
			b.Fatalf("GSRMT_BENCH_WORKERS=%q: want positive worker counts", s)
		}
		ws = append(ws, w)
	}
	return ws
}

// cpuSeconds returns the user+system CPU time of the process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkTrainLoader224 measures the 224 px training pipeline end to end
// on a folder of real-size JPEGs: a Loader over the ImageFolder (batch 64,
// shuffled, drop last) decodes, applies TrainTransform(224, false)
// (RandomResizedCrop, horizontal flip) and normalizes to float32 NCHW. One
// op is one batch. Each sub-benchmark runs N worker goroutines with
// GOMAXPROCS=N, so that it uses N cores, the counterpart of torchvision's
// DataLoader with num_workers=N (bench/torchvision_pipeline.py; both are run
// side by side by bench/datasets-bench.sh). An untimed warm-up epoch comes
// first. Metrics: images/s (wall clock), images/s/core (divided by N) and
// images/cpu-s (per second of CPU time of the whole process).
func BenchmarkTrainLoader224(b *testing.B) {
	root := benchJPEGFolder(b)
	ds, err := OpenImageFolder(root, Train)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 64
	for _, w := range benchWorkers(b) {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(w))
			l, err := NewLoader(ds, LoaderConfig{
				BatchSize: batch, Workers: w, Shuffle: true, DropLast: true, Seed: 1,
				Transform: TrainTransform(224, false),
				Normalize: Normalize{Mean: ImageNetMean, Std: ImageNetStd},
			})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			// run yields n batches, starting new epochs as needed.
			epoch := 0
			run := func(n int) {
				for n > 0 {
					it := l.Epoch(ctx, epoch)
					for ; n > 0; n-- {
						bt, err := it.Next()
						if err == io.EOF {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
						if bt.N != batch || bt.H != 224 || bt.W != 224 || bt.C != 3 {
							b.Fatalf("batch %dx%dx%dx%d", bt.N, bt.C, bt.H, bt.W)
						}
						bt.Release()
					}
					it.Close()
					epoch++
				}
			}
			run(l.NumBatches()) // warm-up epoch
			runtime.GC()
			cpu0 := cpuSeconds()
			b.ResetTimer()
			run(b.N)
			b.StopTimer()
			cpu := cpuSeconds() - cpu0
			images := float64(b.N * batch)
			rate := images / b.Elapsed().Seconds()
			b.ReportMetric(rate, "images/s")
			b.ReportMetric(rate/float64(w), "images/s/core")
			if cpu > 0 {
				b.ReportMetric(images/cpu, "images/cpu-s")
			}
		})
	}
}
