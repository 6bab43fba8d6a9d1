package checkpoints

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/gsrmt"
)

// avgState is a tiny state_dict: a 2x3 weight of the given dtype, a bias,
// and a num_batches_tracked counter.
func avgState(t *testing.T, dtype DType, w []float32, b float32, count int64) *Dict {
	t.Helper()
	wt, err := FromFloat32(dtype, []int64{2, 3}, w)
	if err != nil {
		t.Fatal(err)
	}
	nt, err := FromInt64(Int64, nil, []int64{count})
	if err != nil {
		t.Fatal(err)
	}
	return with(NewOrderedDict(), "fc.weight", wt, "fc.bias", f32(t, []int64{1}, b), "bn.num_batches_tracked", nt)
}

// saveAvg writes v to name in dir with Save and returns the path.
func saveAvg(t *testing.T, dir, name string, v any) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := Save(p, v); err != nil {
		t.Fatal(err)
	}
	return p
}

// The average of three files (a float32 state_dict, a float64 one with a
// "module." prefix, a safetensors file) is the exact mean computed in
// float64 and rounded once to float32; the counter is the last file's.
func TestAverageFilesExactMean(t *testing.T) {
	dir := t.TempDir()
	w := [][]float32{{1, 2, 3, 4, 5, 6}, {0.1, 0.2, 0.3, -4, 1e-3, 7}, {2, 2, 2, 2, 2, 1e7}}
	bias := []float32{0.1, 0.2, 0.7}
	a := saveAvg(t, dir, "a.pt", avgState(t, Float32, w[0], bias[0], 5))
	bs := avgState(t, Float64, w[1], bias[1], 6)
	prefixed := NewOrderedDict()
	for _, e := range bs.Entries() {
		prefixed.Set("module."+e.Key.(string), e.Value)
	}
	b := saveAvg(t, dir, "b.pt", prefixed)
	c := filepath.Join(dir, "c.safetensors")
	if err := SaveStateSafetensors(c, avgState(t, Float32, w[2], bias[2], 9), nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	avg, err := AverageFiles([]string{a, b, c}, false)
	if err != nil {
		t.Fatal(err)
	}
	if avg.Averaged != 2 || avg.Kept != 1 || avg.Config != nil || avg.State.Len() != 3 {
		t.Fatalf("averaged %d, kept %d, config %v, %d entries", avg.Averaged, avg.Kept, avg.Config, avg.State.Len())
	}
	out := filepath.Join(dir, "avg.pt")
	if err := avg.Save(out); err != nil {
		t.Fatal(err)
	}
	ck, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Kind != "state_dict" {
		t.Errorf("without a config the average is a %s, want a bare state_dict", ck.Kind)
	}
	mean := func(get func(i int) float64) float32 {
		// Each input as the file stores it: b is float64 of float32 values.
		return float32((get(0) + get(1) + get(2)) / 3)
	}
	wantW := make([]float32, 6)
	for k := range wantW {
		wantW[k] = mean(func(i int) float64 { return float64(w[i][k]) })
	}
	checkTensor := func(name string, want []float32) {
		t.Helper()
		v, _ := ck.State.Get(name)
		x, ok := v.(*Tensor)
		if !ok || x.DType() != Float32 {
			t.Fatalf("%s: %#v, want a float32 tensor", name, v)
		}
		got, err := x.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	checkTensor("fc.weight", wantW)
	checkTensor("fc.bias", []float32{mean(func(i int) float64 { return float64(bias[i]) })})
	v, _ := ck.State.Get("bn.num_batches_tracked")
	n, err := v.(*Tensor).Int64s()
	if err != nil || len(n) != 1 || n[0] != 9 || v.(*Tensor).DType() != Int64 {
		t.Errorf("num_batches_tracked = %v (%v), want the last file's [9] as int64", n, err)
	}
}

// Files of different models are refused, naming the file and the first
// differing entry; so are a single input and --ema without EMA weights.
func TestAverageFilesRefusesMismatches(t *testing.T) {
	dir := t.TempDir()
	w := []float32{1, 2, 3, 4, 5, 6}
	a := saveAvg(t, dir, "a.pt", avgState(t, Float32, w, 1, 1))
	wide := avgState(t, Float32, w, 1, 1)
	wide.Set("fc.bias", f32(t, []int64{2}, 1, 2))
	missing := with(NewOrderedDict(), "fc.weight", f32(t, []int64{2, 3}, w...))
	extra := avgState(t, Float32, w, 1, 1)
	extra.Set("head.weight", f32(t, []int64{1}, 1))
	intW := avgState(t, Float32, w, 1, 1)
	iw, err := FromInt64(Int64, []int64{2, 3}, []int64{1, 2, 3, 4, 5, 6})
	if err != nil {
		t.Fatal(err)
	}
	intW.Set("fc.weight", iw)
	for _, tc := range []struct {
		name  string
		state *Dict
		want  []string
	}{
		{"wide.pt", wide, []string{"wide.pt", `"fc.bias"`, "shape [2]", "[1]"}},
		{"missing.pt", missing, []string{"missing.pt", "lacks", `"fc.bias"`}},
		{"extra.pt", extra, []string{"extra.pt", `"head.weight"`}},
		{"int.pt", intW, []string{"int.pt", `"fc.weight"`, "int64"}},
	} {
		b := saveAvg(t, dir, tc.name, tc.state)
		_, err := AverageFiles([]string{a, b}, false)
		if err == nil {
			t.Errorf("%s: averaged", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, w)
			}
		}
	}
	if _, err := AverageFiles([]string{a}, false); err == nil || !strings.Contains(err.Error(), "2 or more") {
		t.Errorf("one input: %v", err)
	}
	b := saveAvg(t, dir, "b.pt", avgState(t, Float32, w, 2, 2))
	if _, err := AverageFiles([]string{a, b}, true); err == nil || !strings.Contains(err.Error(), "a.pt holds no EMA") {
		t.Errorf("--ema of state_dicts: %v", err)
	}
}

// Two training checkpoints of a nano model average to a training checkpoint
// with the first file's config and run description and no optimizer or
// EMA state, whose weights are the mean; with ema their EMA weights are
// averaged; a file with another config is refused naming the field.
func TestAverageFilesTrainingCheckpoints(t *testing.T) {
	dir := t.TempDir()
	m1, m2 := nanoModel(t, "swat", 3, 1), nanoModel(t, "swat", 3, 2)
	s1, err := ModelStateDict(m1)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := ModelStateDict(m2)
	if err != nil {
		t.Fatal(err)
	}
	run := &RunInfo{Dataset: "imagefolder", ClassNames: []string{"a", "b", "c"}, ImgSize: 32}
	p1, p2 := filepath.Join(dir, "one.pt"), filepath.Join(dir, "two.pt")
	if err := SaveTraining(p1, nil, &TrainingState{ModelConfig: m1.Config, Run: run, Model: s1, EMA: s2, Epoch: 3}); err != nil {
		t.Fatal(err)
	}
	if err := SaveTraining(p2, nil, &TrainingState{ModelConfig: m2.Config, Model: s2, EMA: s2, Epoch: 4}); err != nil {
		t.Fatal(err)
	}
	for _, ema := range []bool{false, true} {
		avg, err := AverageFiles([]string{p1, p2}, ema)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "avg.pt")
		if err := avg.Save(out); err != nil {
			t.Fatal(err)
		}
		st, err := LoadTraining(out)
		if err != nil {
			t.Fatal(err)
		}
		if st.ModelConfig != m1.Config || st.Run == nil || st.Run.Dataset != "imagefolder" || st.Optimizer != nil || st.EMA != nil {
			t.Errorf("ema %v: config %+v, run %+v, optimizer %v, EMA %v", ema, st.ModelConfig, st.Run, st.Optimizer, st.EMA)
		}
		if want := map[bool]string{false: "model", true: "ema"}[ema]; st.Run.Weights != want {
			t.Errorf("ema %v: the average's run info says weights %q, want %q", ema, st.Run.Weights, want)
		}
		if st.Metrics["averaged_ema"] != ema {
			t.Errorf("metrics %v", st.Metrics)
		}
		first := s1
		if ema {
			first = s2
		}
		for _, e := range st.Model.Entries() {
			name := e.Key.(string)
			x, y := mustGet(t, first, name), mustGet(t, s2, name)
			got := e.Value.(*Tensor)
			if !x.DType().IsFloat() {
				if g, _ := got.Int64s(); !slices.Equal(g, mustInts(t, y)) {
					t.Errorf("%s = %v, want the last file's", name, g)
				}
				continue
			}
			xs, ys, gs := mustFloats(t, x), mustFloats(t, y), mustFloats(t, got)
			for k := range gs {
				if want := float32((float64(xs[k]) + float64(ys[k])) / 2); gs[k] != want {
					t.Fatalf("ema %v: %s[%d] = %v, want %v", ema, name, k, gs[k], want)
				}
			}
		}
	}
	// A best.pt whose run chose the EMA's weights beside a file of the
	// model's: the average says its weights are mixed.
	p4 := filepath.Join(dir, "ema-best.pt")
	emaRun := *run
	emaRun.Weights = "ema"
	if err := SaveTraining(p4, nil, &TrainingState{ModelConfig: m1.Config, Run: &emaRun, Model: s2}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		paths []string
		want  string
	}{{[]string{p1, p4}, weightsMixed}, {[]string{p4, p4}, "ema"}} {
		avg, err := AverageFiles(c.paths, false)
		if err != nil {
			t.Fatal(err)
		}
		if avg.Run.Weights != c.want || avg.First.Run.Weights == weightsMixed {
			t.Errorf("average of %v: weights %q, want %q (first input's run info %+v)", c.paths, avg.Run.Weights, c.want, avg.First.Run)
		}
	}
	other := nanoModel(t, "swat", 3, 3, func(c *gsrmt.Config) { c.DropPath = 0.3 })
	p3 := filepath.Join(dir, "three.pt")
	if err := SaveTraining(p3, other, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := AverageFiles([]string{p1, p3}, false); err == nil || !strings.Contains(err.Error(), "three.pt") || !strings.Contains(err.Error(), "DropPath") {
		t.Errorf("another config: %v", err)
	}
}

func mustGet(t *testing.T, d *Dict, name string) *Tensor {
	t.Helper()
	v, ok := d.Get(name)
	if !ok {
		t.Fatalf("no %q", name)
	}
	return v.(*Tensor)
}

func mustFloats(t *testing.T, x *Tensor) []float32 {
	t.Helper()
	f, err := x.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mustInts(t *testing.T, x *Tensor) []int64 {
	t.Helper()
	f, err := x.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	return f
}
