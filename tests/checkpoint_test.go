package tests

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/checkpoints"
	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/testutil"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/gsrmt/gsrmt/train"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// ckVariants are the model variants every interop check covers (nano, 32 px).
var ckVariants = []string{"swat", "retention", "rmt"}

// ckModel builds a nano model for 32 px with every state entry perturbed
// (BatchNorm statistics and biases away from 0/1, counters set), seeded.
// saveStateDict writes m's state_dict as a bare PyTorch file at path and
// returns it.
func saveStateDict(t *testing.T, path string, m *gsrmt.Model) *checkpoints.Dict {
	t.Helper()
	state, err := checkpoints.ModelStateDict(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkpoints.Save(path, state); err != nil {
		t.Fatal(err)
	}
	return state
}

func ckModel(t *testing.T, variant string, classes int, seed uint64) *gsrmt.Model {
	t.Helper()
	cfg, err := gsrmt.PresetConfig(variant, "nano", classes)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ImageSize = 32
	if err := torch.ManualSeed(seed); err != nil {
		t.Fatal(err)
	}
	m, err := gsrmt.New(cfg, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	torch.NoGrad(func() {
		for _, p := range m.Params() {
			var src *ts.Tensor
			if p.Counter {
				src = ts.MustOfSlice([]int64{int64(seed) + 11}).MustSqueeze(true)
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
	return m
}

// ckLogits runs an eval-mode forward and returns the logits.
func ckLogits(t *testing.T, m *gsrmt.Model, x *ts.Tensor) []float32 {
	t.Helper()
	var out []float32
	var err error
	torch.NoGrad(func() {
		var y *ts.Tensor
		if y, err = m.Forward(x, false); err == nil {
			out = values(y)
			y.MustDrop()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ckFloats reads a float tensor entry of a loaded .pt dict.
func ckFloats(t *testing.T, v any, key string) []float32 {
	t.Helper()
	d, ok := v.(*checkpoints.Dict)
	if !ok {
		t.Fatalf("file holds a %T, not a dict", v)
	}
	e, ok := d.Get(key)
	if !ok {
		t.Fatalf("no entry %q", key)
	}
	f, err := e.(*checkpoints.Tensor).Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// ckScript runs on Debian's python3-torch with the PyTorch reference model
// (tests/reference/gsrmt_ref.py).
//
//	go2torch DIR: loads the state_dicts Go saved (torch.load weights_only=True:
//	    they hold only tensors), load_state_dict(strict=True), eval logits for
//	    DIR/x.pt, saved to DIR/logits.pt; opens the Go training checkpoint and
//	    the safetensors export (parsed by hand: no safetensors module here) and
//	    prints a JSON report.
//	torch2go DIR: seeds and perturbs a reference model per variant, saves
//	    torch.save(model.state_dict()) and the input and eval logits.
const ckScript = `
import json, os, struct, sys
import torch
sys.path.insert(0, sys.argv[3])
from gsrmt_ref import GatedSwinRMT
from make_parity import perturb

mode, d = sys.argv[1], sys.argv[2]
variants = ["swat", "retention", "rmt"]

def build(variant, classes=10):
    m = GatedSwinRMT(variant=variant, preset="nano", num_classes=classes, drop_path=0.0)
    m.eval()
    return m

def read_safetensors(path):
    dtypes = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16,
              "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
              "U8": torch.uint8, "BOOL": torch.bool}
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    sd = {}
    for k, e in header.items():
        a, b = e["data_offsets"]
        t = torch.frombuffer(bytearray(body[a:b]), dtype=dtypes[e["dtype"]]) if b > a else torch.empty(0, dtype=dtypes[e["dtype"]])
        sd[k] = t.reshape(e["shape"])
    return sd, meta

if mode == "go2torch":
    x = torch.load(os.path.join(d, "x.pt"), weights_only=True)["x"]
    out, rep = {}, {"torch": torch.__version__}
    for v in variants:
        sd = torch.load(os.path.join(d, "sd_%s.pt" % v), weights_only=True)
        rep["sd_type_" + v] = type(sd).__name__
        m = build(v)
        m.load_state_dict(sd, strict=True)
        with torch.no_grad():
            out[v] = m(x)
    torch.save(out, os.path.join(d, "logits.pt"))

    # The training checkpoint holds floats (hyper-parameters, metrics):
    # torch 1.13's weights_only loader rejects BINFLOAT, so it is opened with
    # the full loader here (PyTorch 2's weights_only loader accepts it).
    path = os.path.join(d, "train.pt")
    try:
        torch.load(path, weights_only=True)
        rep["train_weights_only"] = "ok"
    except Exception as e:
        msg = str(e)
        rep["train_weights_only"] = msg[msg.find("WeightsUnpickler"):] if "WeightsUnpickler" in msg else msg[-160:]
    ck = torch.load(path)
    rep["train_keys"] = list(ck.keys())
    rep["format"] = ck["format"]
    rep["config"] = {k: v for k, v in ck["config"].items()}
    rep["epoch"], rep["step"] = ck["epoch"], ck["step"]
    opt = ck["optimizer"]
    rep["opt_step"], rep["opt_type"], rep["opt_lr"] = opt["step"], opt["type"], opt["hyper"]["lr"]
    params = dict(build("swat").named_parameters())
    rep["opt_moments_match_params"] = (list(opt["exp_avg"].keys()) == list(params.keys()) and
        all(opt["exp_avg"][k].shape == p.shape and opt["exp_avg_sq"][k].shape == p.shape for k, p in params.items()))
    metrics = dict(ck["metrics"])
    pos, rows = metrics.pop("position"), metrics.pop("epochs")
    rep["metrics"] = metrics
    rep["sections"] = "position:%s batch:%s loss_sum:%s epochs:%s epoch:%s test_loss:%s" % (
        type(pos).__name__, type(pos["batch"]).__name__, type(pos["loss_sum"]).__name__,
        type(rows).__name__, type(rows[0]["epoch"]).__name__,
        "nan" if rows[0]["test_loss"] != rows[0]["test_loss"] else rows[0]["test_loss"])
    rep["rng_bytes"] = [str(ck["rng"]["go_rand"].dtype), ck["rng"]["go_rand"].tolist()]
    rep["scheduler"] = ck["scheduler"]
    m = build("swat")
    m.load_state_dict(ck["model"], strict=True)
    with torch.no_grad():
        rep["train_vs_sd_logits"] = (m(x) - out["swat"]).abs().max().item()
    e = build("swat")
    e.load_state_dict(ck["ema"], strict=True)
    rep["ema_loaded"] = True

    sd, meta = read_safetensors(os.path.join(d, "w.safetensors"))
    m = build("swat")
    m.load_state_dict(sd, strict=True)
    with torch.no_grad():
        rep["safetensors_vs_sd_logits"] = (m(x) - out["swat"]).abs().max().item()
    rep["safetensors_config"] = json.loads(meta["config"])
    print(json.dumps(rep))

elif mode == "torch2go":
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 32, 32, generator=gen)
    for v in variants:
        m = GatedSwinRMT(variant=v, preset="nano", num_classes=10, drop_path=0.0)
        perturb(m, gen)
        m.eval()
        with torch.no_grad():
            logits = m(x)
        torch.save(m.state_dict(), os.path.join(d, "sd_%s.pt" % v))
        torch.save({"x": x, "logits": logits}, os.path.join(d, "io_%s.pt" % v))
        if v == "swat":
            torch.save({"epoch": 3, "model_state_dict": m.state_dict()}, os.path.join(d, "wrapped.pt"))
            torch.save(m.state_dict(), os.path.join(d, "legacy.pt"), _use_new_zipfile_serialization=False)
    print("ok")
`

func runCkScript(t *testing.T, mode, dir string) string {
	t.Helper()
	py := testutil.PythonTorch(t)
	ref := filepath.Join(testutil.RepoRoot(t), "tests", "reference")
	out, err := exec.Command(py, "-c", ckScript, mode, dir, ref).CombinedOutput()
	if err != nil {
		t.Fatalf("python %s: %v\n%s", mode, err, out)
	}
	s := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// Weights, a training checkpoint and a safetensors export written by Go load
// into the PyTorch reference (load_state_dict strict) and give the same
// logits.
func TestCheckpointGoToPyTorch(t *testing.T) {
	testutil.PythonTorch(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dir := t.TempDir()
	if err := torch.ManualSeed(42); err != nil {
		t.Fatal(err)
	}
	x := ts.MustRandn([]int64{2, 3, 32, 32}, gotch.Float, gotch.CPU)
	defer x.MustDrop()
	xc, err := checkpoints.FromTorchTensor(x)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkpoints.Save(filepath.Join(dir, "x.pt"), map[string]any{"x": xc}); err != nil {
		t.Fatal(err)
	}
	goLogits := map[string][]float32{}
	var swat *gsrmt.Model
	for i, v := range ckVariants {
		m := ckModel(t, v, 10, uint64(i+1))
		goLogits[v] = ckLogits(t, m, x)
		saveStateDict(t, filepath.Join(dir, "sd_"+v+".pt"), m)
		if v == "swat" {
			swat = m
		}
	}
	// A full training checkpoint of the swat model.
	var names []string
	var mom []*ts.Tensor
	for _, p := range swat.Trainable() {
		names = append(names, p.Name)
		mom = append(mom, p.Tensor.MustDetach(false))
	}
	defer func() {
		for _, x := range mom {
			x.MustDrop()
		}
	}()
	opt, err := checkpoints.NewOptimizerState(500, map[string]float64{"lr": 5e-4, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.05}, names, mom, mom)
	if err != nil {
		t.Fatal(err)
	}
	ema, err := checkpoints.ModelStateDict(swat)
	if err != nil {
		t.Fatal(err)
	}
	st := &checkpoints.TrainingState{
		Run: &checkpoints.RunInfo{Dataset: "cifar10", ClassNames: []string{"a", "b"}, ImgSize: 32,
			NormMean: []float32{0.5, 0.5, 0.5}, NormStd: []float32{0.25, 0.25, 0.25}},
		ConfigExtra: map[string]any{"normalization": map[string]any{"mean": []float64{0.5, 0.5, 0.5}, "std": []float64{0.25, 0.25, 0.25}}},
		Epoch:       4, Step: 500, Optimizer: opt, EMA: ema,
		Scheduler: &checkpoints.SchedulerState{Type: "warmup-cosine", BaseLR: 5e-4, WarmupSteps: 100, TotalSteps: 1000, Step: 500},
		RNG:       map[string]any{"go_rand": []byte{9, 8, 7}, "seed": 0},
		Metrics:   map[string]any{"best_top1": 55.5, "last_loss": 1.25},
		Position:  &checkpoints.Position{Epoch: 4, Batch: 2, LossSum: 3.5, Seen: 16, BestTop1: 55.5, BestEpoch: 3},
		Epochs:    []checkpoints.EpochRecord{{Epoch: 1, LR: 5e-4, TrainLoss: 2, TestLoss: math.NaN(), TestTop1: math.NaN(), TestTop5: math.NaN(), EMATop1: math.NaN()}},
	}
	if err := checkpoints.SaveTraining(filepath.Join(dir, "train.pt"), swat, st); err != nil {
		t.Fatal(err)
	}
	if err := checkpoints.ExportSafetensors(filepath.Join(dir, "w.safetensors"), swat); err != nil {
		t.Fatal(err)
	}

	var rep struct {
		Torch             string         `json:"torch"`
		TrainWeightsOnly  string         `json:"train_weights_only"`
		TrainKeys         []string       `json:"train_keys"`
		Format            string         `json:"format"`
		Config            map[string]any `json:"config"`
		Epoch, Step       int64
		OptStep           int64          `json:"opt_step"`
		OptType           string         `json:"opt_type"`
		OptLR             float64        `json:"opt_lr"`
		MomentsMatch      bool           `json:"opt_moments_match_params"`
		Metrics           map[string]any `json:"metrics"`
		RNGBytes          []any          `json:"rng_bytes"`
		Scheduler         map[string]any `json:"scheduler"`
		TrainVsSD         float64        `json:"train_vs_sd_logits"`
		EMALoaded         bool           `json:"ema_loaded"`
		SafetensorsVsSD   float64        `json:"safetensors_vs_sd_logits"`
		SafetensorsConfig map[string]any `json:"safetensors_config"`
		SDTypeSwat        string         `json:"sd_type_swat"`
		Sections          string         `json:"sections"`
	}
	line := runCkScript(t, "go2torch", dir)
	if err := json.Unmarshal([]byte(line), &rep); err != nil {
		t.Fatalf("python report: %v\n%s", err, line)
	}
	t.Logf("torch %s; training checkpoint with weights_only=True: %s", rep.Torch, rep.TrainWeightsOnly)
	// torch 1.13's weights_only loader lacks BINFLOAT (opcode 'G' = 71) and
	// so rejects the floats of a training checkpoint; nothing else in it may
	// be unsupported.
	if rep.TrainWeightsOnly != "ok" && !strings.Contains(rep.TrainWeightsOnly, "Unsupported operand 71") {
		t.Errorf("weights_only=True fails on the training checkpoint for another reason than floats: %s", rep.TrainWeightsOnly)
	}

	logits, err := checkpoints.Load(filepath.Join(dir, "logits.pt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range ckVariants {
		d := maxAbsDiff(ckFloats(t, logits, v), goLogits[v])
		if d >= 1e-4 {
			t.Errorf("%s: PyTorch logits on Go's weights differ by %.3g", v, d)
		} else {
			t.Logf("%s: Go weights in PyTorch: logits max abs diff %.2g", v, d)
		}
	}
	if rep.SDTypeSwat != "OrderedDict" {
		t.Errorf("Go's state_dict loads in PyTorch as a %s, want OrderedDict", rep.SDTypeSwat)
	}
	wantKeys := "model config epoch step optimizer scheduler ema rng metrics format"
	if strings.Join(rep.TrainKeys, " ") != wantKeys || rep.Format != checkpoints.Format {
		t.Errorf("training checkpoint keys %v format %q", rep.TrainKeys, rep.Format)
	}
	if rep.Epoch != 4 || rep.Step != 500 || rep.OptStep != 500 || rep.OptType != "adamw" || rep.OptLR != 5e-4 || !rep.MomentsMatch {
		t.Errorf("training checkpoint in PyTorch: %+v", rep)
	}
	if rep.Config["variant"] != "swat" || rep.Config["dataset"] != "cifar10" || rep.Config["num_classes"] != 10.0 || rep.Config["img_size"] != 32.0 ||
		rep.Config["image_size"] != 32.0 || rep.Config["normalization"] == nil {
		t.Errorf("config in PyTorch: %v", rep.Config)
	}
	if rep.Metrics["best_top1"] != 55.5 || rep.Scheduler["type"] != "warmup-cosine" || rep.Scheduler["warmup_steps"] != 100.0 ||
		len(rep.RNGBytes) != 2 || rep.RNGBytes[0] != "torch.uint8" {
		t.Errorf("metrics %v scheduler %v rng %v", rep.Metrics, rep.Scheduler, rep.RNGBytes)
	}
	// The position and the epoch rows are plain dicts of ints and floats
	// (NaN where nothing was measured), not JSON strings.
	if rep.Sections != "position:dict batch:int loss_sum:float epochs:list epoch:int test_loss:nan" {
		t.Errorf("sections in PyTorch: %s", rep.Sections)
	}
	if rep.TrainVsSD != 0 || !rep.EMALoaded {
		t.Errorf("training checkpoint's model gives logits %g off the state_dict's; ema loaded %v", rep.TrainVsSD, rep.EMALoaded)
	}
	if rep.SafetensorsVsSD != 0 || rep.SafetensorsConfig["variant"] != "swat" {
		t.Errorf("safetensors in PyTorch: logits %g off, config %v", rep.SafetensorsVsSD, rep.SafetensorsConfig)
	}
}

// state_dicts saved by torch.save from the reference (zip, legacy, and
// wrapped in a dict) load strictly into the Go model and give the same
// logits.
func TestCheckpointPyTorchToGo(t *testing.T) {
	testutil.PythonTorch(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dir := t.TempDir()
	runCkScript(t, "torch2go", dir)
	check := func(name, variant, file string) {
		cfg, err := gsrmt.PresetConfig(variant, "nano", 10)
		if err != nil {
			t.Fatal(err)
		}
		m, err := gsrmt.New(cfg, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		rep, err := checkpoints.LoadWeights(filepath.Join(dir, file), m, true)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !rep.OK() || len(rep.Loaded) == 0 {
			t.Errorf("%s: report %+v", name, rep)
		}
		io, err := checkpoints.Load(filepath.Join(dir, "io_"+variant+".pt"))
		if err != nil {
			t.Fatal(err)
		}
		xe, _ := io.(*checkpoints.Dict).Get("x")
		x, err := checkpoints.ToTorchTensor(xe.(*checkpoints.Tensor), gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		defer x.MustDrop()
		d := maxAbsDiff(ckLogits(t, m, x), ckFloats(t, io, "logits"))
		if d >= 1e-4 {
			t.Errorf("%s: Go logits on PyTorch's weights differ by %.3g", name, d)
		} else {
			t.Logf("%s: PyTorch weights in Go: logits max abs diff %.2g", name, d)
		}
	}
	for _, v := range ckVariants {
		check(v, v, "sd_"+v+".pt")
	}
	check("swat, {model_state_dict: ...}", "swat", "wrapped.pt")
	check("swat, legacy serialization", "swat", "legacy.pt")
}

// gsrmt-cli convert through the built binary: formats, config handling, the
// weights check, and usage errors.
func TestCheckpointConvertCLI(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	m := ckModel(t, "swat", 10, 3)
	if err := torch.ManualSeed(5); err != nil {
		t.Fatal(err)
	}
	x := ts.MustRandn([]int64{2, 3, 32, 32}, gotch.Float, gotch.CPU)
	defer x.MustDrop()
	want := ckLogits(t, m, x)
	state := saveStateDict(t, p("bare.pt"), m)
	// sameWeights loads file strictly into a fresh model of cfg and compares logits.
	sameWeights := func(file string, cfg gsrmt.Config) {
		t.Helper()
		b, err := gsrmt.New(cfg, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if _, err := checkpoints.LoadWeights(file, b, true); err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(ckLogits(t, b, x), want); d != 0 {
			t.Errorf("%s: logits differ by %g", file, d)
		}
	}
	ok := func(args ...string) string {
		t.Helper()
		out, errOut, code := runCLI(t, append([]string{"convert"}, args...)...)
		if code != 0 {
			t.Fatalf("convert %v exited %d: %s", args, code, errOut)
		}
		return out
	}
	fails := func(code int, args []string, wants ...string) {
		t.Helper()
		_, errOut, got := runCLI(t, append([]string{"convert"}, args...)...)
		if got != code {
			t.Errorf("convert %v exited %d (want %d): %s", args, got, code, errOut)
		}
		for _, w := range wants {
			if !strings.Contains(errOut, w) {
				t.Errorf("convert %v: error does not mention %q: %s", args, w, errOut)
			}
		}
	}

	// Bare state_dict -> safetensors without a config; -> .pt defaults to a bare state_dict.
	out := ok("--in", p("bare.pt"), "--out", p("plain.safetensors"))
	if !strings.Contains(out, "(safetensors)") {
		t.Errorf("output: %s", out)
	}
	if _, _, err := checkpoints.ReadConfig(p("plain.safetensors")); !errors.Is(err, checkpoints.ErrNoConfig) {
		t.Errorf("config-less safetensors: %v", err)
	}
	sameWeights(p("plain.safetensors"), m.Config)
	out = ok("--in", p("plain.safetensors"), "--out", p("copy.pt"))
	if !strings.Contains(out, "(state-dict)") {
		t.Errorf("output: %s", out)
	}
	if ck, err := checkpoints.Open(p("copy.pt")); err != nil || ck.Kind != "state_dict" {
		t.Errorf("copy.pt: %+v %v", ck, err)
	}

	// Bare state_dict + model flags -> gsrmt checkpoint (classes from head.fc.weight).
	out = ok("--in", p("bare.pt"), "--out", p("g.pt"), "--variant", "swat", "--preset", "nano", "--img-size", "32")
	if !strings.Contains(out, "every name and shape checked") || !strings.Contains(out, "(pt)") {
		t.Errorf("output: %s", out)
	}
	cfg, _, err := checkpoints.ReadConfig(p("g.pt"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NumClasses != 10 || cfg.ImageSize != 32 || cfg.Variant != "swat" || cfg != m.Config {
		t.Errorf("config of the converted checkpoint: %+v", cfg)
	}
	if st, err := checkpoints.LoadTraining(p("g.pt")); err != nil || st.Model.Len() != state.Len() {
		t.Errorf("LoadTraining of the converted checkpoint: %v", err)
	}
	sameWeights(p("g.pt"), cfg)

	// gsrmt checkpoint -> safetensors with its config -> bare state_dict.
	ok("--in", p("g.pt"), "--out", p("g.safetensors"))
	if c2, _, err := checkpoints.ReadConfig(p("g.safetensors")); err != nil || c2 != cfg {
		t.Errorf("safetensors config %+v %v", c2, err)
	}
	ok("--in", p("g.safetensors"), "--out", p("back.pt"), "--to", "state-dict")
	sameWeights(p("back.pt"), cfg)
	ok("--in", p("g.safetensors"), "--out", p("g2.pt"), "--to", "pt")
	if c3, _, err := checkpoints.ReadConfig(p("g2.pt")); err != nil || c3 != cfg {
		t.Errorf("pt from safetensors: config %+v %v", c3, err)
	}

	// The EMA weights of a training checkpoint.
	emaModel := ckModel(t, "swat", 10, 4)
	emaState, err := checkpoints.ModelStateDict(emaModel)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkpoints.SaveTraining(p("train.pt"), m, &checkpoints.TrainingState{EMA: emaState, Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	out = ok("--in", p("train.pt"), "--out", p("ema.pt"), "--ema")
	if !strings.Contains(out, "EMA weights") || !strings.Contains(out, "(pt)") {
		t.Errorf("output: %s", out)
	}
	if st, err := checkpoints.LoadTraining(p("ema.pt")); err != nil || st.Epoch != 2 || st.EMA != nil || st.Optimizer != nil {
		t.Errorf("EMA export: %+v %v", st, err)
	}
	want, wantModel := ckLogits(t, emaModel, x), want
	sameWeights(p("ema.pt"), cfg)
	want = wantModel

	// Usage errors exit 2 and name the flag; runtime errors exit 1 and name the file.
	fails(2, []string{"--in", p("bare.pt"), "--out", p("x.pt"), "--to", "onnx"}, "--to", "onnx", "pt, state-dict, safetensors")
	fails(2, []string{"--out", p("x.pt")}, "--in")
	fails(2, []string{"--in", p("bare.pt")}, "--out")
	fails(2, []string{"--in", p("bare.pt"), "--out", p("x.pt"), "--to", "pt"}, "--variant", "bare.pt")
	fails(2, []string{"--in", p("g.pt"), "--out", p("x.pt"), "--preset", "tiny"}, "--preset", "already records a model config")
	fails(2, []string{"--in", p("bare.pt"), "--out", p("x.pt"), "--preset", "huge"}, "--preset", "huge", "nano")
	fails(1, []string{"--in", p("bare.pt"), "--out", p("x.pt"), "--classes", "100"}, "bare.pt", "head.fc.weight")
	fails(1, []string{"--in", p("bare.pt"), "--out", p("x.pt"), "--variant", "rmt"}, "bare.pt", "unexpected")
	fails(1, []string{"--in", p("missing.pt"), "--out", p("x.pt")}, "missing.pt")
	fails(1, []string{"--in", p("g.pt"), "--out", p("x.pt"), "--ema"}, "g.pt", "EMA")
	if _, err := os.Stat(p("x.pt")); err == nil {
		t.Error("a failed conversion wrote its output")
	}
	help, _, code := runCLI(t, "convert", "--help")
	if code != 0 || !strings.Contains(help, "Examples:") || !strings.Contains(help, "--to") {
		t.Errorf("convert --help exited %d:\n%s", code, help)
	}
}

// toOldLayout rewrites a training checkpoint in the layout written before
// its sections were typed: "position" and "epochs" in "metrics" become the
// JSON strings "position_json" and "epochs_json", with Go field names as
// keys and null for NaN, as json.Marshal wrote the training loop's structs.
func toOldLayout(t *testing.T, path string) {
	t.Helper()
	v, err := checkpoints.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	top := v.(*checkpoints.Dict)
	mv, _ := top.Get("metrics")
	goName := map[string]string{"epoch": "Epoch", "batch": "Batch", "loss_sum": "LossSum", "hits": "Hits", "seen": "Seen",
		"seconds": "Seconds", "last_lr": "LastLR", "best_top1": "BestTop1", "best_epoch": "BestEpoch", "skipped": "Skipped",
		"lr": "LR", "train_loss": "TrainLoss", "train_top1": "TrainTop1", "test_loss": "TestLoss", "test_top1": "TestTop1",
		"test_top5": "TestTop5", "ema_test_top1": "EMATop1", "images_per_s": "ImagesPerS", "skipped_images": "SkippedImages",
		"best_source": "BestSource", "val_loss": "ValLoss", "val_top1": "ValTop1", "val_top5": "ValTop5", "ema_test_loss": "EMATestLoss",
		"ema_test_top5": "EMATestTop5", "ema_val_loss": "EMAValLoss", "ema_val_top1": "EMAValTop1", "ema_val_top5": "EMAValTop5",
		"skipped_steps": "SkippedSteps"}
	oldJSON := func(v any) string {
		var conv func(v any) any
		conv = func(v any) any {
			switch v := v.(type) {
			case *checkpoints.Dict:
				m := map[string]any{}
				for _, e := range v.Entries() {
					m[goName[e.Key.(string)]] = conv(e.Value)
				}
				return m
			case []any:
				out := []any{}
				for _, e := range v {
					out = append(out, conv(e))
				}
				return out
			case float64:
				if math.IsNaN(v) {
					return nil
				}
			}
			return v
		}
		b, err := json.Marshal(conv(v))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	metrics := checkpoints.NewDict()
	for _, e := range mv.(*checkpoints.Dict).Entries() {
		switch e.Key {
		case "position":
			metrics.Set("position_json", oldJSON(e.Value))
		case "epochs":
			metrics.Set("epochs_json", oldJSON(e.Value))
		default:
			metrics.Set(e.Key, e.Value)
		}
	}
	top.Set("metrics", metrics)
	if err := checkpoints.Save(path, top); err != nil {
		t.Fatal(err)
	}
}

// A run interrupted mid-epoch resumes from a last.pt of the older layout
// (position and metrics rows as JSON strings) as from its own, and
// reproduces the uninterrupted run's metrics.
func TestResumeFromOldLayoutCheckpoint(t *testing.T) {
	data := makeImageFolder(t, 8, 2)
	cfg, err := gsrmt.PresetConfig("swat", "nano", 3)
	if err != nil {
		t.Fatal(err)
	}
	// run trains 2 epochs into out, resuming from resume if set; with
	// stopAt set it is cancelled at that step, and stops after the next.
	run := func(out, resume string, stopAt int64) *train.Result {
		t.Helper()
		o := train.Options{Dataset: "imagefolder", DataDir: data, ImgSize: 32, Model: cfg, Recipe: "default",
			Epochs: 2, Batch: 8, LR: 2e-3, MinLR: 1e-5, WeightDecay: 0.05, WarmupEpochs: 1, LabelSmoothing: 0.1,
			GradClip: 1, EMA: 0.9, DropLast: true, Device: gotch.CPU, Threads: 1, Workers: 1, Seed: 5, Out: out,
			EvalEvery: 1, Resume: resume}
		res, err := runStoppingAt(o, stopAt)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	whole, parts := filepath.Join(t.TempDir(), "whole"), filepath.Join(t.TempDir(), "parts")
	run(whole, "", 0)
	if !run(parts, "", 4).Interrupted { // inside epoch 2
		t.Fatal("the run was not interrupted")
	}
	last := filepath.Join(parts, "last.pt")
	toOldLayout(t, last)
	if st, err := checkpoints.LoadTraining(last); err != nil || st.Position == nil || st.Position.Epoch != 1 || st.Position.Batch == 0 || len(st.Epochs) != 1 {
		t.Fatalf("old-layout last.pt: %v", err)
	}
	run(parts, last, 0)
	a, b := metricsWithoutTiming(t, whole), metricsWithoutTiming(t, parts)
	if len(a) != 3 || strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Errorf("metrics.csv without timing:\nuninterrupted %q\nresumed %q", a, b)
	}
}
