package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/tfevents"
	"github.com/gsrmt/gsrmt/train"
	"github.com/sugarme/gotch"
)

// logRunOptions are a 2-epoch nano run of 3 steps an epoch with TensorBoard.
func logRunOptions(t *testing.T, data, out string) train.Options {
	t.Helper()
	cfg, err := gsrmt.PresetConfig("swat", "nano", 3)
	if err != nil {
		t.Fatal(err)
	}
	return train.Options{Dataset: "imagefolder", DataDir: data, ImgSize: 32, Model: cfg, Recipe: "default",
		Epochs: 2, Batch: 4, LR: 2e-3, MinLR: 1e-5, WeightDecay: 0.05, DropLast: true, Device: gotch.CPU,
		Threads: 1, Workers: 1, Seed: 3, Out: out, EvalEvery: 1, TensorBoard: filepath.Join(out, train.TensorBoardDir)}
}

func readEvents(t *testing.T, dir string) []train.StepEvent {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, train.EventsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []train.StepEvent
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e train.StepEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("events.jsonl line %d: %v: %s", len(out)+1, err, sc.Text())
		}
		out = append(out, e)
	}
	return out
}

// tensorBoardScalars reads the event files of dir in order, as TensorBoard
// does, applying SessionLog START (events at or after its step are
// discarded), and returns each tag's values by step.
func tensorBoardScalars(t *testing.T, dir string) map[string]map[int64]float32 {
	t.Helper()
	files, err := tfevents.Files(dir)
	if err != nil || len(files) == 0 {
		t.Fatalf("no event files in %s: %v", dir, err)
	}
	out := map[string]map[int64]float32{}
	for _, path := range files {
		events, err := tfevents.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) == 0 || events[0].FileVersion != tfevents.FileVersion {
			t.Fatalf("%s does not start with the file version: %+v", path, events)
		}
		for _, e := range events {
			if e.SessionStatus == tfevents.SessionStart {
				for _, byStep := range out {
					for step := range byStep {
						if step >= e.Step {
							delete(byStep, step)
						}
					}
				}
			}
			for _, s := range e.Scalars {
				if out[s.Tag] == nil {
					out[s.Tag] = map[int64]float32{}
				}
				if _, dup := out[s.Tag][e.Step]; dup {
					t.Errorf("%s: tag %s twice at step %d", path, s.Tag, e.Step)
				}
				out[s.Tag][e.Step] = s.Value
			}
		}
	}
	return out
}

// Every step is one line of events.jsonl and one TensorBoard event; the
// step losses average to metrics.csv's train loss (equal batches), the
// epoch's test metrics reach TensorBoard at the epoch's last step, and the
// gradient norm is the one --grad-clip measures.
func TestStepLogsMatchMetrics(t *testing.T) {
	data := makeImageFolder(t, 4, 2) // 12 training images: 3 steps of 4
	out := filepath.Join(t.TempDir(), "run")
	if _, err := train.Run(context.Background(), logRunOptions(t, data, out)); err != nil {
		t.Fatal(err)
	}
	events := readEvents(t, out)
	if len(events) != 6 {
		t.Fatalf("events.jsonl has %d lines, want 6 (2 epochs of 3 steps)", len(events))
	}
	for i, e := range events {
		if e.Step != int64(i+1) || e.Epoch != i/3+1 || e.Batch != i%3+1 || !(e.GradNorm > 0) || !(e.ImagesPerS > 0) || !(e.RSSMB > 10) || e.LR <= 0 {
			t.Errorf("line %d: %+v", i+1, e)
		}
	}
	tb := tensorBoardScalars(t, filepath.Join(out, train.TensorBoardDir))
	rows := readCSV(t, filepath.Join(out, "metrics.csv"))
	for epoch := 1; epoch <= 2; epoch++ {
		sum := 0.0
		for _, e := range events[3*(epoch-1) : 3*epoch] {
			sum += float64(e.Loss)
			if got := tb["train/loss"][e.Step]; got != float32(e.Loss) {
				t.Errorf("step %d: TensorBoard train/loss %v, events.jsonl %v", e.Step, got, e.Loss)
			}
			if got := tb["train/grad_norm"][e.Step]; got != float32(e.GradNorm) {
				t.Errorf("step %d: TensorBoard train/grad_norm %v, events.jsonl %v", e.Step, got, e.GradNorm)
			}
		}
		trainLoss, _ := strconv.ParseFloat(rows[epoch][2], 64)
		if math.Abs(sum/3-trainLoss) > 1e-6*trainLoss {
			t.Errorf("epoch %d: mean step loss %v, metrics.csv train_loss %v", epoch, sum/3, trainLoss)
		}
		top1, _ := strconv.ParseFloat(rows[epoch][5], 64)
		if got, ok := tb["test/top1"][int64(3*epoch)]; !ok || got != float32(top1) {
			t.Errorf("epoch %d: TensorBoard test/top1 at step %d = %v (present %v), metrics.csv %v", epoch, 3*epoch, got, ok, top1)
		}
		if got := tb["epoch"][int64(3*epoch)]; got != float32(epoch) {
			t.Errorf("TensorBoard epoch at step %d = %v, want %d", 3*epoch, got, epoch)
		}
	}
	// With --grad-clip (a limit never reached: the same training) the norm
	// comes from the clipping, read at once; without it the log reads its
	// own measurement a step later. Both give each step its own norm.
	clipped := filepath.Join(t.TempDir(), "clipped")
	o := logRunOptions(t, data, clipped)
	o.GradClip = 1e9
	if _, err := train.Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	for i, e := range readEvents(t, clipped) {
		if e.GradNorm != events[i].GradNorm || e.Loss != events[i].Loss {
			t.Errorf("step %d: with --grad-clip grad norm %v, loss %v; without %v, %v", e.Step, e.GradNorm, e.Loss, events[i].GradNorm, events[i].Loss)
		}
	}
}

// A run resumed after a crash logs each step once: events.jsonl loses the
// lines the crashed attempt wrote after its checkpoint, and TensorBoard's
// new file discards them with a SessionLog START.
func TestStepLogsOnResume(t *testing.T) {
	data := makeImageFolder(t, 4, 2)
	out := filepath.Join(t.TempDir(), "run")
	o := logRunOptions(t, data, out)
	res, err := runStoppingAt(o, 2)
	if err != nil || !res.Interrupted || res.Steps >= 5 {
		t.Fatalf("interrupted run: %v (%+v)", err, res)
	}
	// What a crash after the checkpoint would have left: the next two steps
	// logged (in both logs), and a line cut short.
	s := res.Steps
	f, err := os.OpenFile(filepath.Join(out, train.EventsFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "{\"step\":%d,\"loss\":99}\n{\"step\":%d,\"loss\":99}\n{\"step\":%d,\"lo", s+1, s+2, s+3)
	f.Close()
	w, err := tfevents.Create(o.TensorBoard)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(tfevents.Event{Step: s + 1, Scalars: []tfevents.Scalar{{Tag: "train/loss", Value: 99}}},
		tfevents.Event{Step: s + 2, Scalars: []tfevents.Scalar{{Tag: "train/loss", Value: 99}}})
	w.Close()

	o = logRunOptions(t, data, out)
	o.Resume = filepath.Join(out, "last.pt")
	if _, err := train.Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	events := readEvents(t, out)
	if len(events) != 6 {
		t.Fatalf("events.jsonl has %d lines after the resume, want 6", len(events))
	}
	tb := tensorBoardScalars(t, o.TensorBoard)
	for i, e := range events {
		if e.Step != int64(i+1) || e.Loss == 99 {
			t.Errorf("line %d: %+v", i+1, e)
		}
		if got := tb["train/loss"][e.Step]; got != float32(e.Loss) {
			t.Errorf("step %d: TensorBoard train/loss %v, events.jsonl %v", e.Step, got, e.Loss)
		}
	}
	if len(tb["train/loss"]) != 6 {
		t.Errorf("TensorBoard train/loss has %d steps, want 6", len(tb["train/loss"]))
	}
}
