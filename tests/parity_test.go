package tests

import (
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/testutil"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

type parityCase struct {
	variant, preset string
	size, batch     int
	extra           []string // more make_parity.py flags
}

func (c parityCase) name() string {
	return fmt.Sprintf("%s/%s/%dpx%s", c.variant, c.preset, c.size, strings.Join(c.extra, ""))
}

func maxAbsDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

func tensorFrom(t *testing.T, b *bundle, name string) *ts.Tensor {
	t.Helper()
	if v, shape, err := b.float32s(name); err == nil {
		return shaped(ts.MustOfSlice(v), shape)
	}
	v, shape, err := b.int64s(name)
	if err != nil {
		t.Fatal(err)
	}
	return shaped(ts.MustOfSlice(v), shape)
}

// shaped gives a flat tensor its shape; gotch's View cannot make a 0-dim tensor.
func shaped(x *ts.Tensor, shape []int64) *ts.Tensor {
	if len(shape) == 0 {
		return x.MustSqueeze(true)
	}
	return x.MustView(shape, true)
}

func values(x *ts.Tensor) []float32 {
	c := x.MustDetach(false).MustTotype(gotch.Float, true)
	defer c.MustDrop()
	return c.Vals().([]float32)
}

// The same weights give the same logits, loss, gradients and BatchNorm
// statistics in Go and in the PyTorch reference of tests/reference.
func TestParityWithPyTorchReference(t *testing.T) {
	py := testutil.PythonTorch(t)
	root := testutil.RepoRoot(t)
	cases := []parityCase{
		{"swat", "nano", 32, 2, nil},
		{"retention", "nano", 32, 2, nil},
		{"rmt", "nano", 32, 2, nil},
		{"swat", "nano", 224, 2, nil},
		{"retention", "nano", 224, 2, nil},
		{"rmt", "nano", 224, 2, nil},
		{"swat", "tiny", 64, 2, nil},
		{"retention", "tiny", 64, 2, nil},
		{"rmt", "tiny", 64, 2, nil},
		// Switches, and a side that is not a multiple of the window (padding + shift).
		{"retention", "nano", 100, 2, []string{"--gate", "headwise"}},
		{"retention", "nano", 100, 2, []string{"--gate", "none", "--no-rope"}},
		{"swat", "nano", 100, 2, []string{"--swat-norm", "none"}},
	}
	if testing.Short() {
		cases = cases[:3]
	}
	for _, c := range cases {
		t.Run(c.name(), func(t *testing.T) {
			// Grad mode is per OS thread in libtorch.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			dir := t.TempDir()
			args := append([]string{filepath.Join(root, "tests", "reference", "make_parity.py"),
				"--variant", c.variant, "--preset", c.preset, "--classes", "10",
				"--img-size", fmt.Sprint(c.size), "--batch", fmt.Sprint(c.batch), "--seed", "7", "--out", dir}, c.extra...)
			if out, err := exec.Command(py, args...).CombinedOutput(); err != nil {
				t.Fatalf("make_parity.py: %v\n%s", err, out)
			}
			b, err := readBundle(dir)
			if err != nil {
				t.Fatal(err)
			}
			checkParity(t, c, b)
		})
	}
}

func checkParity(t *testing.T, c parityCase, b *bundle) {
	cfg, err := gsrmt.PresetConfig(c.variant, c.preset, 10)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DropPath = 0
	for i, a := range c.extra {
		switch a {
		case "--gate":
			cfg.Gate = c.extra[i+1]
		case "--swat-norm":
			cfg.SwatNorm = c.extra[i+1]
		case "--no-rope":
			cfg.RoPE = false
		}
	}
	m, err := gsrmt.New(cfg, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	// The state entries are exactly the reference's, in the same order.
	var want []string
	for _, n := range b.order {
		if strings.HasPrefix(n, "param/") {
			want = append(want, strings.TrimPrefix(n, "param/"))
		}
	}
	var got []string
	for _, p := range m.Params() {
		got = append(got, p.Name)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("state names differ from PyTorch's:\ngo:    %v\ntorch: %v", got, want)
	}
	for _, name := range want {
		src := tensorFrom(t, b, "param/"+name)
		if err := m.SetTensor(name, src); err != nil {
			t.Fatal(err)
		}
		src.MustDrop()
	}

	x := tensorFrom(t, b, "input")
	defer x.MustDrop()
	labels := tensorFrom(t, b, "labels")
	defer labels.MustDrop()

	var evalLogits *ts.Tensor
	torch.NoGrad(func() { evalLogits, err = m.Forward(x, false) })
	if err != nil {
		t.Fatal(err)
	}
	wantEval, _, _ := b.float32s("logits_eval")
	if d := maxAbsDiff(values(evalLogits), wantEval); d > 1e-4 {
		t.Errorf("eval logits differ from PyTorch by %.3g (max abs)", d)
	} else {
		t.Logf("eval logits: max abs diff %.2g", d)
	}
	evalLogits.MustDrop()

	logits, err := m.Forward(x, true)
	if err != nil {
		t.Fatal(err)
	}
	defer logits.MustDrop()
	wantTrain, _, _ := b.float32s("logits_train")
	if d := maxAbsDiff(values(logits), wantTrain); d > 1e-4 {
		t.Errorf("train logits differ from PyTorch by %.3g (max abs)", d)
	} else {
		t.Logf("train logits: max abs diff %.2g", d)
	}
	logp := logits.MustLogSoftmax(-1, gotch.Float, false)
	loss := logp.MustNllLoss(labels, ts.None, 1, -100, true)
	defer loss.MustDrop()
	wantLoss, _, _ := b.float32s("loss_train")
	if d := math.Abs(float64(values(loss)[0] - wantLoss[0])); d > 1e-4 {
		t.Errorf("loss %v, PyTorch %v", values(loss)[0], wantLoss[0])
	}
	loss.MustBackward()

	// Gradients: every parameter, relative to its scale.
	for _, p := range m.Trainable() {
		wantG, _, err := b.float32s("grad/" + p.Name)
		if err != nil {
			t.Fatal(err)
		}
		g := p.Tensor.MustGrad(false)
		gotG := values(g)
		g.MustDrop()
		scale := 0.0
		for _, v := range wantG {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		if d := maxAbsDiff(gotG, wantG); d > 1e-4*math.Max(1, scale) {
			t.Errorf("grad %s differs by %.3g (largest |grad| %.3g)", p.Name, d, scale)
		}
	}
	// BatchNorm statistics after the training forward.
	for _, p := range m.Params() {
		name := p.Name
		switch {
		case p.Counter:
			want, _, _ := b.int64s("after_train/" + name)
			if got := p.Tensor.Int64Values()[0]; got != want[0] {
				t.Errorf("%s = %d, PyTorch %d", name, got, want[0])
			}
		case strings.HasSuffix(name, "running_mean") || strings.HasSuffix(name, "running_var"):
			want, _, _ := b.float32s("after_train/" + name)
			if d := maxAbsDiff(values(p.Tensor), want); d > 1e-4 {
				t.Errorf("%s differs by %.3g after a training forward", name, d)
			}
		}
	}
}
