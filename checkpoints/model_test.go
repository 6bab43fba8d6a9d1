package checkpoints

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/checkpoints/torchfmt"
	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// nanoModel builds a nano model for 32 px inputs with every state entry
// perturbed (so that BatchNorm statistics and biases are not 0/1) and
// counters set, seeded.
func nanoModel(t testing.TB, variant string, classes int, seed uint64, tweak ...func(*gsrmt.Config)) *gsrmt.Model {
	t.Helper()
	cfg, err := gsrmt.PresetConfig(variant, "nano", classes)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ImageSize = 32
	for _, f := range tweak {
		f(&cfg)
	}
	if err := torch.ManualSeed(seed); err != nil {
		t.Fatal(err)
	}
	m, err := gsrmt.New(cfg, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	perturbModel(t, m, int64(seed))
	return m
}

func perturbModel(t testing.TB, m *gsrmt.Model, counter int64) {
	t.Helper()
	torch.NoGrad(func() {
		for _, p := range m.Params() {
			var src *ts.Tensor
			if p.Counter {
				src = ts.MustOfSlice([]int64{counter + 3}).MustSqueeze(true)
			} else {
				noise := ts.MustRandn(p.Tensor.MustSize(), gotch.Float, gotch.CPU)
				noise.MustMulScalar_(ts.FloatScalar(0.05))
				src = p.Tensor.MustAdd(noise, false)
				noise.MustDrop()
				if strings.HasSuffix(p.Name, "running_var") {
					src = src.MustAbs(true)
					src.MustAddScalar_(ts.FloatScalar(0.5))
				}
			}
			if err := m.SetTensor(p.Name, src); err != nil {
				t.Fatal(err)
			}
			src.MustDrop()
		}
	})
}

func randInput(t testing.TB, seed uint64) *ts.Tensor {
	t.Helper()
	if err := torch.ManualSeed(seed); err != nil {
		t.Fatal(err)
	}
	x := ts.MustRandn([]int64{2, 3, 32, 32}, gotch.Float, gotch.CPU)
	t.Cleanup(x.MustDrop)
	return x
}

func evalLogits(t testing.TB, m *gsrmt.Model, x *ts.Tensor) []float32 {
	t.Helper()
	var out []float32
	var err error
	torch.NoGrad(func() {
		var y *ts.Tensor
		if y, err = m.Forward(x, false); err == nil {
			out = y.Vals().([]float32)
			y.MustDrop()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func paramValues(t testing.TB, m *gsrmt.Model, name string) []float32 {
	t.Helper()
	params := m.Params()
	for _, p := range params {
		if p.Name == name {
			c, err := FromTorchTensor(p.Tensor)
			if err != nil {
				t.Fatal(err)
			}
			if c.DType() == Int64 {
				v, _ := c.Int64s()
				return []float32{float32(v[0])}
			}
			v, _ := c.Float32s()
			return v
		}
	}
	t.Fatalf("no parameter %s", name)
	return nil
}

// model -> .pt -> a fresh model gives identical logits and state.
func TestModelRoundTrip(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, variant := range gsrmt.Variants {
		t.Run(variant, func(t *testing.T) {
			a := nanoModel(t, variant, 10, 1)
			b := nanoModel(t, variant, 10, 2)
			x := randInput(t, 3)
			want := evalLogits(t, a, x)
			if slices.Equal(want, evalLogits(t, b, x)) {
				t.Fatal("two seeds gave the same logits")
			}
			state, err := ModelStateDict(a)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			params := a.Params()
			for _, p := range params {
				names = append(names, p.Name)
			}
			for i, k := range state.Keys() {
				if k != names[i] {
					t.Fatalf("state key %d is %v, want %s", i, k, names[i])
				}
			}
			if v, _ := state.Get("stem.bn1.num_batches_tracked"); len(v.(*Tensor).Shape) != 0 || v.(*Tensor).DType() != Int64 {
				t.Errorf("num_batches_tracked: %+v", v)
			}
			path := filepath.Join(t.TempDir(), "w.pt")
			if err := Save(path, state); err != nil {
				t.Fatal(err)
			}
			rep, err := LoadWeights(path, b, true)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() || len(rep.Loaded) != len(names) {
				t.Errorf("report %+v", rep)
			}
			if got := evalLogits(t, b, x); !slices.Equal(got, want) {
				t.Errorf("logits after load differ:\n%v\n%v", got, want)
			}
			if c := paramValues(t, b, "head.bn.num_batches_tracked"); c[0] != 4 {
				t.Errorf("counter after load %v, want 4", c)
			}
		})
	}
}

// A strict load names every problem at once and loads nothing.
func TestStrictListsAllProblems(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a := nanoModel(t, "swat", 10, 1)
	b := nanoModel(t, "swat", 10, 2)
	state, err := ModelStateDict(a)
	if err != nil {
		t.Fatal(err)
	}
	state.Delete("stages.1.blocks.0.norm1.weight")
	state.Delete("head.bn.running_mean")
	bogus, _ := FromFloat32(Float32, []int64{1}, []float32{1})
	state.Set("stages.9.extra.weight", bogus)
	wrong, _ := FromFloat32(Float32, []int64{3, 3}, make([]float32, 9))
	state.Set("stem.conv1.bias", wrong)
	intW, _ := FromInt64(Int64, []int64{10}, make([]int64, 10))
	state.Set("head.fc.bias", intW)

	before := paramValues(t, b, "stem.conv1.weight")
	rep, err := LoadModelState(b, state, true)
	if err == nil {
		t.Fatal("strict load of a broken state succeeded")
	}
	var sme *StateMismatchError
	if !errors.As(err, &sme) {
		t.Fatalf("error is a %T: %v", err, err)
	}
	msg := err.Error()
	for _, want := range []string{"stages.1.blocks.0.norm1.weight", "head.bn.running_mean", "stages.9.extra.weight",
		"stem.conv1.bias (checkpoint [3 3], model [16])", "head.fc.bias (want a float tensor, checkpoint has int64)",
		"2 missing", "1 unexpected", "2 size mismatch"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q:\n%s", want, msg)
		}
	}
	if len(rep.Loaded) != 0 || len(sme.Report.Missing) != 2 || len(sme.Report.Unexpected) != 1 || len(sme.Report.Mismatched) != 2 {
		t.Errorf("report %+v", sme.Report)
	}
	if !slices.Equal(before, paramValues(t, b, "stem.conv1.weight")) {
		t.Error("a failed strict load changed the model")
	}

	// The same error through LoadWeights names the file.
	path := filepath.Join(t.TempDir(), "broken.pt")
	if err := Save(path, state); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadWeights(path, b, true); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "stages.9.extra.weight") {
		t.Errorf("LoadWeights error: %v", err)
	}
}

// Non-strict: a 100-class checkpoint fine-tunes a 10-class model: everything
// but head.fc loads.
func TestNonStrictOtherClassCount(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a := nanoModel(t, "retention", 100, 1)
	b := nanoModel(t, "retention", 10, 2)
	path := filepath.Join(t.TempDir(), "ck.pt")
	if err := SaveTraining(path, a, nil); err != nil {
		t.Fatal(err)
	}
	fcBefore := paramValues(t, b, "head.fc.weight")
	if _, err := LoadWeights(path, b, true); err == nil || !strings.Contains(err.Error(), "head.fc.weight (checkpoint [100 1024], model [10 1024])") {
		t.Errorf("strict load: %v", err)
	}
	rep, err := LoadWeights(path, b, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Missing) != 0 || len(rep.Unexpected) != 0 || len(rep.Mismatched) != 2 ||
		rep.Mismatched[0].Name != "head.fc.weight" || rep.Mismatched[1].Name != "head.fc.bias" {
		t.Errorf("report %+v", rep)
	}
	params := b.Params()
	if len(rep.Loaded) != len(params)-2 {
		t.Errorf("loaded %d entries, want all but 2 of %d", len(rep.Loaded), len(params))
	}
	if !slices.Equal(paramValues(t, a, "head.proj.weight"), paramValues(t, b, "head.proj.weight")) ||
		!slices.Equal(paramValues(t, a, "stages.2.blocks.0.attn.q.weight"), paramValues(t, b, "stages.2.blocks.0.attn.q.weight")) {
		t.Error("a matching entry was not loaded")
	}
	if !slices.Equal(fcBefore, paramValues(t, b, "head.fc.weight")) {
		t.Error("the mismatched head changed")
	}

	// A state that fits nothing is an error even when not strict.
	junk := NewOrderedDict()
	one, _ := FromFloat32(Float32, []int64{1}, []float32{1})
	junk.Set("foo", one)
	if _, err := LoadModelState(b, junk, false); err == nil || !strings.Contains(err.Error(), "foo") {
		t.Errorf("non-strict load of a foreign state: %v", err)
	}
}

// Keys of a DataParallel model ("module.") load; half-precision weights
// are cast.
func TestPrefixAndHalfPrecision(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a := nanoModel(t, "rmt", 10, 1)
	b := nanoModel(t, "rmt", 10, 2)
	state, err := ModelStateDict(a)
	if err != nil {
		t.Fatal(err)
	}
	wrapped := NewOrderedDict()
	for _, e := range state.Entries() {
		v := e.Value.(*Tensor)
		if v.DType() == Float32 {
			f, _ := v.Float32s()
			v, _ = FromFloat32(Float16, v.Shape, f)
		}
		wrapped.Set("module."+e.Key.(string), v)
	}
	top := NewDict()
	top.Set("state_dict", wrapped)
	top.Set("epoch", int64(3))
	path := filepath.Join(t.TempDir(), "dp.pt")
	if err := Save(path, top); err != nil {
		t.Fatal(err)
	}
	rep, err := LoadWeights(path, b, true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.StrippedPrefix != "module." {
		t.Errorf("prefix %q", rep.StrippedPrefix)
	}
	x := randInput(t, 5)
	wa, wb := evalLogits(t, a, x), evalLogits(t, b, x)
	var maxd float64
	for i := range wa {
		d := float64(wa[i] - wb[i])
		if d < 0 {
			d = -d
		}
		maxd = max(maxd, d)
	}
	if maxd == 0 || maxd > 0.05 {
		t.Errorf("float16 weights: logits differ by %g", maxd)
	}
	if _, _, err := ReadConfig(path); !errors.Is(err, ErrNoConfig) || !strings.Contains(err.Error(), path) {
		t.Errorf("ReadConfig of a config-less file: %v", err)
	}
}

// safetensors export -> import gives the same model and records the config.
func TestSafetensorsExportImport(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a := nanoModel(t, "swat", 10, 1)
	b := nanoModel(t, "swat", 10, 2)
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	if err := ExportSafetensors(path, a); err != nil {
		t.Fatal(err)
	}
	tensors, md, err := torchfmt.LoadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	params := a.Params()
	for _, p := range params {
		names = append(names, p.Name)
	}
	if len(tensors) != len(names) || md["format"] != "pt" || !strings.Contains(md["config"], `"variant":"swat"`) {
		t.Errorf("%d tensors, metadata %v", len(tensors), md)
	}
	for i, nt := range tensors {
		if nt.Name != names[i] {
			t.Fatalf("tensor %d is %s, want %s", i, nt.Name, names[i])
		}
	}
	// Detected by content too, whatever the extension.
	other := filepath.Join(dir, "weights.bin")
	data, _ := os.ReadFile(path)
	if err := os.WriteFile(other, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadWeights(other, b, true); err != nil {
		t.Fatal(err)
	}
	x := randInput(t, 3)
	if !slices.Equal(evalLogits(t, a, x), evalLogits(t, b, x)) {
		t.Error("logits differ after a safetensors round trip")
	}
	cfg, extra, err := ReadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, a.Config) || extra != nil {
		t.Errorf("config %+v extra %v, want %+v", cfg, extra, a.Config)
	}
}

// A full training checkpoint comes back as it was saved.
func TestTrainingRoundTrip(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// Non-default switches must survive.
	tweak := func(c *gsrmt.Config) { c.Gate, c.RoPE, c.WindowSize, c.Preset = "headwise", false, 4, "" }
	m := nanoModel(t, "retention", 10, 1, tweak)
	var names []string
	var mom1, mom2 []*ts.Tensor
	for _, p := range m.Trainable() {
		names = append(names, p.Name)
		a := ts.MustRandn(p.Tensor.MustSize(), gotch.Float, gotch.CPU)
		b := a.MustMul(a, false)
		mom1, mom2 = append(mom1, a), append(mom2, b)
	}
	defer func() {
		for i := range mom1 {
			mom1[i].MustDrop()
			mom2[i].MustDrop()
		}
	}()
	hyper := map[string]float64{"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.05}
	opt, err := NewOptimizerState(123, hyper, names, mom1, mom2)
	if err != nil {
		t.Fatal(err)
	}
	ema, err := ModelStateDict(nanoModel(t, "retention", 10, 9, tweak))
	if err != nil {
		t.Fatal(err)
	}
	gen := ts.MustOnes([]int64{5}, gotch.Uint8, gotch.CPU)
	defer gen.MustDrop()
	run := &RunInfo{Dataset: "cifar10", DataDir: "/data/cifar", ClassNames: []string{"plane", "car"}, ImgSize: 32,
		NormMean: []float32{0.4914, 0.4822, 0.4465}, NormStd: []float32{0.247, 0.243, 0.261}, SplitSeed: 1<<63 + 5, Recipe: "cifar"}
	sched := &SchedulerState{Type: "warmup-cosine", BaseLR: 1e-3, MinLR: 1e-5, WarmupSteps: 5, TotalSteps: 200, Step: 123}
	pos := &Position{Epoch: 7, Batch: 3, LossSum: 12.5, Hits: 30, Seen: 40, Seconds: 1.5, LastLR: 2e-4, BestTop1: 91.5, BestEpoch: 6, Skipped: 1}
	epochs := []EpochRecord{
		{Epoch: 1, LR: 1e-3, TrainLoss: 2.5, TrainTop1: 10, TestLoss: math.NaN(), TestTop1: math.NaN(), TestTop5: math.NaN(),
			EMATop1: math.NaN(), ImagesPerS: 100, Seconds: 3},
		{Epoch: 2, LR: 9e-4, TrainLoss: 2, TrainTop1: 20, TestLoss: 1.5, TestTop1: 50, TestTop5: 90, EMATop1: 48, ImagesPerS: 110,
			Seconds: 2.5, SkippedImages: 2},
	}
	st := &TrainingState{
		Run: run,
		ConfigExtra: map[string]any{
			"normalization": map[string][]float64{"mean": {0.4914, 0.4822, 0.4465}, "std": {0.247, 0.243, 0.261}},
			"split":         map[string]any{"rule": "official", "seed": 0},
		},
		Epoch:     7,
		Step:      123,
		Optimizer: opt,
		Scheduler: sched,
		EMA:       ema,
		RNG: map[string]any{
			"seed":       uint64(1 << 63),
			"go_rand":    []byte{1, 2, 3, 255},
			"torch_cpu":  gen,
			"loader_pos": []int{3, 4},
		},
		Metrics:  map[string]any{"best_top1": 91.5, "last_top1": float32(90.25), "best_epoch": 6},
		Position: pos,
		Epochs:   epochs,
	}
	path := filepath.Join(t.TempDir(), "last.pt")
	if err := SaveTraining(path, m, st); err != nil {
		t.Fatal(err)
	}
	got, err := LoadTraining(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.ModelConfig, m.Config) {
		t.Errorf("config %+v, want %+v", got.ModelConfig, m.Config)
	}
	if got.Epoch != 7 || got.Step != 123 {
		t.Errorf("epoch %d step %d", got.Epoch, got.Step)
	}
	if n := got.ConfigExtra["normalization"].(map[string]any)["mean"].([]any); len(n) != 3 || n[0] != 0.4914 {
		t.Errorf("normalization %v", got.ConfigExtra["normalization"])
	}
	if len(got.ConfigExtra) != 2 || got.ConfigExtra["split"].(map[string]any)["seed"] != int64(0) {
		t.Errorf("config extra %v", got.ConfigExtra)
	}
	if !reflect.DeepEqual(got.Run, run) || !reflect.DeepEqual(got.Scheduler, sched) || !reflect.DeepEqual(got.Position, pos) {
		t.Errorf("run %+v scheduler %+v position %+v", got.Run, got.Scheduler, got.Position)
	}
	if fmt.Sprint(got.Epochs) != fmt.Sprint(epochs) { // NaN-aware
		t.Errorf("epochs %v, want %v", got.Epochs, epochs)
	}
	if s, ok := got.RNG["seed"].(*big.Int); !ok || s.Uint64() != 1<<63 {
		t.Errorf("rng seed %v (%T)", got.RNG["seed"], got.RNG["seed"])
	}
	if b, ok := got.RNG["go_rand"].(*Tensor); !ok || b.DType() != Uint8 {
		t.Errorf("rng bytes %v", got.RNG["go_rand"])
	} else if raw, _ := b.Bytes(); string(raw) != "\x01\x02\x03\xff" {
		t.Errorf("rng bytes %x", raw)
	}
	if tc, ok := got.RNG["torch_cpu"].(*Tensor); !ok || tc.Numel() != 5 {
		t.Errorf("rng torch state %v", got.RNG["torch_cpu"])
	}
	if len(got.Metrics) != 3 || got.Metrics["best_top1"] != 91.5 || got.Metrics["last_top1"] != 90.25 || got.Metrics["best_epoch"] != int64(6) {
		t.Errorf("metrics %v", got.Metrics)
	}
	o := got.Optimizer
	if o == nil || o.Type != "adamw" || o.Step != 123 || !reflect.DeepEqual(o.Hyper, hyper) || len(o.ExpAvg) != len(names) ||
		!reflect.DeepEqual(o.Names, names) {
		t.Fatalf("optimizer %+v", o)
	}
	tm, tv, err := o.TorchMoments(gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		if !tm[n].MustEqual(mom1[i], false) || !tv[n].MustEqual(mom2[i], false) {
			t.Errorf("moments of %s differ", n)
		}
	}
	for _, x := range tm {
		x.MustDrop()
	}
	for _, x := range tv {
		x.MustDrop()
	}
	if got.EMA == nil || got.EMA.Len() != ema.Len() {
		t.Errorf("ema %v", got.EMA)
	}

	// The weights load into a new model; ReadConfig rebuilds it.
	cfg, extra, err := ReadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, m.Config) || extra["split"] == nil {
		t.Errorf("ReadConfig: %+v %v", cfg, extra)
	}
	if ck, err := Open(path); err != nil || !reflect.DeepEqual(ck.Run, run) {
		t.Errorf("Open: run %+v %v", ck.Run, err)
	}
	b, err := gsrmt.New(cfg, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := LoadWeights(path, b, true); err != nil {
		t.Fatal(err)
	}
	x := randInput(t, 4)
	if !slices.Equal(evalLogits(t, m, x), evalLogits(t, b, x)) {
		t.Error("logits differ after a training checkpoint round trip")
	}

	// A bare state_dict is not a training checkpoint; bad values fail with the path.
	bare := filepath.Join(t.TempDir(), "bare.pt")
	if err := Save(bare, ema); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTraining(bare); err == nil || !strings.Contains(err.Error(), bare) {
		t.Errorf("LoadTraining of a bare state_dict: %v", err)
	}
	st.Metrics["bad"] = make(chan int)
	if err := SaveTraining(path, m, st); err == nil || !strings.Contains(err.Error(), "metrics.bad") {
		t.Errorf("unsavable metric: %v", err)
	}
	delete(st.Metrics, "bad")
	st.Metrics["position"] = 1
	if err := SaveTraining(path, m, st); err == nil || !strings.Contains(err.Error(), `"position" is reserved`) {
		t.Errorf("a metric named as a section: %v", err)
	}
	delete(st.Metrics, "position")
	st.ConfigExtra["dataset"] = "x"
	if err := SaveTraining(path, m, st); err == nil || !strings.Contains(err.Error(), `"dataset" is a RunInfo field`) {
		t.Errorf("config extra that shadows a run field: %v", err)
	}
	delete(st.ConfigExtra, "dataset")
	st.ConfigExtra["variant"] = "x"
	if err := SaveTraining(path, m, st); err == nil || !strings.Contains(err.Error(), "variant") {
		t.Errorf("config extra that shadows a model field: %v", err)
	}
	// The failed saves left the earlier checkpoint intact.
	if _, err := LoadTraining(path); err != nil {
		t.Errorf("checkpoint after failed saves: %v", err)
	}
}
