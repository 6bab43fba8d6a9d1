package checkpoints

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/sugarme/gotch"
)

// ModelStateDict copies the model's state (parameters, BatchNorm buffers and
// num_batches_tracked counters) into an OrderedDict of CPU tensors, with the
// names and order of m.Params(), which are PyTorch's state_dict names
// (MODEL.md section 9). Saved with Save it is exactly what
// torch.save(model.state_dict(), path) writes.
func ModelStateDict(m *gsrmt.Model) (*Dict, error) {
	params := m.Params()
	defer dropCounters(params)
	d := NewOrderedDict()
	for _, p := range params {
		t, err := FromTorchTensor(p.Tensor)
		if err != nil {
			return nil, fmt.Errorf("checkpoints: model state %s: %w", p.Name, err)
		}
		d.Set(p.Name, t) // cannot fail: strings are hashable
	}
	return d, nil
}

// dropCounters frees the fresh num_batches_tracked tensors of m.Params().
func dropCounters(params []*gsrmt.Param) {
	for _, p := range params {
		if isCounter(p.Name) && p.Tensor != nil {
			p.Tensor.MustDrop()
		}
	}
}

func isCounter(name string) bool { return strings.HasSuffix(name, ".num_batches_tracked") }

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

// Problems describes every missing key, unexpected key and mismatch, one
// clause per kind, in the manner of PyTorch's load_state_dict error.
func (r LoadReport) Problems() string {
	var parts []string
	if len(r.Missing) > 0 {
		parts = append(parts, fmt.Sprintf("%d missing key(s) in state_dict: %s", len(r.Missing), quoteAll(r.Missing)))
	}
	if len(r.Unexpected) > 0 {
		parts = append(parts, fmt.Sprintf("%d unexpected key(s) in state_dict: %s", len(r.Unexpected), quoteAll(r.Unexpected)))
	}
	if len(r.Mismatched) > 0 {
		s := make([]string, len(r.Mismatched))
		for i, m := range r.Mismatched {
			s[i] = m.String()
		}
		parts = append(parts, fmt.Sprintf("%d size mismatch(es): %s", len(r.Mismatched), strings.Join(s, ", ")))
	}
	return strings.Join(parts, "; ")
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// StateMismatchError is LoadModelState's error in strict mode: it lists
// every problem at once.
type StateMismatchError struct {
	Report LoadReport
}

func (e *StateMismatchError) Error() string {
	return "checkpoints: state_dict does not match the model: " + e.Report.Problems()
}

// LoadModelState copies a state_dict into m. Keys are matched by name
// (a "module." or "_orig_mod." prefix on every key, as DataParallel and
// torch.compile write, is removed first); float tensors of any float dtype
// are cast to the model's float32, counters take any integer dtype.
//
// strict: every key must match, with the right shape; otherwise nothing is
// loaded and the error (a *StateMismatchError) lists every missing key,
// unexpected key and mismatch. Non-strict: the entries that fit are loaded,
// the others are skipped and listed in the report (for example a classifier
// head of another class count when fine-tuning); it is an error only when
// nothing at all fits.
func LoadModelState(m *gsrmt.Model, state *Dict, strict bool) (LoadReport, error) {
	var rep LoadReport
	if state == nil {
		return rep, errors.New("checkpoints: nil state_dict")
	}
	entries, prefix := stripPrefix(state.Entries())
	rep.StrippedPrefix = prefix

	params := m.Params()
	defer dropCounters(params)
	type want struct {
		shape []int64
		found bool
	}
	byName := make(map[string]*want, len(params))
	for _, p := range params {
		byName[p.Name] = &want{shape: p.Tensor.MustSize()}
	}

	type load struct {
		name string
		t    *Tensor
	}
	var loads []load
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
		if isCounter(name) {
			if t.DType().IsFloat() || t.Numel() != 1 {
				rep.Mismatched = append(rep.Mismatched, Mismatch{Name: name, ModelShape: w.shape, StateShape: t.Shape,
					Reason: fmt.Sprintf("want an integer scalar, checkpoint has %v of shape %v", t.DType(), shapeStr(t.Shape))})
				continue
			}
		} else {
			if !sameShape(t.Shape, w.shape) {
				rep.Mismatched = append(rep.Mismatched, Mismatch{Name: name, ModelShape: w.shape, StateShape: t.Shape, Reason: "shape"})
				continue
			}
			if !t.DType().IsFloat() {
				rep.Mismatched = append(rep.Mismatched, Mismatch{Name: name, ModelShape: w.shape, StateShape: t.Shape,
					Reason: fmt.Sprintf("want a float tensor, checkpoint has %v", t.DType())})
				continue
			}
		}
		loads = append(loads, load{name, t})
	}
	for _, p := range params {
		if !byName[p.Name].found {
			rep.Missing = append(rep.Missing, p.Name)
		}
	}
	if strict && !rep.OK() {
		return rep, &StateMismatchError{Report: rep}
	}
	if len(loads) == 0 {
		return rep, fmt.Errorf("checkpoints: no entry of the state_dict fits the model: %s", rep.Problems())
	}
	for _, l := range loads {
		x, err := ToTorchTensor(l.t, gotch.CPU)
		if err != nil {
			return rep, fmt.Errorf("checkpoints: load %s: %w", l.name, err)
		}
		err = m.SetTensor(l.name, x)
		x.MustDrop()
		if err != nil {
			return rep, fmt.Errorf("checkpoints: load %s: %w", l.name, err)
		}
		rep.Loaded = append(rep.Loaded, l.name)
	}
	return rep, nil
}

func sameShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
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

// IsSafetensors reports whether path is a safetensors file: by its
// extension, or, for other names, by its content (a little-endian header
// length followed by a JSON object).
func IsSafetensors(path string) (bool, error) {
	if strings.EqualFold(filepath.Ext(path), ".safetensors") {
		return true, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var head [9]byte
	if _, err := io.ReadFull(f, head[:]); err != nil {
		return false, nil // too short for either format; the reader says why
	}
	if bytes.HasPrefix(head[:], []byte("PK")) || head[0] == 0x80 {
		return false, nil
	}
	return head[8] == '{', nil
}

// Checkpoint is what a weights file holds, whatever its format.
type Checkpoint struct {
	Path string
	// Kind is "gsrmt" (our training checkpoint, format gsrmt-checkpoint-v1),
	// "state_dict" (a bare state_dict), "dict" (a dict holding one under
	// "model", "state_dict" or "model_state_dict") or "safetensors".
	Kind  string
	State *Dict // the model weights
	// Config is the model config the file records (nil when it has none);
	// ConfigExtra the other config entries.
	Config      *gsrmt.Config
	ConfigExtra map[string]any
	// Training is the whole training state of a "gsrmt" file, else nil.
	Training *TrainingState
	// Metadata is a safetensors file's metadata.
	Metadata map[string]string
}

// ReadCheckpoint reads a weights file: a .pt written by torch.save or Save
// (our training checkpoint, a bare state_dict, or a dict holding one under
// "model", "state_dict" or "model_state_dict"), or a safetensors file (by
// extension or content), with the model config when the file records one.
// Errors name the file.
func ReadCheckpoint(path string) (*Checkpoint, error) {
	isST, err := IsSafetensors(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	ck := &Checkpoint{Path: path}
	if isST {
		tensors, md, err := LoadSafetensors(path)
		if err != nil {
			return nil, err
		}
		ck.Kind, ck.State, ck.Metadata = "safetensors", TensorDict(tensors), md
		if _, ok := md["config"]; ok {
			cfg, extra, err := configFromMetadata(md)
			if err != nil {
				return nil, fmt.Errorf("checkpoints: %s: %w", path, err)
			}
			ck.Config, ck.ConfigExtra = &cfg, extra
		}
		return ck, nil
	}
	v, err := Load(path)
	if err != nil {
		return nil, err
	}
	if top, ok := v.(*Dict); ok {
		if f, _ := top.Get("format"); f == Format {
			st, err := trainingFromValue(v)
			if err != nil {
				return nil, fmt.Errorf("checkpoints: %s: %w", path, err)
			}
			cfg := st.ModelConfig
			ck.Kind, ck.State, ck.Config, ck.ConfigExtra, ck.Training = "gsrmt", st.Model, &cfg, st.ConfigExtra, st
			return ck, nil
		}
	}
	d, err := ModelState(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ck.State, ck.Kind = d, "dict"
	if d == v {
		ck.Kind = "state_dict"
	} else if cv, ok := v.(*Dict).Get("config"); ok {
		// A foreign checkpoint's "config" may be anything: use it only
		// when it is a valid gsrmt config.
		if m, err := plainDict(cv, "config"); err == nil {
			if cfg, extra, err := configFromMap(m); err == nil {
				ck.Config, ck.ConfigExtra = &cfg, extra
			}
		}
	}
	return ck, nil
}

// ReadStateDict reads the model weights from a file (see ReadCheckpoint).
// Errors name the file.
func ReadStateDict(path string) (*Dict, error) {
	ck, err := ReadCheckpoint(path)
	if err != nil {
		return nil, err
	}
	return ck.State, nil
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

// LoadWeights reads the weights of a checkpoint (see ReadStateDict) into m,
// as LoadModelState does. Errors name the file.
func LoadWeights(path string, m *gsrmt.Model, strict bool) (LoadReport, error) {
	state, err := ReadStateDict(path)
	if err != nil {
		return LoadReport{}, err
	}
	rep, err := LoadModelState(m, state, strict)
	if err != nil {
		return rep, fmt.Errorf("%s: %w", path, err)
	}
	return rep, nil
}

// ExportSafetensors writes the model's state_dict to path in the safetensors
// format, with the state_dict names, and the model config as JSON in the
// metadata (key "config", the form gsrmt.LoadConfig reads).
func ExportSafetensors(path string, m *gsrmt.Model) error {
	state, err := ModelStateDict(m)
	if err != nil {
		return err
	}
	cfg := m.Config
	return SaveStateSafetensors(path, state, &cfg, nil)
}

// SaveStateSafetensors writes a state_dict to path in the safetensors format.
// Metadata: "format": "pt" (as Hugging Face tools expect), and when cfg is
// not nil "config" (the model config JSON) and, when extra is not empty,
// "config_extra" (JSON of the other config entries: normalization, data set).
func SaveStateSafetensors(path string, state *Dict, cfg *gsrmt.Config, extra map[string]any) error {
	tensors, err := NamedTensors(state)
	if err != nil {
		return fmt.Errorf("checkpoints: save %s: %w", path, err)
	}
	md := map[string]string{"format": "pt"}
	if cfg != nil {
		md["gsrmt_format"] = Format
		b, err := jsonConfig(*cfg)
		if err != nil {
			return fmt.Errorf("checkpoints: save %s: %w", path, err)
		}
		md["config"] = string(b)
	}
	if len(extra) > 0 {
		b, err := jsonPlain(extra)
		if err != nil {
			return fmt.Errorf("checkpoints: save %s: config extra: %w", path, err)
		}
		md["config_extra"] = string(b)
	}
	return SaveSafetensors(path, tensors, md)
}
