package checkpoints

import (
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
)

// freshModel builds an unperturbed model (the initializer's values), seeded.
func freshModel(t *testing.T, classes int, seed uint64) *gsrmt.Model {
	t.Helper()
	cfg, err := gsrmt.PresetConfig("swat", "nano", classes)
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
	return m
}

// finetuneSource saves a perturbed 10-class model's state (its own .pt) and
// opens it, with the state changed by edit first.
func finetuneSource(t *testing.T, edit func(*Dict)) (*gsrmt.Model, *Checkpoint) {
	t.Helper()
	src := nanoModel(t, "swat", 10, 7)
	state, err := ModelStateDict(src)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(state)
	}
	path := filepath.Join(t.TempDir(), "state.pt")
	if err := Save(path, state); err != nil {
		t.Fatal(err)
	}
	ck, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return src, ck
}

// A 10-class checkpoint into a 5-class model: everything but the
// classifier is loaded; the classifier keeps the initializer's values
// (those of a fresh model of the same seed: weights of
// trunc_normal_(std=0.02, a=-2, b=2), whose bounds are 100 std away, so a
// normal of std 0.02; zero bias), and the report names it.
func TestLoadFinetuneOtherClassCount(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	src, ck := finetuneSource(t, nil)
	m := freshModel(t, 5, 3)
	twin := freshModel(t, 5, 3)
	rep, err := LoadFinetune(m, ck)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"head.fc.bias", "head.fc.weight"}
	if !slices.Equal(rep.Reinitialized, want) || rep.FileClasses != 10 || rep.Classes != 5 {
		t.Errorf("re-initialized %v, classes %d -> %d", rep.Reinitialized, rep.FileClasses, rep.Classes)
	}
	if len(rep.Skipped) != 2 || !strings.Contains(strings.Join(rep.Skipped, ";"), "head.fc.weight (checkpoint [10 1024], model [5 1024])") {
		t.Errorf("skipped %q", rep.Skipped)
	}
	if len(rep.Loaded) != len(m.Params())-2 || slices.ContainsFunc(rep.Loaded, gsrmt.IsClassifier) {
		t.Errorf("loaded %d of %d entries", len(rep.Loaded), len(m.Params()))
	}
	for _, name := range []string{"stem.conv1.weight", "stages.2.blocks.0.attn.q.weight", "head.proj.weight", "head.bn.running_var"} {
		if !slices.Equal(paramValues(t, src, name), paramValues(t, m, name)) {
			t.Errorf("%s was not loaded", name)
		}
	}
	for _, name := range want {
		if !slices.Equal(paramValues(t, twin, name), paramValues(t, m, name)) {
			t.Errorf("%s is not the initializer's", name)
		}
	}
	for _, b := range paramValues(t, m, "head.fc.bias") {
		if b != 0 {
			t.Fatalf("re-initialized bias holds %v, want 0", b)
		}
	}
	var sum, sq float64
	w := paramValues(t, m, "head.fc.weight")
	for _, x := range w {
		sum, sq = sum+float64(x), sq+float64(x)*float64(x)
	}
	// 5120 samples: the standard deviation's standard error is 0.0002.
	if std := math.Sqrt(sq/float64(len(w)) - (sum/float64(len(w)))*(sum/float64(len(w)))); std < 0.019 || std > 0.021 {
		t.Errorf("re-initialized weight std %.4f, want 0.02", std)
	}
	if s := rep.Summary(); !strings.Contains(s, "the file has 10 classes, the data 5") {
		t.Errorf("summary %q", s)
	}
}

// The same class count loads everything; a file without a classifier
// re-initializes it.
func TestLoadFinetuneSameAndNoHead(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	src, ck := finetuneSource(t, nil)
	m := freshModel(t, 10, 3)
	rep, err := LoadFinetune(m, ck)
	if err != nil || len(rep.Reinitialized) != 0 || len(rep.Loaded) != len(m.Params()) {
		t.Fatalf("same class count: %+v, %v", rep, err)
	}
	if !slices.Equal(paramValues(t, src, "head.fc.weight"), paramValues(t, m, "head.fc.weight")) {
		t.Error("the classifier was not loaded")
	}
	_, ck = finetuneSource(t, func(d *Dict) { d.Delete("head.fc.weight"); d.Delete("head.fc.bias") })
	rep, err = LoadFinetune(freshModel(t, 5, 3), ck)
	if err != nil || len(rep.Reinitialized) != 2 || len(rep.Skipped) != 0 || rep.FileClasses != 0 {
		t.Errorf("no classifier: %+v, %v", rep, err)
	}
}

// Anything beyond the classifier that does not fit is refused, naming the
// tensor and both shapes, and nothing is loaded.
func TestLoadFinetuneRefusesMismatches(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const block = "stages.1.blocks.0.ffn.fc1.weight"
	tests := map[string]struct {
		edit func(*Dict)
		want string
	}{
		"block shape": {func(d *Dict) {
			x := mustGet(t, d, block)
			d.Set(block, f32(t, []int64{x.Shape[0] + 1, x.Shape[1]}))
		}, block + " (checkpoint [129 64], model [128 64])"},
		"missing block":  {func(d *Dict) { d.Delete(block) }, `1 missing key(s) in state_dict: "` + block + `"`},
		"unexpected":     {func(d *Dict) { d.Set("extra.weight", f32(t, []int64{2})) }, `unexpected key(s) in state_dict: "extra.weight"`},
		"half a head":    {func(d *Dict) { d.Delete("head.fc.bias") }, "partly there"},
		"other features": {func(d *Dict) { d.Set("head.fc.weight", f32(t, []int64{10, 7})) }, "head.fc.weight (checkpoint [10 7], model [5 1024])"},
		"integer in block": {func(d *Dict) {
			x, _ := FromInt64(Int64, mustGet(t, d, block).Shape, make([]int64, 128*64))
			d.Set(block, x)
		}, "want a float tensor"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, ck := finetuneSource(t, tt.edit)
			m := freshModel(t, 5, 3)
			before := paramValues(t, m, "stem.conv1.weight")
			rep, err := LoadFinetune(m, ck)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("loaded (%d entries), %v; want an error with %q", len(rep.Loaded), err, tt.want)
			}
			if len(rep.Loaded) != 0 || !slices.Equal(before, paramValues(t, m, "stem.conv1.weight")) {
				t.Error("a refused file changed the model")
			}
			t.Log(err)
		})
	}
}
