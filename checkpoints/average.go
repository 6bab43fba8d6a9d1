package checkpoints

import (
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/gsrmt/gsrmt/gsrmt"
)

// Averaged is the weight average of several checkpoints (AverageFiles).
type Averaged struct {
	// State is the averaged state_dict: each floating-point tensor the mean
	// of the inputs' (summed in float64, stored as Float32), each integer
	// or bool tensor (BatchNorm's num_batches_tracked) the last input's.
	State *Dict
	// First is the first input, whose config, run description and config
	// entries describe the average. Its State (or EMA) is not the average.
	First *Checkpoint
	// Config is the model config the inputs record (the first one that
	// records one), or nil when none does; Run and ConfigExtra come with it.
	Config      *gsrmt.Config
	Run         *RunInfo
	ConfigExtra map[string]any
	// Paths are the inputs, in order; Averaged and Kept count the tensors
	// averaged and those taken from the last input.
	Paths    []string
	Averaged int
	Kept     int
	// EMA says the inputs' EMA weights were averaged.
	EMA bool
}

// AverageFiles averages the weights of the checkpoints at paths (2 or more,
// anything Open reads), as timm's avg_checkpoints.py does: every input must
// hold the same state_dict names, in any order, with the same shapes (and,
// where two record a model config, the same config); floating-point tensors
// are averaged in float64 and stored as Float32, and integer tensors (timm
// averages these too and casts back) are taken from the last input. With
// ema, each file's EMA weights (a gsrmt training checkpoint's "ema") are
// averaged instead, and a file without them is an error. A "module." or
// "_orig_mod." prefix is removed from each file's keys. The files are read
// one at a time, so memory holds the sums and one input. Errors name the
// file and, for a mismatch, the first differing entry. When a config is
// known the average is checked against it (CheckModelState).
func AverageFiles(paths []string, ema bool) (*Averaged, error) {
	if len(paths) < 2 {
		return nil, fmt.Errorf("checkpoints: average needs 2 or more files, got %d", len(paths))
	}
	acc := &averager{a: &Averaged{Paths: append([]string(nil), paths...), EMA: ema}, first: paths[0]}
	for i, path := range paths {
		tensors, err := acc.open(path, ema)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			err = acc.start(tensors, path)
		} else {
			err = acc.add(tensors, path)
		}
		if err != nil {
			return nil, err
		}
	}
	return acc.finish(float64(len(paths)))
}

// averager accumulates the state of the files AverageFiles reads.
type averager struct {
	a     *Averaged
	first string               // the first file's path
	names []string             // in the first file's order
	sums  map[string][]float64 // float tensors' running sums
	ref   map[string]*Tensor   // the first file's tensors (shapes, dtypes)
	last  map[string]*Tensor   // integer tensors: the latest file's
	cfgOf string               // the file whose config a.Config is
	// weights collects whose weights each input gave (RunInfo.Weights:
	// "model" or "ema"), so that the average says what it averaged.
	weights map[string]bool
}

// Weights values of an average (RunInfo.Weights) whose inputs' weights were
// of both kinds: some the trained model's, some the EMA's.
const weightsMixed = "mixed"

// weightsOf says whose weights the averager takes from ck: "ema" with
// --ema or when a run chose the EMA's for the file's model entry, else
// "model".
func weightsOf(ck *Checkpoint, ema bool) string {
	if ema || (ck.Run != nil && ck.Run.Weights == "ema") {
		return "ema"
	}
	return "model"
}

// open reads one file's state (or EMA) and checks its config against the
// first recorded one.
func (acc *averager) open(path string, ema bool) ([]namedTensor, error) {
	a := acc.a
	ck, err := Open(path)
	if err != nil {
		return nil, err
	}
	if a.First == nil {
		a.First = ck
	}
	state := ck.State
	if ema {
		if ck.Training == nil || ck.Training.EMA == nil {
			return nil, fmt.Errorf("checkpoints: average --ema: %s holds no EMA weights (%s file)", path, ck.Kind)
		}
		state = ck.Training.EMA
	}
	state, _ = StripPrefix(state)
	if acc.weights == nil {
		acc.weights = map[string]bool{}
	}
	acc.weights[weightsOf(ck, ema)] = true
	if ck.Config != nil {
		if a.Config == nil {
			c := *ck.Config
			a.Config, a.Run, a.ConfigExtra, acc.cfgOf = &c, ck.Run, ck.ConfigExtra, path
		} else if !reflect.DeepEqual(*a.Config, *ck.Config) {
			return nil, fmt.Errorf("checkpoints: average: %s records another model config than %s: %s", path, acc.cfgOf, configDiff(*a.Config, *ck.Config))
		}
	}
	return stateTensors(state, path)
}

// start takes the first file's entries as the reference.
func (acc *averager) start(tensors []namedTensor, path string) error {
	acc.sums, acc.ref, acc.last = make(map[string][]float64), make(map[string]*Tensor), make(map[string]*Tensor)
	for _, nt := range tensors {
		if _, dup := acc.ref[nt.name]; dup {
			return fmt.Errorf("checkpoints: average: %s: entry %q appears twice", path, nt.name)
		}
		acc.names = append(acc.names, nt.name)
		acc.ref[nt.name] = nt.t
		if !nt.t.DType().IsFloat() {
			acc.last[nt.name] = nt.t
			continue
		}
		v, err := float64s(nt.t)
		if err != nil {
			return fmt.Errorf("checkpoints: average: %s: %q: %w", path, nt.name, err)
		}
		acc.sums[nt.name] = v
	}
	return nil
}

// add adds a later file's float tensors to the sums and keeps its integers.
func (acc *averager) add(tensors []namedTensor, path string) error {
	if err := sameEntries(acc.names, acc.ref, tensors, path, acc.first); err != nil {
		return err
	}
	for _, nt := range tensors {
		if !nt.t.DType().IsFloat() {
			acc.last[nt.name] = nt.t
			continue
		}
		v, err := float64s(nt.t)
		if err != nil {
			return fmt.Errorf("checkpoints: average: %s: %q: %w", path, nt.name, err)
		}
		s := acc.sums[nt.name]
		for k := range s {
			s[k] += v[k]
		}
	}
	return nil
}

// finish divides the sums by n into float32 tensors, in the first file's
// order, and checks the result against the recorded config.
func (acc *averager) finish(n float64) (*Averaged, error) {
	a := acc.a
	if a.Run != nil { // a copy: the first input's RunInfo stays its own
		run := *a.Run
		run.Weights = weightsMixed
		if len(acc.weights) == 1 {
			for w := range acc.weights {
				run.Weights = w
			}
		}
		a.Run = &run
	}
	a.State = NewOrderedDict()
	for _, name := range acc.names {
		var t *Tensor
		var err error
		if s, ok := acc.sums[name]; ok {
			vals := make([]float32, len(s))
			for k, x := range s {
				vals[k] = float32(x / n)
			}
			t, err = FromFloat32(Float32, acc.ref[name].Shape, vals)
			a.Averaged++
		} else {
			var raw []byte
			lt := acc.last[name]
			if raw, err = lt.Bytes(); err == nil {
				t, err = NewTensor(lt.DType(), lt.Shape, raw)
			}
			a.Kept++
		}
		if err != nil {
			return nil, fmt.Errorf("checkpoints: average: %q: %w", name, err)
		}
		a.State.Set(name, t) // cannot fail: strings are hashable
	}
	if a.Config != nil {
		if err := CheckModelState(*a.Config, a.State); err != nil {
			return nil, fmt.Errorf("checkpoints: average: the weights do not fit the config of %s: %w", acc.cfgOf, err)
		}
	}
	return a, nil
}

// Save writes the average to path, atomically: as safetensors (with the
// config in the metadata when one is known) for a ".safetensors" path;
// otherwise as a gsrmt training checkpoint holding the averaged weights as
// "model", the inputs' config, run description and config entries, and in
// "metrics" "averaged_from" (the input paths) and "averaged_ema" (whether
// their EMA weights were averaged), with no optimizer, scheduler or EMA
// state and epoch and step 0; or, when no input records a config, as a
// bare state_dict.
func (a *Averaged) Save(path string) error {
	if strings.EqualFold(filepath.Ext(path), ".safetensors") {
		return SaveStateSafetensors(path, a.State, a.Config, a.Run, a.ConfigExtra)
	}
	if a.Config == nil {
		return Save(path, a.State)
	}
	from := make([]any, len(a.Paths))
	for i, p := range a.Paths {
		from[i] = p
	}
	return SaveTraining(path, nil, &TrainingState{ModelConfig: *a.Config, Run: a.Run, ConfigExtra: a.ConfigExtra,
		Model: a.State, Metrics: map[string]any{"averaged_from": from, "averaged_ema": a.EMA}})
}

// namedTensor is one state_dict entry.
type namedTensor struct {
	name string
	t    *Tensor
}

// stateTensors lists the entries of a state_dict, refusing keys that are
// not strings and values that are not tensors.
func stateTensors(state *Dict, path string) ([]namedTensor, error) {
	if state == nil {
		return nil, fmt.Errorf("checkpoints: average: %s: no state_dict", path)
	}
	out := make([]namedTensor, 0, state.Len())
	for _, e := range state.Entries() {
		name, ok := e.Key.(string)
		if !ok {
			return nil, fmt.Errorf("checkpoints: average: %s: state_dict key %v is not a string", path, e.Key)
		}
		t, ok := e.Value.(*Tensor)
		if !ok {
			return nil, fmt.Errorf("checkpoints: average: %s: entry %q is a %T, not a tensor", path, name, e.Value)
		}
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("checkpoints: average: %s: entry %q: %w", path, name, err)
		}
		out = append(out, namedTensor{name, t})
	}
	return out, nil
}

// sameEntries checks that tensors (of file path) have exactly the names of
// the first file, with the same shapes and the same kind of dtype (float or
// not); the error names the file and the first differing entry, in the
// first file's order.
func sameEntries(names []string, ref map[string]*Tensor, tensors []namedTensor, path, first string) error {
	got := make(map[string]*Tensor, len(tensors))
	for _, nt := range tensors {
		if _, dup := got[nt.name]; dup {
			return fmt.Errorf("checkpoints: average: %s: entry %q appears twice", path, nt.name)
		}
		if _, ok := ref[nt.name]; !ok {
			return fmt.Errorf("checkpoints: average: %s has entry %q, which %s lacks: not the same model", path, nt.name, first)
		}
		got[nt.name] = nt.t
	}
	for _, name := range names {
		t, ok := got[name]
		r := ref[name]
		switch {
		case !ok:
			return fmt.Errorf("checkpoints: average: %s lacks entry %q of %s: not the same model", path, name, first)
		case !slices.Equal(t.Shape, r.Shape):
			return fmt.Errorf("checkpoints: average: %s: entry %q has shape %s, %s has %s: not the same model",
				path, name, shapeStr(t.Shape), first, shapeStr(r.Shape))
		case t.DType().IsFloat() != r.DType().IsFloat():
			return fmt.Errorf("checkpoints: average: %s: entry %q is %v, %s has %v", path, name, t.DType(), first, r.DType())
		}
	}
	return nil
}

// float64s returns a float tensor's elements in row-major order as float64
// (exactly: Float64 is decoded directly, the narrower types widened).
func float64s(t *Tensor) ([]float64, error) {
	if t.DType() == Float64 {
		raw, err := t.Bytes()
		if err != nil {
			return nil, err
		}
		out := make([]float64, len(raw)/8)
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[i*8:]))
		}
		return out, nil
	}
	f, err := t.Float32s()
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(f))
	for i, x := range f {
		out[i] = float64(x)
	}
	return out, nil
}

// configDiff names the first field in which two configs differ.
func configDiff(a, b gsrmt.Config) string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := 0; i < va.NumField(); i++ {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			return fmt.Sprintf("%s %v, not %v", va.Type().Field(i).Name, vb.Field(i).Interface(), va.Field(i).Interface())
		}
	}
	return "equal"
}
