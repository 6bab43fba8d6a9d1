package train

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/gsrmt"
)

// GradNorm measures what ClipGradNorm measures (hand-computed: the norm of
// the per-parameter norms 5 and 12 is 13), skips frozen parameters, and
// leaves the gradients alone.
func TestGradNormAgainstHandComputed(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a := param("a", []float32{0, 0}, []float32{3, 4}, false)
	b := param("b", []float32{0}, []float32{12}, false)
	frozen := param("f", []float32{0}, []float32{100}, false)
	frozen.Trainable = false
	defer a.Tensor.MustDrop()
	defer b.Tensor.MustDrop()
	defer frozen.Tensor.MustDrop()
	norm, err := GradNorm([]*gsrmt.Param{a, b, frozen})
	if err != nil || math.Abs(norm-13) > 1e-5 {
		t.Fatalf("GradNorm = %v, %v; want 13", norm, err)
	}
	g := a.Tensor.MustGrad(false)
	defer g.MustDrop()
	if gv := g.Vals().([]float32); gv[0] != 3 || gv[1] != 4 {
		t.Errorf("GradNorm changed the gradient to %v", gv)
	}
}

// A resumed run keeps the step log's lines up to its checkpoint's step and
// drops later ones and a line cut short by a crash.
func TestTruncateEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), EventsFile)
	lines := `{"step":1,"loss":2}` + "\n" + `{"step":2,"loss":1.5}` + "\n" + `{"step":3,"loss":1}` + "\n" + `{"step":4,"lo`
	if err := os.WriteFile(path, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := truncateEvents(path, 2); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if want := `{"step":1,"loss":2}` + "\n" + `{"step":2,"loss":1.5}` + "\n"; string(b) != want {
		t.Errorf("after truncating to step 2:\n%s\nwant\n%s", b, want)
	}
	if err := truncateEvents(filepath.Join(t.TempDir(), EventsFile), 5); err != nil {
		t.Errorf("a missing step log: %v", err)
	}
}

// NaN and infinities are written as null, which JSON readers accept.
func TestStepEventNonFiniteAsNull(t *testing.T) {
	b, err := json.Marshal(StepEvent{Step: 1, Loss: 0.5, GradNorm: number(math.Inf(1))})
	if err != nil || !strings.Contains(string(b), `"grad_norm":null`) || !strings.Contains(string(b), `"loss":0.5`) {
		t.Fatalf("%s, %v", b, err)
	}
}

// --overwrite removes the old run's step log and TensorBoard folder.
func TestRunDirOverwriteRemovesLogs(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, "config.json", EventsFile)
	if err := os.MkdirAll(filepath.Join(dir, TensorBoardDir), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, filepath.Join(dir, TensorBoardDir), "events.out.tfevents.1.host")
	d, err := openRunDir(&Options{Out: dir, Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	d.close()
	for _, n := range []string{EventsFile, TensorBoardDir} {
		if _, err := os.Stat(filepath.Join(dir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("--overwrite left %s", n)
		}
	}
}
