package train

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/sysmon"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// BenchResult holds the medians of a benchmark (CLI.md's bench --json).
type BenchResult struct {
	Variant string `json:"variant"`
	Preset  string `json:"preset"`
	ImgSize int    `json:"img_size"`
	Batch   int    `json:"batch_size"`
	Threads int    `json:"threads"`
	Device  string `json:"device"`
	// BLAS is the BLAS library libtorch calls (torch.BLASLibrary).
	BLAS string `json:"blas"`
	// GoSysmonIdle says whether the Go runtime's monitor thread ran at
	// SCHED_IDLE (package sysmon; gsrmt-cli sets it unless GSRMT_SYSMON=normal).
	GoSysmonIdle   bool    `json:"go_sysmon_idle"`
	AMP            bool    `json:"amp"`
	Steps          int     `json:"steps"`
	TrainMsPerStep float64 `json:"train_ms_per_step"`
	EvalMsPerStep  float64 `json:"eval_ms_per_step"`
	// TrainMsMin and EvalMsMin are the fastest step of each kind: on a
	// shared machine, the least disturbed measurement.
	TrainMsMin      float64 `json:"train_ms_min"`
	EvalMsMin       float64 `json:"eval_ms_min"`
	TrainImagesPerS float64 `json:"train_images_per_s"`
	EvalImagesPerS  float64 `json:"eval_images_per_s"`
	// PeakRSSMB is the process's peak resident memory (VmHWM).
	PeakRSSMB float64 `json:"peak_rss_mb"`
	// RSSAfterWarmupMB, RSSAfterTrainMB and RSSEndMB are the resident
	// memory after the warm-up steps, after the timed training steps and
	// after the timed evaluation forwards, as the process holds it (free
	// memory that malloc keeps for reuse included).
	RSSAfterWarmupMB float64 `json:"rss_after_warmup_mb"`
	RSSAfterTrainMB  float64 `json:"rss_after_train_mb"`
	RSSEndMB         float64 `json:"rss_end_mb"`
	// TrainRSSGrowthPct is RSSAfterTrainMB over RSSAfterWarmupMB, in per cent:
	// how much resident memory the timed training steps added.
	TrainRSSGrowthPct float64 `json:"train_rss_growth_pct"`
	// HeapAfterWarmupMB and HeapAfterTrainMB are the C heap in use
	// (torch.HeapInUse: live tensors and other allocations, not the free
	// memory malloc keeps); TrainHeapGrowthPct compares them: a leak shows
	// here first.
	HeapAfterWarmupMB  float64 `json:"heap_after_warmup_mb"`
	HeapAfterTrainMB   float64 `json:"heap_after_train_mb"`
	TrainHeapGrowthPct float64 `json:"train_heap_growth_pct"`
	// PeakDeviceMB is, on CUDA, the most device memory in use seen after any
	// step (total minus free, as nvidia-smi reports it: the CUDA context and
	// what the caching allocator holds, which keeps a step's peak reserved).
	PeakDeviceMB float64 `json:"peak_device_mb,omitempty"`
	// CheckpointActivations: the training steps recomputed each block in
	// backward (--checkpoint-activations).
	CheckpointActivations bool `json:"checkpoint_activations"`
	// CUDASpeed ("tf32", "cudnn_benchmark") is what the steps ran with: both
	// false on the CPU, where they do not apply.
	CUDASpeed
}

// BenchCSVHeader is the header row of BenchResult.CSV.
const BenchCSVHeader = "variant,preset,img_size,batch_size,threads,device,amp,steps,train_ms_per_step,eval_ms_per_step,train_ms_min,eval_ms_min," +
	"train_images_per_s,eval_images_per_s,peak_rss_mb,rss_after_warmup_mb,rss_after_train_mb,rss_end_mb,train_rss_growth_pct," +
	"heap_after_warmup_mb,heap_after_train_mb,train_heap_growth_pct,peak_device_mb"

// CSV returns the result as one CSV row in BenchCSVHeader's order.
func (r BenchResult) CSV() string {
	return fmt.Sprintf("%s,%s,%d,%d,%d,%s,%t,%d,%.2f,%.2f,%.2f,%.2f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%.3f,%.1f,%.1f,%.3f,%.1f",
		r.Variant, r.Preset, r.ImgSize, r.Batch, r.Threads, r.Device, r.AMP, r.Steps, r.TrainMsPerStep, r.EvalMsPerStep, r.TrainMsMin, r.EvalMsMin,
		r.TrainImagesPerS, r.EvalImagesPerS, r.PeakRSSMB, r.RSSAfterWarmupMB, r.RSSAfterTrainMB, r.RSSEndMB,
		r.TrainRSSGrowthPct, r.HeapAfterWarmupMB, r.HeapAfterTrainMB, r.TrainHeapGrowthPct, r.PeakDeviceMB)
}

// BenchOptions says what Bench runs.
type BenchOptions struct {
	ImgSize, Batch int
	// Steps timed training steps and as many evaluation forwards follow
	// Warmup untimed ones of each.
	Steps, Warmup int
	Device        gotch.Device
	// AMP runs the forward passes under bf16 autocast (CUDA only).
	AMP bool
	// CheckpointActivations runs the training steps with activation
	// checkpointing per block (train's --checkpoint-activations).
	CheckpointActivations bool
	// CUDASpeed is set in libtorch before the steps on a CUDA device.
	CUDASpeed CUDASpeed
	// MemoryEvery, when positive, calls MemoryLog with the training step
	// and the resident memory (VmRSS, MB, not trimmed) every MemoryEvery
	// training steps, warm-up included.
	MemoryEvery int
	MemoryLog   func(step int, rssMB float64)
	// Profile, when set, names a Chrome trace file that records the
	// libtorch ops of one more training step and evaluation forward, run
	// after the timed ones.
	Profile string
}

// Bench times training steps (forward, backward, AdamW) and evaluation
// forwards of a model on random inputs, after warm-up steps, and returns
// the medians.
func Bench(cfg gsrmt.Config, o BenchOptions) (res BenchResult, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	restoreThreads()
	defer torch.Catch(&err, "bench")
	if o.AMP && o.Device == gotch.CPU {
		return res, fmt.Errorf("amp: --amp is bf16 autocast on CUDA; this benchmark runs on the CPU")
	}
	if o.ImgSize < 1 || o.Batch < 1 || o.Steps < 1 || o.Warmup < 0 {
		return res, fmt.Errorf("bench: image size %d, batch %d, steps %d, warm-up %d: want positive sizes and counts",
			o.ImgSize, o.Batch, o.Steps, o.Warmup)
	}
	res = BenchResult{Variant: cfg.Variant, Preset: cfg.Preset, ImgSize: o.ImgSize, Batch: o.Batch, Threads: torch.NumThreads(),
		Device: DeviceName(o.Device), AMP: o.AMP, Steps: o.Steps, GoSysmonIdle: sysmon.QuietTID() != 0}
	res.CheckpointActivations, res.CUDASpeed = o.CheckpointActivations, o.CUDASpeed.On(o.Device)
	if err := o.CUDASpeed.Apply(o.Device); err != nil {
		return res, err
	}
	bm, err := newBenchModel(cfg, o.ImgSize, o.Batch, o.Device, o.AMP)
	if err != nil {
		return res, err
	}
	bm.checkpoint = o.CheckpointActivations
	defer bm.close()
	t := &benchTimer{o: o, bm: bm}
	if err := t.run(&res); err != nil {
		return res, err
	}
	res.TrainImagesPerS = float64(o.Batch) / res.TrainMsPerStep * 1000
	res.EvalImagesPerS = float64(o.Batch) / res.EvalMsPerStep * 1000
	res.PeakRSSMB = rssMB("VmHWM")
	if res.RSSAfterWarmupMB > 0 {
		res.TrainRSSGrowthPct = (res.RSSAfterTrainMB/res.RSSAfterWarmupMB - 1) * 100
	}
	if res.HeapAfterWarmupMB > 0 {
		res.TrainHeapGrowthPct = (res.HeapAfterTrainMB/res.HeapAfterWarmupMB - 1) * 100
	}
	res.PeakDeviceMB = float64(t.peakDevice) / (1 << 20)
	res.BLAS = torch.BLASLibrary()
	return res, nil
}

// benchTimer runs and times a benchmark's steps: warm-up, timed training
// steps, timed evaluation forwards, and the optional profiled pair.
type benchTimer struct {
	o          BenchOptions
	bm         *benchModel
	trainSteps int    // training steps run so far, warm-up included
	peakDevice uint64 // bytes in use on the CUDA device, at most
}

// run fills res's timings and memory samples.
func (t *benchTimer) run(res *BenchResult) error {
	if _, err := t.time(t.trainStep, t.o.Warmup); err != nil {
		return err
	}
	if _, err := t.time(t.bm.evalStep, t.o.Warmup); err != nil {
		return err
	}
	res.RSSAfterWarmupMB, res.HeapAfterWarmupMB = rssMB("VmRSS"), float64(torch.HeapInUse())/(1<<20)
	tr, err := t.time(t.trainStep, t.o.Steps)
	if err != nil {
		return err
	}
	res.RSSAfterTrainMB, res.HeapAfterTrainMB = rssMB("VmRSS"), float64(torch.HeapInUse())/(1<<20)
	ev, err := t.time(t.bm.evalStep, t.o.Steps)
	if err != nil {
		return err
	}
	res.RSSEndMB = rssMB("VmRSS")
	if t.o.Profile != "" {
		if err := torch.StartProfile(t.o.Profile); err != nil {
			return err
		}
		_, err1 := t.time(t.trainStep, 1)
		_, err2 := t.time(t.bm.evalStep, 1)
		if err := errors.Join(err1, err2, torch.StopProfile()); err != nil {
			return fmt.Errorf("bench: profiled steps: %w", err)
		}
	}
	res.TrainMsPerStep, res.EvalMsPerStep = median(tr), median(ev)
	res.TrainMsMin, res.EvalMsMin = minimum(tr), minimum(ev)
	return nil
}

// trainStep runs one training step and logs the resident memory when due.
func (t *benchTimer) trainStep() error {
	if err := t.bm.trainStep(); err != nil {
		return err
	}
	t.trainSteps++
	if t.o.MemoryEvery > 0 && t.o.MemoryLog != nil && t.trainSteps%t.o.MemoryEvery == 0 {
		t.o.MemoryLog(t.trainSteps, rssMB("VmRSS"))
	}
	return nil
}

// time runs f n times and returns each run's milliseconds; on CUDA it
// synchronizes around each run and samples the device's memory after it.
func (t *benchTimer) time(f func() error, n int) ([]float64, error) {
	var ms []float64
	for i := 0; i < n; i++ {
		if err := t.sync(); err != nil {
			return nil, err
		}
		start := time.Now()
		if err := f(); err != nil {
			return nil, err
		}
		if err := t.sync(); err != nil {
			return nil, err
		}
		ms = append(ms, float64(time.Since(start).Microseconds())/1000)
		if t.o.Device != gotch.CPU {
			if used, _, err := torch.CUDAMemory(t.o.Device.Value); err == nil && used > t.peakDevice {
				t.peakDevice = used
			}
		}
	}
	return ms, nil
}

func (t *benchTimer) sync() error {
	if t.o.Device == gotch.CPU {
		return nil
	}
	return torch.Synchronize(t.o.Device.Value)
}

// benchModel is a model, its optimizer and a fixed random batch: what a
// benchmark step runs (Bench and the Go benchmarks share it).
type benchModel struct {
	m          *gsrmt.Model
	opt        *AdamW
	x, labels  *ts.Tensor
	amp        bool
	checkpoint bool // activation checkpointing per block
}

func newBenchModel(cfg gsrmt.Config, imgSize, batch int, dev gotch.Device, amp bool) (*benchModel, error) {
	m, err := gsrmt.New(cfg, dev)
	if err != nil {
		return nil, err
	}
	opt, err := NewAdamW(m.Trainable(), DefaultAdamW())
	if err != nil {
		m.Close()
		return nil, err
	}
	lab := make([]int64, batch)
	for i := range lab {
		lab[i] = int64(i % cfg.NumClasses)
	}
	return &benchModel{m: m, opt: opt, amp: amp,
		x:      ts.MustRandn([]int64{int64(batch), int64(cfg.InChans), int64(imgSize), int64(imgSize)}, gotch.Float, dev),
		labels: ts.MustOfSlice(lab).MustTo(dev, true)}, nil
}

func (b *benchModel) close() {
	b.x.MustDrop()
	b.labels.MustDrop()
	b.opt.Close()
	b.m.Close()
}

// trainStep runs forward (under bf16 autocast with amp), the loss, backward
// and an AdamW update.
func (b *benchModel) trainStep() error {
	if err := b.opt.ZeroGrad(); err != nil {
		return err
	}
	if b.amp {
		if _, err := torch.SetAutocast(true, torch.BFloat16); err != nil {
			return err
		}
	}
	var logits *ts.Tensor
	var err error
	var bp backprop
	if b.checkpoint {
		logits, bp.rc, err = b.m.ForwardCheckpointed(b.x, b.autocast)
	} else {
		logits, err = b.m.Forward(b.x, true)
	}
	if b.amp {
		torch.SetAutocast(false, torch.BFloat16)
	}
	if err != nil {
		return err
	}
	l32 := logits.MustTotype(gotch.Float, true)
	loss, err := CrossEntropy(l32, b.labels)
	l32.MustDrop()
	if err != nil {
		bp.release()
		return err
	}
	err = bp.run(loss)
	loss.MustDrop()
	if err != nil {
		return err
	}
	return b.opt.Update(1e-4)
}

// autocast switches bf16 autocast for a checkpointed recomputation (nil
// without amp).
func (b *benchModel) autocast(on bool) error {
	if !b.amp {
		return nil
	}
	_, err := torch.SetAutocast(on, torch.BFloat16)
	return err
}

// evalStep runs an evaluation forward under NoGrad.
func (b *benchModel) evalStep() (err error) {
	torch.NoGrad(func() {
		if b.amp {
			torch.SetAutocast(true, torch.BFloat16)
			defer torch.SetAutocast(false, torch.BFloat16)
		}
		var y *ts.Tensor
		if y, err = b.m.Forward(b.x, false); err == nil {
			y.MustDrop()
		}
	})
	return err
}

func minimum(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	m := v[0]
	for _, x := range v[1:] {
		m = math.Min(m, x)
	}
	return m
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
