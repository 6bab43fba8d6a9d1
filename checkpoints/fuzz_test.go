package checkpoints

import (
	"bytes"
	"testing"

	"github.com/gsrmt/gsrmt/gsrmt"
)

func fuzzSeedTree(t testing.TB) *Dict {
	must := mustTensor(t)
	base := must(FromFloat32(Float16, []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6}))
	return set(t, NewDict(),
		"w", base,
		"t", &Tensor{Storage: base.Storage, StorageOffset: 1, Shape: []int64{2, 2}, Stride: []int64{1, 3}},
		"i", must(FromInt64(Int64, []int64{2}, []int64{-1, 1})),
		"n", []any{int64(1), "x", nil, Tuple{true}},
	)
}

// FuzzRead checks that no input makes the checkpoint reader panic. Plain go
// test runs only the seed corpus.
func FuzzRead(f *testing.F) {
	var z bytes.Buffer
	if err := Write(&z, fuzzSeedTree(f)); err != nil {
		f.Fatal(err)
	}
	f.Add(z.Bytes())
	f.Add(writeLegacy(f, fuzzSeedTree(f), false))
	f.Add(writeLegacy(f, fuzzSeedTree(f), true))
	f.Add([]byte("\x80\x02K\x05."))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Read(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		// Whatever was read is well-formed enough to write back.
		if err := Write(&bytes.Buffer{}, v); err != nil {
			t.Logf("read but cannot write back: %v", err)
		}
	})
}

// FuzzReadSafetensors checks that no input makes the safetensors reader
// panic.
func FuzzReadSafetensors(f *testing.F) {
	named, err := NamedTensors(set(f, NewDict(), "a", mustTensor(f)(FromInt64(Int16, []int64{2}, []int64{1, 2}))))
	if err != nil {
		f.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteSafetensors(&b, named, map[string]string{"k": "v"}); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, _, err := ReadSafetensors(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		for _, nt := range ts {
			if _, err := nt.Tensor.Bytes(); err != nil {
				t.Fatalf("read an invalid tensor %q: %v", nt.Name, err)
			}
		}
	})
}

// FuzzReadCheckpoint checks the whole path from a weights file to a model
// plan: ReadCheckpoint's format detection (zip, legacy pickle,
// safetensors), our training checkpoint's sections and config, and
// CheckModelState's limits and shape plan for whatever config the input
// holds. No input may panic, or pass a config beyond the limits.
func FuzzReadCheckpoint(f *testing.F) {
	cfg := gsrmt.Config{Variant: "swat", Dims: [4]int{4, 4, 8, 8}, Depths: [4]int{1, 1, 2, 1}, Heads: [4]int{1, 1, 2, 2},
		MLPRatios: [4]float64{1, 1, 1, 1}, WindowSize: 7, Windows: true, RoPE: true, Gate: "elementwise", SwatNorm: "row",
		NumClasses: 3, InChans: 1, ImageSize: 32, DecayA: [4]float64{2, 2, 2, 2}, DecayR: [4]float64{4, 4, 6, 6}, HeadHidden: 4}
	state := set(f, NewOrderedDict(), "stem.conv1.weight", mustTensor(f)(FromFloat32(Float32, []int64{2, 1, 3, 3}, make([]float32, 18))),
		"stem.bn1.num_batches_tracked", mustTensor(f)(FromInt64(Int64, nil, []int64{7})))
	top, err := trainingDict(nil, &TrainingState{ModelConfig: cfg, Model: state, Epoch: 1, Step: 2,
		ConfigExtra: map[string]any{"dataset": "cifar10"}})
	if err != nil {
		f.Fatal(err)
	}
	var z bytes.Buffer
	if err := Write(&z, top); err != nil {
		f.Fatal(err)
	}
	seeds := [][]byte{z.Bytes(), writeLegacy(f, top, false)}
	cfgDict, _ := top.Get("config")
	var d bytes.Buffer
	if err := Write(&d, set(f, NewDict(), "state_dict", state, "config", cfgDict)); err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, d.Bytes())
	named, err := NamedTensors(state)
	if err != nil {
		f.Fatal(err)
	}
	js, err := jsonConfig(cfg)
	if err != nil {
		f.Fatal(err)
	}
	var st bytes.Buffer
	if err := WriteSafetensors(&st, named, map[string]string{"config": string(js), "config_extra": `{"dataset":"x"}`}); err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, st.Bytes())
	for i, seed := range seeds {
		// Each seed reaches the config and the shape plan.
		ck, err := readCheckpoint(bytes.NewReader(seed), int64(len(seed)), "seed.pt")
		if err != nil || ck.Config == nil {
			f.Fatalf("seed %d: %v (config %v)", i, err, ck)
		}
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ck, err := readCheckpoint(bytes.NewReader(data), int64(len(data)), "fuzz.pt")
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
