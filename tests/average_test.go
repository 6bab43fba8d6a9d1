package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/checkpoints"
)

// shiftState returns a copy of a state_dict with every float tensor shifted
// by delta (integer tensors are copied), a second "checkpoint" of the same
// model with other weights.
func shiftState(t *testing.T, d *checkpoints.Dict, delta float32) *checkpoints.Dict {
	t.Helper()
	out := checkpoints.NewOrderedDict()
	for _, e := range d.Entries() {
		x := e.Value.(*checkpoints.Tensor)
		if !x.DType().IsFloat() {
			out.Set(e.Key, x)
			continue
		}
		v, err := x.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		for i := range v {
			v[i] += delta
		}
		y, err := checkpoints.FromFloat32(checkpoints.Float32, x.Shape, v)
		if err != nil {
			t.Fatal(err)
		}
		out.Set(e.Key, y)
	}
	return out
}

// checkMean fails unless every float tensor of got is the float64 mean of
// a's and b's rounded to float32, and every integer tensor is b's.
func checkMean(t *testing.T, got, a, b *checkpoints.Dict) {
	t.Helper()
	if got.Len() != a.Len() {
		t.Fatalf("%d tensors, want %d", got.Len(), a.Len())
	}
	for _, e := range a.Entries() {
		gv, _ := got.Get(e.Key)
		bv, _ := b.Get(e.Key)
		x, y, g := e.Value.(*checkpoints.Tensor), bv.(*checkpoints.Tensor), gv.(*checkpoints.Tensor)
		if !x.DType().IsFloat() {
			gi, _ := g.Int64s()
			yi, _ := y.Int64s()
			if len(gi) != len(yi) || (len(gi) > 0 && gi[0] != yi[0]) {
				t.Errorf("%v = %v, want the last file's %v", e.Key, gi, yi)
			}
			continue
		}
		xs, _ := x.Float32s()
		ys, _ := y.Float32s()
		gs, err := g.Float32s()
		if err != nil || g.DType() != checkpoints.Float32 {
			t.Fatalf("%v: %v %v", e.Key, g.DType(), err)
		}
		for i := range gs {
			if want := float32((float64(xs[i]) + float64(ys[i])) / 2); gs[i] != want {
				t.Fatalf("%v[%d] = %v, want %v", e.Key, i, gs[i], want)
			}
		}
	}
}

// gsrmt-cli average end to end: two checkpoints of a nano run (the run's
// last.pt and a copy with shifted weights) average to the exact mean, with
// the run's config so that eval needs no model flags; --ema averages the
// EMA weights; --out naming an input (or a link to one) is a usage error,
// and a file of another shape is refused naming it and the entry.
func TestCLIAverage(t *testing.T) {
	data := makeImageFolder(t, 8, 4)
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	if _, errOut, code := runCLI(t, trainArgs(data, run, "--ema", "0.9")...); code != 0 {
		t.Fatalf("train exited %d:\n%s", code, errOut)
	}
	a := filepath.Join(run, "last.pt")
	sa, err := checkpoints.LoadTraining(a)
	if err != nil {
		t.Fatal(err)
	}
	if sa.EMA == nil {
		t.Fatal("the run's last.pt has no EMA weights")
	}
	sb := *sa
	sb.Model, sb.EMA = shiftState(t, sa.Model, 0.25), shiftState(t, sa.EMA, -0.5)
	b := filepath.Join(dir, "b.pt")
	if err := checkpoints.SaveTraining(b, nil, &sb); err != nil {
		t.Fatal(err)
	}

	avg := filepath.Join(dir, "avg.pt")
	js, errOut, code := runCLI(t, "average", "--in", a, b, "--out", avg, "--json")
	if code != 0 {
		t.Fatalf("average exited %d: %s", code, errOut)
	}
	var res struct {
		Out             string
		Inputs, Tensors int
	}
	if err := json.Unmarshal([]byte(js), &res); err != nil || res.Out != avg || res.Inputs != 2 || res.Tensors != sa.Model.Len() {
		t.Fatalf("average --json: %v %s", err, js)
	}
	st, err := checkpoints.LoadTraining(avg)
	if err != nil {
		t.Fatal(err)
	}
	if st.ModelConfig != sa.ModelConfig || st.Optimizer != nil || st.EMA != nil || st.Run == nil {
		t.Errorf("avg.pt: config %+v, optimizer %v, EMA %v, run %v", st.ModelConfig, st.Optimizer, st.EMA, st.Run)
	}
	checkMean(t, st.Model, sa.Model, sb.Model)

	js, errOut, code = runCLI(t, "eval", "--checkpoint", avg, "--json")
	if code != 0 {
		t.Fatalf("eval of the average exited %d: %s", code, errOut)
	}
	var ev struct {
		Top1   float64
		Images int
	}
	if err := json.Unmarshal([]byte(js), &ev); err != nil || ev.Images != 12 {
		t.Fatalf("eval --json of the average: %v %s", err, js)
	}

	emaAvg := filepath.Join(dir, "ema-avg.pt")
	out, errOut, code := runCLI(t, "average", "--ema", "--out", emaAvg, "--in", a, b)
	if code != 0 {
		t.Fatalf("average --ema exited %d: %s", code, errOut)
	}
	if !strings.Contains(out, "EMA weights of 2 files") {
		t.Errorf("average --ema report:\n%s", out)
	}
	if st, err = checkpoints.LoadTraining(emaAvg); err != nil {
		t.Fatal(err)
	}
	checkMean(t, st.Model, sa.EMA, sb.EMA)

	// Refusals: the output is an input (exit 2, before anything is read),
	// by path or through a hard link; fewer than two inputs; another shape.
	link := filepath.Join(dir, "link.pt")
	if err := os.Link(b, link); err != nil {
		t.Fatal(err)
	}
	before := mustRead(t, b)
	other := checkpoints.NewOrderedDict()
	w, err := checkpoints.FromFloat32(checkpoints.Float32, []int64{1}, []float32{1})
	if err != nil {
		t.Fatal(err)
	}
	other.Set("stem.conv1.weight", w)
	odd := filepath.Join(dir, "odd.pt")
	if err := checkpoints.Save(odd, other); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"--in", a, b, "--out", b}, 2, []string{"same file", b}},
		{[]string{"--in", a, b, "--out", link}, 2, []string{"same file", link}},
		{[]string{"--in", a, "--out", filepath.Join(dir, "x.pt")}, 2, []string{"2 or more"}},
		{[]string{"--in", a, odd, "--out", filepath.Join(dir, "y.pt")}, 1, []string{"odd.pt"}},
	} {
		_, errOut, got := runCLI(t, append([]string{"average"}, tc.args...)...)
		if got != tc.code {
			t.Errorf("average %v exited %d (want %d): %s", tc.args, got, tc.code, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("average %v: error does not mention %q: %s", tc.args, w, errOut)
			}
		}
	}
	if string(mustRead(t, b)) != string(before) {
		t.Error("a refused average changed its input")
	}
}
