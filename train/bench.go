package train

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// BenchResult holds the medians of a benchmark (CLI.md's bench --json).
type BenchResult struct {
	Variant          string  `json:"variant"`
	Preset           string  `json:"preset"`
	ImgSize          int     `json:"img_size"`
	Batch            int     `json:"batch_size"`
	Threads          int     `json:"threads"`
	Device           string  `json:"device"`
	AMP              bool    `json:"amp"`
	Steps            int     `json:"steps"`
	TrainMsPerStep   float64 `json:"train_ms_per_step"`
	EvalMsPerStep    float64 `json:"eval_ms_per_step"`
	TrainImagesPerS  float64 `json:"train_images_per_s"`
	EvalImagesPerS   float64 `json:"eval_images_per_s"`
	PeakRSSMB        float64 `json:"peak_rss_mb"`
	RSSAfterWarmupMB float64 `json:"rss_after_warmup_mb"`
	RSSEndMB         float64 `json:"rss_end_mb"`
}

// Bench times training steps (forward, backward, AdamW) and evaluation
// forwards of a model on random inputs, after warm-up steps, and returns
// the medians.
func Bench(cfg gsrmt.Config, imgSize, batch, steps, warmup int, dev gotch.Device, amp bool) (res BenchResult, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("bench: %v", r)
		}
	}()
	if amp && dev == gotch.CPU {
		return res, fmt.Errorf("amp: --amp is bf16 autocast on CUDA; this benchmark runs on the CPU")
	}
	res = BenchResult{Variant: cfg.Variant, Preset: cfg.Preset, ImgSize: imgSize, Batch: batch, Threads: torch.NumThreads(),
		Device: DeviceName(dev), AMP: amp, Steps: steps}
	m, err := gsrmt.New(cfg, dev)
	if err != nil {
		return res, err
	}
	defer m.Close()
	opt, err := NewAdamW(m.Trainable(), DefaultAdamW())
	if err != nil {
		return res, err
	}
	defer opt.Close()
	x := ts.MustRandn([]int64{int64(batch), int64(cfg.InChans), int64(imgSize), int64(imgSize)}, gotch.Float, dev)
	defer x.MustDrop()
	lab := make([]int64, batch)
	for i := range lab {
		lab[i] = int64(i % cfg.NumClasses)
	}
	labels := ts.MustOfSlice(lab).MustTo(dev, true)
	defer labels.MustDrop()
	sync := func() {
		if dev != gotch.CPU {
			if err := torch.Synchronize(dev.Value); err != nil {
				panic(err) // recovered above into Bench's error
			}
		}
	}

	trainStep := func() error {
		opt.ZeroGrad()
		if amp {
			if _, err := torch.SetAutocast(true, torch.BFloat16); err != nil {
				return err
			}
		}
		logits, err := m.Forward(x, true)
		if amp {
			torch.SetAutocast(false, torch.BFloat16)
		}
		if err != nil {
			return err
		}
		l32 := logits.MustTotype(gotch.Float, true)
		loss, err := CrossEntropy(l32, labels)
		l32.MustDrop()
		if err != nil {
			return err
		}
		err = loss.Backward()
		loss.MustDrop()
		if err != nil {
			return err
		}
		return opt.Update(1e-4)
	}
	evalStep := func() (err error) {
		torch.NoGrad(func() {
			if amp {
				torch.SetAutocast(true, torch.BFloat16)
				defer torch.SetAutocast(false, torch.BFloat16)
			}
			var y *ts.Tensor
			if y, err = m.Forward(x, false); err == nil {
				y.MustDrop()
			}
		})
		return err
	}
	timeIt := func(f func() error, n int) ([]float64, error) {
		var ms []float64
		for i := 0; i < n; i++ {
			sync()
			start := time.Now()
			if err := f(); err != nil {
				return nil, err
			}
			sync()
			ms = append(ms, float64(time.Since(start).Microseconds())/1000)
		}
		return ms, nil
	}
	if _, err := timeIt(trainStep, warmup); err != nil {
		return res, err
	}
	if _, err := timeIt(evalStep, warmup); err != nil {
		return res, err
	}
	torch.TrimHeap()
	res.RSSAfterWarmupMB = rssMB("VmRSS")
	tr, err := timeIt(trainStep, steps)
	if err != nil {
		return res, err
	}
	ev, err := timeIt(evalStep, steps)
	if err != nil {
		return res, err
	}
	torch.TrimHeap()
	res.RSSEndMB = rssMB("VmRSS")
	res.TrainMsPerStep, res.EvalMsPerStep = median(tr), median(ev)
	res.TrainImagesPerS = float64(batch) / res.TrainMsPerStep * 1000
	res.EvalImagesPerS = float64(batch) / res.EvalMsPerStep * 1000
	res.PeakRSSMB = rssMB("VmHWM")
	return res, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// rssMB reads a memory figure (VmRSS, VmHWM) of this process in MB.
func rssMB(field string) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}
