package train

import (
	"fmt"
	"math"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/testutil"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// adamwPy runs torch.optim.AdamW (foreach=False) on the same parameters and
// gradients as TestAdamWBitIdenticalToPyTorch and prints every final value's
// float32 bits.
const adamwPy = `
import struct, sys, torch
steps, lr, wd = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
def val(i, j): return float((i * 31 + j * 17) % 97 - 48) / 16
def grad(i, j, s): return float((i * 13 + j * 7 + s * 5) % 89 - 44) / 32
shapes = [(4, 3), (3,), (2, 5)]
ps = [torch.tensor([val(i, j) for j in range(n)], dtype=torch.float32).reshape(sh).requires_grad_()
      for i, (sh, n) in enumerate((sh, int(torch.Size(sh).numel())) for sh in shapes)]
opt = torch.optim.AdamW([{"params": [ps[0], ps[2]], "weight_decay": wd}, {"params": [ps[1]], "weight_decay": 0.0}],
                        lr=lr, foreach=False)
for s in range(steps):
    for i, p in enumerate(ps):
        p.grad = torch.tensor([grad(i, j, s) for j in range(p.numel())], dtype=torch.float32).reshape(p.shape)
    opt.step()
print(" ".join("%08x" % struct.unpack("<I", struct.pack("<f", v))[0] for p in ps for v in p.detach().flatten().tolist()))
`

// The update is PyTorch's own (same libtorch ops in the same order), so after
// several steps every parameter matches torch.optim.AdamW to the bit.
func TestAdamWBitIdenticalToPyTorch(t *testing.T) {
	py := testutil.PythonTorch(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const steps, lr, wd = 5, 0.01, 0.05
	shapes := [][]int64{{4, 3}, {3}, {2, 5}}
	var params []*gsrmt.Param
	for i, sh := range shapes {
		n := int(sh[0])
		if len(sh) == 2 {
			n *= int(sh[1])
		}
		v := make([]float32, n)
		for j := range v {
			v[j] = float32((i*31+j*17)%97-48) / 16
		}
		x := ts.MustOfSlice(v).MustView(sh, true).MustSetRequiresGrad(true, true)
		defer x.MustDrop()
		params = append(params, &gsrmt.Param{Name: fmt.Sprint("p", i), Tensor: x, Trainable: true, NoDecay: i == 1})
	}
	o, err := NewAdamW(params, AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	for s := 0; s < steps; s++ {
		if err := o.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
		for i, p := range params {
			n := p.Tensor.Numel()
			g := make([]float32, n)
			for j := range g {
				g[j] = float32((i*13+j*7+s*5)%89-44) / 32
			}
			gt := ts.MustOfSlice(g).MustView(p.Tensor.MustSize(), true)
			y := p.Tensor.MustMul(gt, false).MustSum(gotch.Float, true) // d/dx sum(x*g) = g exactly
			if err := y.Backward(); err != nil {
				t.Fatal(err)
			}
			y.MustDrop()
			gt.MustDrop()
		}
		if err := o.Update(lr); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(py, "-c", adamwPy, strconv.Itoa(steps), fmt.Sprint(lr), fmt.Sprint(wd)).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	want := strings.Fields(string(out))
	var got []string
	for _, p := range params {
		for _, v := range vals(p) {
			got = append(got, fmt.Sprintf("%08x", math.Float32bits(v)))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d values from Go, %d from PyTorch: %s", len(got), len(want), out)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("value %d: gsrmt bits %s, torch.optim.AdamW bits %s", i, got[i], want[i])
		}
	}
}

// The multi-tensor form (used on CUDA) agrees with the single-tensor one.
func TestAdamWForeachMatchesSingleTensor(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	mk := func() []*ts.Tensor {
		a := ts.MustOfSlice([]float32{1, -2, 0.5, 3}).MustSetRequiresGrad(true, true)
		b := ts.MustOfSlice([]float32{-1, 4}).MustSetRequiresGrad(true, true)
		return []*ts.Tensor{a, b}
	}
	run := func(foreach bool) []float32 {
		ps := mk()
		m := []*ts.Tensor{ps[0].MustZerosLike(false), ps[1].MustZerosLike(false)}
		v := []*ts.Tensor{ps[0].MustZerosLike(false), ps[1].MustZerosLike(false)}
		for s := int64(1); s <= 3; s++ {
			if err := torch.ZeroGrad(ps); err != nil {
				t.Fatal(err)
			}
			for i, p := range ps {
				w := ts.MustOfSlice([]float32{0.3 * float32(s), -0.7, 1.1, 0.2}[:p.Numel()])
				y := p.MustMul(w, false).MustSum(gotch.Float, true)
				if err := y.Backward(); err != nil {
					t.Fatal(err)
				}
				y.MustDrop()
				w.MustDrop()
				_ = i
			}
			if err := torch.AdamW(ps, m, v, []bool{true, false}, torch.AdamWStep{LR: 0.1, Beta1: 0.9, Beta2: 0.999,
				Eps: 1e-8, WeightDecay: 0.05, Step: s, Foreach: foreach}); err != nil {
				t.Fatal(err)
			}
		}
		var out []float32
		for _, p := range append(append(ps, m...), v...) {
			d := p.MustDetach(false)
			out = append(out, d.Vals().([]float32)...)
			d.MustDrop()
			p.MustDrop()
		}
		return out
	}
	single, multi := run(false), run(true)
	for i := range single {
		if math.Abs(float64(single[i]-multi[i])) > 1e-6*math.Max(1, math.Abs(float64(single[i]))) {
			t.Errorf("value %d: single-tensor %v, foreach %v", i, single[i], multi[i])
		}
	}
	// Mismatched lengths are refused with the counts.
	if err := torch.AdamW(mk(), nil, nil, nil, torch.AdamWStep{Step: 1}); err == nil || !strings.Contains(err.Error(), "2 parameters") {
		t.Errorf("mismatched lengths: %v", err)
	}
}
