package checkpoints

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/gsrmt/gsrmt/checkpoints/torchfmt"
	"github.com/gsrmt/gsrmt/gsrmt"
)

// ModelStateDict copies the model's state (parameters, BatchNorm buffers and
// num_batches_tracked counters) into an OrderedDict of CPU tensors, with the
// names and order of m.Params(), which are PyTorch's state_dict names
// (MODEL.md section 9). Saved with Save it is exactly what
// torch.save(model.state_dict(), path) writes.
func ModelStateDict(m *gsrmt.Model) (*Dict, error) {
	d := NewOrderedDict()
	for _, p := range m.Params() {
		t, err := FromTorchTensor(p.Tensor)
		if err != nil {
			return nil, fmt.Errorf("checkpoints: model state %s: %w", p.Name, err)
		}
		d.Set(p.Name, t) // cannot fail: strings are hashable
	}
	return d, nil
}

// Mismatch is a state entry whose name the model has but whose tensor does
// not fit: another shape, or a dtype that cannot be cast (an integer tensor
// for a float parameter, a float one for a counter).
type Mismatch struct {
	Name       string
	ModelShape []int64
	StateShape []int64
	Reason     string // "shape" or a description of the dtype problem
}

func (m Mismatch) String() string {
	if m.Reason != "" && m.Reason != "shape" {
		return fmt.Sprintf("%s (%s)", m.Name, m.Reason)
	}
	return fmt.Sprintf("%s (checkpoint %v, model %v)", m.Name, shapeStr(m.StateShape), shapeStr(m.ModelShape))
}

func shapeStr(s []int64) string {
	if s == nil {
		return "[]"
	}
	return fmt.Sprint(s)
}

// LoadReport says what LoadModelState did with each name.
type LoadReport struct {
	Loaded     []string   // copied into the model
	Missing    []string   // in the model, not in the state (the model keeps its values)
	Unexpected []string   // in the state, not in the model (ignored)
	Mismatched []Mismatch // in both, but the tensor does not fit (the model keeps its values)
	// StrippedPrefix is the prefix removed from every key, such as
	// "module." of a DataParallel model, or "".
	StrippedPrefix string
}

// OK reports whether the state matched the model exactly.
func (r LoadReport) OK() bool {
	return len(r.Missing) == 0 && len(r.Unexpected) == 0 && len(r.Mismatched) == 0
}

// Skipped returns every name that was not loaded: missing, unexpected and
// mismatched, in that order.
func (r LoadReport) Skipped() []string {
	out := append(append([]string(nil), r.Missing...), r.Unexpected...)
	for _, m := range r.Mismatched {
		out = append(out, m.Name)
	}
	return out
}

// maxListed is how many names of each kind Problems lists before it
// gives a count of the rest.
const maxListed = 10

// Problems describes the missing keys, unexpected keys and mismatches, one
// clause per kind, in the manner of PyTorch's load_state_dict error; each
// clause names its first maxListed entries and counts the others (the
// report holds them all), so that a checkpoint of another architecture
// gives a readable line rather than thousands of names.
func (r LoadReport) Problems() string {
	var parts []string
	if len(r.Missing) > 0 {
		parts = append(parts, fmt.Sprintf("%d missing key(s) in state_dict: %s", len(r.Missing), quoteAll(r.Missing)))
	}
	if len(r.Unexpected) > 0 {
		parts = append(parts, fmt.Sprintf("%d unexpected key(s) in state_dict: %s", len(r.Unexpected), quoteAll(r.Unexpected)))
	}
	if len(r.Mismatched) > 0 {
		s := make([]string, 0, min(len(r.Mismatched), maxListed))
		for _, m := range r.Mismatched[:min(len(r.Mismatched), maxListed)] {
			s = append(s, m.String())
		}
		parts = append(parts, fmt.Sprintf("%d size mismatch(es): %s%s", len(r.Mismatched), strings.Join(s, ", "), more(len(r.Mismatched))))
	}
	return strings.Join(parts, "; ")
}

// more is the ", and N more" ending of a list cut at maxListed.
func more(n int) string {
	if n <= maxListed {
		return ""
	}
	return fmt.Sprintf(", and %d more", n-maxListed)
}

func quoteAll(names []string) string {
	q := make([]string, 0, min(len(names), maxListed))
	for _, n := range names[:min(len(names), maxListed)] {
		q = append(q, fmt.Sprintf("%q", n))
	}
	return strings.Join(q, ", ") + more(len(names))
}

// StateMismatchError is LoadModelState's error in strict mode, and
// CheckModelState's: its Report lists every problem, its message the
// first of each kind (LoadReport.Problems).
type StateMismatchError struct {
	Report LoadReport
	// ModelElems and StateElems count the elements of the model's state and
	// of the state_dict's tensors, when the two differ (else 0).
	ModelElems, StateElems int64
}

func (e *StateMismatchError) Error() string {
	msg := "checkpoints: state_dict does not match the model: "
	if e.ModelElems != e.StateElems {
		msg += fmt.Sprintf("the model has %d elements, the state_dict's tensors %d; ", e.ModelElems, e.StateElems)
	}
	return msg + e.Report.Problems()
}

// stateEntry is a name the model's state has, with its shape.
type stateEntry struct {
	name    string
	shape   []int64
	counter bool // num_batches_tracked: any integer scalar fits
}

// stateLoad is a state_dict tensor that fits the model entry name.
type stateLoad struct {
	name string
	t    *Tensor
}

// matchState compares a state_dict with the entries of a model, as
// LoadModelState describes, and returns the report (nothing is loaded yet)
// and the tensors that fit, in the state_dict's order.
func matchState(model []stateEntry, state *Dict) (LoadReport, []stateLoad) {
	var rep LoadReport
	entries, prefix := stripPrefix(state.Entries())
	rep.StrippedPrefix = prefix

	type want struct {
		shape   []int64
		counter bool
		found   bool
	}
	byName := make(map[string]*want, len(model))
	for _, e := range model {
		byName[e.name] = &want{shape: e.shape, counter: e.counter}
	}
	var loads []stateLoad
	for _, e := range entries {
		name, ok := e.Key.(string)
		if !ok {
			rep.Unexpected = append(rep.Unexpected, fmt.Sprint(e.Key))
			continue
		}
		w, ok := byName[name]
		if !ok {
			rep.Unexpected = append(rep.Unexpected, name)
			continue
		}
		w.found = true
		t, ok := e.Value.(*Tensor)
		if !ok {
			rep.Mismatched = append(rep.Mismatched, Mismatch{Name: name, ModelShape: w.shape,
				Reason: fmt.Sprintf("checkpoint holds a %T, not a tensor", e.Value)})
			continue
		}
		if err := t.Validate(); err != nil {
			rep.Mismatched = append(rep.Mismatched, Mismatch{Name: name, ModelShape: w.shape, StateShape: t.Shape,
				Reason: err.Error()})
			continue
		}
		if w.counter {
			if t.DType().IsFloat() || t.Numel() != 1 {
				rep.Mismatched = append(rep.Mismatched, Mismatch{Name: name, ModelShape: w.shape, StateShape: t.Shape,
					Reason: fmt.Sprintf("want an integer scalar, checkpoint has %v of shape %v", t.DType(), shapeStr(t.Shape))})
				continue
			}
		} else {
			if !slices.Equal(t.Shape, w.shape) {
				rep.Mismatched = append(rep.Mismatched, Mismatch{Name: name, ModelShape: w.shape, StateShape: t.Shape, Reason: "shape"})
				continue
			}
			if !t.DType().IsFloat() {
				rep.Mismatched = append(rep.Mismatched, Mismatch{Name: name, ModelShape: w.shape, StateShape: t.Shape,
					Reason: fmt.Sprintf("want a float tensor, checkpoint has %v", t.DType())})
				continue
			}
		}
		loads = append(loads, stateLoad{name, t})
	}
	for _, e := range model {
		if !byName[e.name].found {
			rep.Missing = append(rep.Missing, e.name)
		}
	}
	return rep, loads
}

// LoadModelState copies a state_dict into m. Keys are matched by name
// (a "module." or "_orig_mod." prefix on every key, as DataParallel and
// torch.compile write, is removed first); float tensors of any float dtype
// are cast to the model's float32, counters take any integer dtype.
//
// strict: every key must match, with the right shape; otherwise nothing is
// loaded and the error is a *StateMismatchError, whose Report lists every
// missing key, unexpected key and mismatch. Non-strict: the entries that
// fit are loaded, the others are skipped and listed in the report (for
// example a classifier head of another class count when fine-tuning); it is
// an error only when nothing at all fits. libtorch's errors come back as
// one line.
func LoadModelState(m *gsrmt.Model, state *Dict, strict bool) (LoadReport, error) {
	if state == nil {
		return LoadReport{}, errors.New("checkpoints: nil state_dict")
	}
	params := m.Params()
	model := make([]stateEntry, len(params))
	for i, p := range params {
		model[i] = stateEntry{name: p.Name, shape: p.Tensor.MustSize(), counter: p.Counter}
	}
	rep, loads := matchState(model, state)
	if strict && !rep.OK() {
		return rep, &StateMismatchError{Report: rep}
	}
	if len(loads) == 0 {
		return rep, fmt.Errorf("checkpoints: no entry of the state_dict fits the model: %s", rep.Problems())
	}
	for _, l := range loads {
		if err := copyEntry(m, l); err != nil {
			return rep, err
		}
		rep.Loaded = append(rep.Loaded, l.name)
	}
	return rep, nil
}

// CheckModelState checks, before any tensor is allocated, that a model of
// cfg can be built and loaded strictly from state: cfg must be within
// gsrmt's limits (gsrmt.CheckLimits: the error wraps gsrmt.ErrLimit and
// names the field, its value and the limit), and every name, shape and
// dtype the model has must be in state and nothing else (a
// *StateMismatchError, as a strict LoadModelState reports it, with the two
// element counts when they differ). The model is planned with
// gsrmt.StateShapes, never built, so a config that a small file claims to
// be huge costs nothing.
func CheckModelState(cfg gsrmt.Config, state *Dict) error {
	if state == nil {
		return errors.New("checkpoints: nil state_dict")
	}
	if err := gsrmt.CheckLimits(cfg); err != nil {
		return fmt.Errorf("checkpoints: config %w", err)
	}
	plan := gsrmt.StateShapes(cfg)
	model := make([]stateEntry, len(plan))
	var modelElems int64
	for i, e := range plan {
		model[i] = stateEntry{name: e.Name, shape: e.Shape, counter: e.Counter}
		modelElems += shapeNumel(e.Shape)
	}
	rep, _ := matchState(model, state)
	if rep.OK() {
		return nil
	}
	var stateElems int64
	for _, e := range state.Entries() {
		if t, ok := e.Value.(*Tensor); ok {
			stateElems += shapeNumel(t.Shape)
		}
	}
	err := &StateMismatchError{Report: rep}
	if modelElems != stateElems {
		err.ModelElems, err.StateElems = modelElems, stateElems
	}
	return err
}

// shapeNumel is the element count of a shape, saturating instead of
// overflowing for the shapes of a corrupt file.
func shapeNumel(shape []int64) int64 {
	n, err := torchfmt.ShapeNumel(shape)
	if err != nil {
		return math.MaxInt64
	}
	return n
}

// stripPrefix removes "module." (DataParallel) or "_orig_mod."
// (torch.compile) when every key starts with it.
func stripPrefix(entries []DictEntry) ([]DictEntry, string) {
	for _, prefix := range []string{"module.", "_orig_mod."} {
		all := len(entries) > 0
		for _, e := range entries {
			k, ok := e.Key.(string)
			if !ok || !strings.HasPrefix(k, prefix) {
				all = false
				break
			}
		}
		if all {
			out := make([]DictEntry, len(entries))
			for i, e := range entries {
				out[i] = DictEntry{Key: strings.TrimPrefix(e.Key.(string), prefix), Value: e.Value}
			}
			return out, prefix
		}
	}
	return entries, ""
}

// StripPrefix returns state without the "module." (DataParallel) or
// "_orig_mod." (torch.compile) prefix when every key has it, and the prefix
// removed ("" and state itself when none was).
func StripPrefix(state *Dict) (*Dict, string) {
	entries, prefix := stripPrefix(state.Entries())
	if prefix == "" {
		return state, ""
	}
	d := &Dict{Ordered: state.Ordered}
	for _, e := range entries {
		d.Set(e.Key, e.Value) // cannot fail: the keys are strings
	}
	return d, prefix
}

// ModelState returns the model weights in a loaded checkpoint: v itself when
// it is a bare state_dict (a dict whose values are all tensors, as
// torch.save(model.state_dict(), path) writes), or the dict held under the
// first of DefaultStateKeys present ("state_dict", "model",
// "model_state_dict", as timm's load_state_dict looks them up).
func ModelState(v any) (*Dict, error) {
	d, ok := v.(*Dict)
	if !ok {
		return nil, fmt.Errorf("checkpoints: checkpoint is a %T, not a dict", v)
	}
	state, _, err := selectState(d, "")
	return state, err
}
