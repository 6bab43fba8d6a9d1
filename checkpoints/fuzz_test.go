package checkpoints

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/gsrmt/gsrmt/checkpoints/torchfmt"
	"github.com/gsrmt/gsrmt/gsrmt"
)

// FuzzOpen checks the whole path from a weights file to a model
// plan: Open's format detection (zip or legacy pickle, safetensors; the
// formats themselves are fuzzed in torchfmt), our training checkpoint's
// sections and config, and
// CheckModelState's limits and shape plan for whatever config the input
// holds. No input may panic, or pass a config beyond the limits.
func FuzzOpen(f *testing.F) {
	cfg := gsrmt.Config{Variant: "swat", Dims: [4]int{4, 4, 8, 8}, Depths: [4]int{1, 1, 2, 1}, Heads: [4]int{1, 1, 2, 2},
		MLPRatios: [4]float64{1, 1, 1, 1}, WindowSize: 7, Windows: true, RoPE: true, Gate: "elementwise", SwatNorm: "row",
		NumClasses: 3, InChans: 1, ImageSize: 32, DecayA: [4]float64{2, 2, 2, 2}, DecayR: [4]float64{4, 4, 6, 6}, HeadHidden: 4}
	counter, err := FromInt64(Int64, nil, []int64{7})
	if err != nil {
		f.Fatal(err)
	}
	state := with(NewOrderedDict(), "stem.conv1.weight", f32(f, []int64{2, 1, 3, 3}), "stem.bn1.num_batches_tracked", counter)
	top, err := trainingDict(nil, &TrainingState{ModelConfig: cfg, Model: state, Epoch: 1, Step: 2,
		Run: &RunInfo{Dataset: "cifar10", NormMean: []float32{0.5, 0.5, 0.5}}, Scheduler: &SchedulerState{Step: 2},
		Position: &Position{Epoch: 1, Batch: 3}, Epochs: []EpochRecord{{Epoch: 1, TestLoss: math.NaN()}}})
	if err != nil {
		f.Fatal(err)
	}
	var z bytes.Buffer
	if err := torchfmt.Write(&z, top); err != nil {
		f.Fatal(err)
	}
	seeds := [][]byte{z.Bytes()}
	cfgDict, _ := top.Get("config")
	var d bytes.Buffer
	if err := torchfmt.Write(&d, with(NewDict(), "state_dict", state, "config", cfgDict)); err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, d.Bytes())
	named, err := torchfmt.NamedTensors(state)
	if err != nil {
		f.Fatal(err)
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		f.Fatal(err)
	}
	var st bytes.Buffer
	if err := torchfmt.WriteSafetensors(&st, named, map[string]string{"config": string(js), "config_extra": `{"dataset":"x"}`}); err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, st.Bytes())
	for i, seed := range seeds {
		// Each seed reaches the config and the shape plan.
		ck, err := readCheckpoint(bytes.NewReader(seed), int64(len(seed)), "seed.pt", "")
		if err != nil || ck.Config == nil {
			f.Fatalf("seed %d: %v (config %v)", i, err, ck)
		}
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ck, err := readCheckpoint(bytes.NewReader(data), int64(len(data)), "fuzz.pt", "")
		if err != nil {
			return
		}
		if ck.State == nil {
			t.Fatalf("%s checkpoint without a state", ck.Kind)
		}
		if ck.Config == nil {
			return
		}
		err = CheckModelState(*ck.Config, ck.State)
		if err == nil {
			if lerr := gsrmt.CheckLimits(*ck.Config); lerr != nil {
				t.Fatalf("a config beyond the limits passed: %v", lerr)
			}
		}
	})
}
