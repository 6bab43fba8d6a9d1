package checkpoints

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/checkpoints/torchfmt"
	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/sugarme/gotch"
)

// A zip checkpoint with two records of one name is refused by Open, naming
// the file and the record (torchfmt tests the reader itself).
func TestDuplicateZipRecord(t *testing.T) {
	sd := NewOrderedDict()
	sd.Set("w", f32(t, []int64{2}, 1, 2))
	var good bytes.Buffer
	if err := torchfmt.Write(&good, sd); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(good.Bytes()), int64(good.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		copies := 1
		if f.Name == "archive/data/0" {
			copies = 2
		}
		for i := 0; i < copies; i++ {
			if err := zw.Copy(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dup.pt")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path)
	if !errors.Is(err, torchfmt.ErrDuplicateRecord) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `"archive/data/0"`) {
		t.Errorf("error %v, want ErrDuplicateRecord naming %s and archive/data/0", err, path)
	}
}

// CheckModelState, which builds nothing, reports what a strict
// LoadModelState into a built model reports.
func TestCheckModelStateAgreesWithStrictLoad(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a := nanoModel(t, "retention", 10, 1)
	state, err := ModelStateDict(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckModelState(a.Config, state); err != nil {
		t.Fatalf("a model's own state: %v", err)
	}
	state.Delete("stages.1.blocks.0.norm1.weight")
	bogus, _ := FromFloat32(Float32, []int64{1}, []float32{1})
	state.Set("stages.9.extra.weight", bogus)
	wrong, _ := FromFloat32(Float32, []int64{3, 3}, make([]float32, 9))
	state.Set("stem.conv1.bias", wrong)
	intW, _ := FromInt64(Int64, []int64{10}, make([]int64, 10))
	state.Set("head.fc.bias", intW)
	state.Set("stem.bn1.num_batches_tracked", bogus)

	_, loadErr := LoadModelState(a, state, true)
	checkErr := CheckModelState(a.Config, state)
	var l, c *StateMismatchError
	if !errors.As(loadErr, &l) || !errors.As(checkErr, &c) {
		t.Fatalf("LoadModelState: %v; CheckModelState: %v", loadErr, checkErr)
	}
	if !reflect.DeepEqual(l.Report, c.Report) {
		t.Errorf("reports differ:\nLoadModelState  %+v\nCheckModelState %+v", l.Report, c.Report)
	}
	if len(c.Report.Missing) != 1 || len(c.Report.Unexpected) != 1 || len(c.Report.Mismatched) != 3 {
		t.Errorf("report %+v", c.Report)
	}
}

// modelElems counts the elements of a model's state from Describe's
// parameter count and the BatchNorm buffers (running mean and variance, and
// a one-element counter, for each of the 8 BatchNorms: 4 in the stem, 3
// downsamples, the head's), independently of StateShapes.
func modelElems(cfg gsrmt.Config) int64 {
	c0 := cfg.Dims[0]
	bnChans := c0/2 + c0/2 + c0 + c0 + cfg.Dims[1] + cfg.Dims[2] + cfg.Dims[3] + cfg.HeadHidden
	return gsrmt.Describe(cfg, 224).Params + int64(2*bnChans) + 8
}

// A small file whose config describes a large model (or one beyond the
// limits) is refused by BuildModel before anything is allocated, with one
// line naming the file and what is wrong.
func TestBuildModelRefusesHostileConfigs(t *testing.T) {
	dir := t.TempDir()
	tiny := with(NewDict(), "stem.conv1.weight", f32(t, []int64{2, 3}))
	write := func(name string, tweak func(*gsrmt.Config)) (string, gsrmt.Config) {
		cfg, err := gsrmt.PresetConfig("swat", "nano", 10)
		if err != nil {
			t.Fatal(err)
		}
		tweak(&cfg)
		path := filepath.Join(dir, name)
		if err := SaveTraining(path, nil, &TrainingState{ModelConfig: cfg, Model: tiny}); err != nil {
			t.Fatal(err)
		}
		return path, cfg
	}

	// dims[3] = 4096 is within the limits (about 150 M parameters): the
	// shapes refuse it, with the element counts of both sides.
	path, cfg := write("wide.pt", func(c *gsrmt.Config) { c.Dims[3] = 4096 })
	ck, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ck.BuildModel(*ck.Config, gotch.CPU)
	var sme *StateMismatchError
	if !errors.As(err, &sme) {
		t.Fatalf("dims[3] = 4096: error %v, want a *StateMismatchError", err)
	}
	msg := err.Error()
	t.Log(msg)
	want := fmt.Sprintf("the model has %d elements, the state_dict's tensors 6", modelElems(cfg))
	if !strings.HasPrefix(msg, path+": ") || !strings.Contains(msg, want) || strings.Contains(msg, "\n") {
		t.Errorf("dims[3] = 4096: error %q, want %q on one line after the file name", msg, want)
	}
	if n := len(sme.Report.Missing); n < 100 || len(msg) > 2000 {
		t.Errorf("%d missing names, a message of %d bytes: want every name in the report, at most %d in the message", n, len(msg), 3*maxListed)
	}

	// Beyond a limit: the field, its value and the limit.
	for _, c := range []struct {
		name  string
		tweak func(*gsrmt.Config)
		want  string
	}{
		{"deep.pt", func(c *gsrmt.Config) { c.Depths[2] = 3000 }, "config depths[2] = 3000 is beyond the limit of 256 blocks per stage"},
		{"huge.pt", func(c *gsrmt.Config) {
			c.Dims, c.Heads, c.Depths = [4]int{8192, 8192, 8192, 8192}, [4]int{64, 64, 64, 64}, [4]int{4, 4, 4, 4}
		}, "config parameters = "},
	} {
		path, _ := write(c.name, c.tweak)
		ck, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ck.BuildModel(*ck.Config, gotch.CPU)
		t.Log(err)
		if !errors.Is(err, gsrmt.ErrLimit) || !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q naming the file", c.name, err, c.want)
		}
	}
}

// BuildModel builds and loads a matching checkpoint: every value arrives.
func TestBuildModelLoads(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	src := nanoModel(t, "swat", 10, 3)
	path := filepath.Join(t.TempDir(), "nano.pt")
	if err := SaveTraining(path, src, nil); err != nil {
		t.Fatal(err)
	}
	ck, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ck.BuildModel(*ck.Config, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, name := range []string{"stem.conv1.weight", "stages.3.blocks.0.attn.vgate.bias", "head.bn.running_var", "head.bn.num_batches_tracked"} {
		if a, b := paramValues(t, src, name), paramValues(t, m, name); !slices.Equal(a, b) {
			t.Errorf("%s: built %v, saved %v", name, b[:min(len(b), 4)], a[:min(len(a), 4)])
		}
	}
}

// Problems names the first maxListed entries of each kind and counts the
// rest; the report keeps them all.
func TestProblemsListsTheFirstOfEach(t *testing.T) {
	var r LoadReport
	for i := 0; i < 25; i++ {
		r.Missing = append(r.Missing, fmt.Sprintf("m%d", i))
		r.Mismatched = append(r.Mismatched, Mismatch{Name: fmt.Sprintf("x%d", i), Reason: "shape"})
	}
	r.Unexpected = []string{"u0", "u1"}
	p := r.Problems()
	for _, want := range []string{`25 missing key(s) in state_dict: "m0", `, `"m9", and 15 more;`,
		`2 unexpected key(s) in state_dict: "u0", "u1";`, "25 size mismatch(es): x0 ", "x9 (checkpoint [], model []), and 15 more"} {
		if !strings.Contains(p, want) {
			t.Errorf("Problems() = %q, want %q", p, want)
		}
	}
	if strings.Contains(p, `"m10"`) || strings.Contains(p, "x10 ") {
		t.Errorf("Problems() lists more than %d: %q", maxListed, p)
	}
}
