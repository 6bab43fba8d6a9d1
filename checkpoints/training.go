package checkpoints

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"sort"
	"strings"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Format is the value of the "format" entry of gsrmt's training checkpoints.
const Format = "gsrmt-checkpoint-v1"

// ErrNoConfig is returned (wrapped) by ReadConfig for a checkpoint without a
// model config, such as a bare state_dict: the caller needs the model flags.
var ErrNoConfig = errors.New("checkpoint holds no model config (a bare state_dict?)")

// TrainingState is the content of a training checkpoint (DATA.md,
// Checkpoints), in neutral form: tensors are checkpoint Tensors on the CPU,
// which the caller moves to its device (ToTorchTensor, ToTorchTensors,
// OptimizerState.TorchMoments).
//
// The file is a dict with, in this order: "model" (the state_dict), "config"
// (the gsrmt.Config fields under their JSON names, merged with ConfigExtra),
// "epoch", "step", "optimizer" (None when Optimizer is nil), "scheduler",
// "ema" (None when EMA is nil), "rng", "metrics" and "format"
// ("gsrmt-checkpoint-v1").
type TrainingState struct {
	// ModelConfig is the model's config. SaveTraining takes it from the
	// model when one is given.
	ModelConfig gsrmt.Config
	// ConfigExtra holds the other "config" entries: normalization, data set,
	// split rule and seed, and anything else worth recording. Keys must not
	// be gsrmt.Config JSON names.
	ConfigExtra map[string]any
	// Model is the state_dict. SaveTraining takes it from the model when one
	// is given; LoadTraining fills it.
	Model *Dict

	Epoch int64 // epochs completed
	Step  int64 // optimizer steps taken

	Optimizer *OptimizerState // nil: none saved
	Scheduler map[string]any
	EMA       *Dict // optional second state_dict (exponential moving average of the weights)
	RNG       map[string]any
	Metrics   map[string]any
}

// OptimizerState is AdamW's state: step count, hyper-parameters and the two
// moments of every trainable parameter, by parameter name. In the file:
// {"type": Type, "step": Step, "hyper": {name: float}, "exp_avg":
// OrderedDict(name -> tensor), "exp_avg_sq": OrderedDict(name -> tensor)}.
type OptimizerState struct {
	Type  string // "adamw" when empty
	Step  int64
	Hyper map[string]float64 // e.g. lr, beta1, beta2, eps, weight_decay
	// Names orders the moments in the file (parameter order); names not in
	// it follow, sorted. LoadTraining fills it with the file's order.
	Names    []string
	ExpAvg   map[string]*Tensor // first moment
	ExpAvgSq map[string]*Tensor // second moment
}

// NewOptimizerState copies moments held as libtorch tensors, such as those
// train.AdamW.Moments returns (names, m, v; nil m and v before the first
// step give empty moments).
func NewOptimizerState(step int64, hyper map[string]float64, names []string, m, v []*ts.Tensor) (*OptimizerState, error) {
	o := &OptimizerState{Type: "adamw", Step: step, Hyper: map[string]float64{},
		ExpAvg: map[string]*Tensor{}, ExpAvgSq: map[string]*Tensor{}}
	for k, x := range hyper {
		o.Hyper[k] = x
	}
	if len(m) == 0 && len(v) == 0 {
		return o, nil
	}
	if len(m) != len(names) || len(v) != len(names) {
		return nil, fmt.Errorf("checkpoints: optimizer state: %d names, %d first and %d second moments", len(names), len(m), len(v))
	}
	o.Names = append([]string(nil), names...)
	for i, name := range names {
		if _, dup := o.ExpAvg[name]; dup {
			return nil, fmt.Errorf("checkpoints: optimizer state: parameter %q appears twice", name)
		}
		a, err := FromTorchTensor(m[i])
		if err != nil {
			return nil, fmt.Errorf("checkpoints: optimizer state %s: %w", name, err)
		}
		b, err := FromTorchTensor(v[i])
		if err != nil {
			return nil, fmt.Errorf("checkpoints: optimizer state %s: %w", name, err)
		}
		o.ExpAvg[name], o.ExpAvgSq[name] = a, b
	}
	return o, nil
}

// TorchMoments returns the moments as libtorch tensors on device, by name,
// for train.AdamW.SetMoments (which copies them: drop these afterwards).
func (o *OptimizerState) TorchMoments(device gotch.Device) (m, v map[string]*ts.Tensor, err error) {
	drop := func(ts map[string]*ts.Tensor) {
		for _, t := range ts {
			t.MustDrop()
		}
	}
	m, v = map[string]*ts.Tensor{}, map[string]*ts.Tensor{}
	for name, t := range o.ExpAvg {
		x, err := ToTorchTensor(t, device)
		if err != nil {
			drop(m)
			return nil, nil, fmt.Errorf("checkpoints: optimizer exp_avg %s: %w", name, err)
		}
		m[name] = x
	}
	for name, t := range o.ExpAvgSq {
		x, err := ToTorchTensor(t, device)
		if err != nil {
			drop(m)
			drop(v)
			return nil, nil, fmt.Errorf("checkpoints: optimizer exp_avg_sq %s: %w", name, err)
		}
		v[name] = x
	}
	return m, v, nil
}

// SaveTraining writes a training checkpoint to path, atomically (see Save).
// With m not nil the model's weights and config are saved (st.Model and
// st.ModelConfig are ignored); with m nil, st.Model and st.ModelConfig are.
// st may be nil for a checkpoint of the weights and config alone.
func SaveTraining(path string, m *gsrmt.Model, st *TrainingState) error {
	top, err := trainingDict(m, st)
	if err != nil {
		return fmt.Errorf("checkpoints: save %s: %w", path, err)
	}
	return Save(path, top)
}

func trainingDict(m *gsrmt.Model, st *TrainingState) (*Dict, error) {
	if st == nil {
		st = &TrainingState{}
	}
	var err error
	state, cfg := st.Model, st.ModelConfig
	if m != nil {
		if state, err = ModelStateDict(m); err != nil {
			return nil, err
		}
		cfg = m.Config
	}
	if state == nil {
		return nil, errors.New("no model state: pass a model or set TrainingState.Model")
	}
	if _, err := NamedTensors(state); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("model config: %w", err)
	}
	cfgDict, err := configDict(cfg, st.ConfigExtra)
	if err != nil {
		return nil, err
	}
	top := NewDict()
	top.Set("model", state)
	top.Set("config", cfgDict)
	top.Set("epoch", st.Epoch)
	top.Set("step", st.Step)
	if st.Optimizer != nil {
		od, err := st.Optimizer.dict()
		if err != nil {
			return nil, err
		}
		top.Set("optimizer", od)
	} else {
		top.Set("optimizer", nil)
	}
	for _, sec := range []struct {
		key string
		m   map[string]any
	}{{"scheduler", st.Scheduler}} {
		v, err := plainMap(sec.m, sec.key)
		if err != nil {
			return nil, err
		}
		top.Set(sec.key, v)
	}
	if st.EMA != nil {
		if _, err := NamedTensors(st.EMA); err != nil {
			return nil, fmt.Errorf("ema: %w", err)
		}
		top.Set("ema", st.EMA)
	} else {
		top.Set("ema", nil)
	}
	for _, sec := range []struct {
		key string
		m   map[string]any
	}{{"rng", st.RNG}, {"metrics", st.Metrics}} {
		v, err := plainMap(sec.m, sec.key)
		if err != nil {
			return nil, err
		}
		top.Set(sec.key, v)
	}
	top.Set("format", Format)
	return top, nil
}

func (o *OptimizerState) dict() (*Dict, error) {
	typ := o.Type
	if typ == "" {
		typ = "adamw"
	}
	d := NewDict()
	d.Set("type", typ)
	d.Set("step", o.Step)
	hyper := NewDict()
	keys := make([]string, 0, len(o.Hyper))
	for k := range o.Hyper {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		hyper.Set(k, o.Hyper[k])
	}
	d.Set("hyper", hyper)
	for _, mom := range []struct {
		key string
		m   map[string]*Tensor
	}{{"exp_avg", o.ExpAvg}, {"exp_avg_sq", o.ExpAvgSq}} {
		md := NewOrderedDict()
		for _, name := range orderNames(o.Names, mom.m) {
			if mom.m[name] == nil {
				return nil, fmt.Errorf("optimizer %s %s: nil tensor", mom.key, name)
			}
			md.Set(name, mom.m[name])
		}
		d.Set(mom.key, md)
	}
	return d, nil
}

// orderNames returns the keys of m: those in order first, then the rest
// sorted.
func orderNames(order []string, m map[string]*Tensor) []string {
	out := make([]string, 0, len(m))
	seen := map[string]bool{}
	for _, n := range order {
		if _, ok := m[n]; ok && !seen[n] {
			out = append(out, n)
			seen[n] = true
		}
	}
	var rest []string
	for n := range m {
		if !seen[n] {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// LoadTraining reads a training checkpoint written by SaveTraining (format
// "gsrmt-checkpoint-v1"). Tensors come back as checkpoint Tensors on the
// CPU; numbers as int64 or float64, dicts with string keys as
// map[string]any, lists as []any. Errors name the file.
func LoadTraining(path string) (*TrainingState, error) {
	v, err := Load(path)
	if err != nil {
		return nil, err
	}
	st, err := trainingFromValue(v)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	return st, nil
}

func trainingFromValue(v any) (*TrainingState, error) {
	top, ok := v.(*Dict)
	if !ok {
		return nil, fmt.Errorf("not a gsrmt training checkpoint: the file holds a %T, not a dict", v)
	}
	if f, _ := top.Get("format"); f != Format {
		return nil, fmt.Errorf("not a gsrmt training checkpoint: format %v, want %q (LoadWeights reads bare state_dicts)", f, Format)
	}
	st := &TrainingState{}
	mv, _ := top.Get("model")
	model, ok := mv.(*Dict)
	if !ok {
		return nil, fmt.Errorf("\"model\" is a %T, not a state_dict", mv)
	}
	if _, err := NamedTensors(model); err != nil {
		return nil, fmt.Errorf("\"model\": %w", err)
	}
	st.Model = model
	cv, _ := top.Get("config")
	cfgMap, err := plainDict(cv, "config")
	if err != nil {
		return nil, err
	}
	if st.ModelConfig, st.ConfigExtra, err = configFromMap(cfgMap); err != nil {
		return nil, fmt.Errorf("\"config\": %w", err)
	}
	if st.Epoch, err = intEntry(top, "epoch"); err != nil {
		return nil, err
	}
	if st.Step, err = intEntry(top, "step"); err != nil {
		return nil, err
	}
	if ov, _ := top.Get("optimizer"); ov != nil {
		od, ok := ov.(*Dict)
		if !ok {
			return nil, fmt.Errorf("\"optimizer\" is a %T, not a dict", ov)
		}
		if st.Optimizer, err = optimizerFromDict(od); err != nil {
			return nil, fmt.Errorf("\"optimizer\": %w", err)
		}
	}
	if ev, _ := top.Get("ema"); ev != nil {
		ed, ok := ev.(*Dict)
		if !ok {
			return nil, fmt.Errorf("\"ema\" is a %T, not a state_dict", ev)
		}
		if _, err := NamedTensors(ed); err != nil {
			return nil, fmt.Errorf("\"ema\": %w", err)
		}
		st.EMA = ed
	}
	for _, sec := range []struct {
		key string
		dst *map[string]any
	}{{"scheduler", &st.Scheduler}, {"rng", &st.RNG}, {"metrics", &st.Metrics}} {
		sv, _ := top.Get(sec.key)
		if *sec.dst, err = plainDict(sv, sec.key); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func intEntry(d *Dict, key string) (int64, error) {
	v, ok := d.Get(key)
	if !ok || v == nil {
		return 0, nil
	}
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("%q is a %T (%v), not an integer", key, v, v)
	}
	return n, nil
}

func optimizerFromDict(d *Dict) (*OptimizerState, error) {
	o := &OptimizerState{Hyper: map[string]float64{}, ExpAvg: map[string]*Tensor{}, ExpAvgSq: map[string]*Tensor{}}
	if t, ok := d.Get("type"); ok {
		s, ok := t.(string)
		if !ok {
			return nil, fmt.Errorf("\"type\" is a %T, not a string", t)
		}
		o.Type = s
	}
	var err error
	if o.Step, err = intEntry(d, "step"); err != nil {
		return nil, err
	}
	if hv, ok := d.Get("hyper"); ok && hv != nil {
		hd, ok := hv.(*Dict)
		if !ok {
			return nil, fmt.Errorf("\"hyper\" is a %T, not a dict", hv)
		}
		for _, e := range hd.Entries() {
			k, ok := e.Key.(string)
			if !ok {
				return nil, fmt.Errorf("\"hyper\" key %v is not a string", e.Key)
			}
			switch x := e.Value.(type) {
			case float64:
				o.Hyper[k] = x
			case int64:
				o.Hyper[k] = float64(x)
			default:
				return nil, fmt.Errorf("\"hyper\" entry %q is a %T, not a number", k, e.Value)
			}
		}
	}
	for _, mom := range []struct {
		key string
		dst map[string]*Tensor
	}{{"exp_avg", o.ExpAvg}, {"exp_avg_sq", o.ExpAvgSq}} {
		mv, ok := d.Get(mom.key)
		if !ok || mv == nil {
			continue
		}
		md, ok := mv.(*Dict)
		if !ok {
			return nil, fmt.Errorf("%q is a %T, not a dict", mom.key, mv)
		}
		named, err := NamedTensors(md)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", mom.key, err)
		}
		for _, nt := range named {
			mom.dst[nt.Name] = nt.Tensor
			if mom.key == "exp_avg" {
				o.Names = append(o.Names, nt.Name)
			}
		}
	}
	return o, nil
}

// ReadConfig returns the model config recorded in a checkpoint (the
// "config" entry of our .pt files, or the "config" metadata of our
// safetensors files) and the other config entries (normalization, data set,
// split). For a file without one, such as a bare state_dict, the error wraps
// ErrNoConfig. Errors name the file.
func ReadConfig(path string) (gsrmt.Config, map[string]any, error) {
	ck, err := ReadCheckpoint(path)
	if err != nil {
		return gsrmt.Config{}, nil, err
	}
	if ck.Config == nil {
		return gsrmt.Config{}, nil, fmt.Errorf("checkpoints: %s: %w", path, ErrNoConfig)
	}
	return *ck.Config, ck.ConfigExtra, nil
}

func configFromMetadata(md map[string]string) (gsrmt.Config, map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(md["config"]), &m); err != nil {
		return gsrmt.Config{}, nil, fmt.Errorf("metadata \"config\": %w", err)
	}
	cfg, extra, err := configFromMap(m)
	if err != nil {
		return gsrmt.Config{}, nil, fmt.Errorf("metadata \"config\": %w", err)
	}
	if raw, ok := md["config_extra"]; ok {
		if err := json.Unmarshal([]byte(raw), &extra); err != nil {
			return gsrmt.Config{}, nil, fmt.Errorf("metadata \"config_extra\": %w", err)
		}
	}
	return cfg, extra, nil
}

// configKeys are the JSON names of gsrmt.Config's fields, in field order.
var configKeys = func() []string {
	t := reflect.TypeOf(gsrmt.Config{})
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if name := jsonName(t.Field(i)); name != "" {
			keys = append(keys, name)
		}
	}
	return keys
}()

func jsonName(f reflect.StructField) string {
	tag := f.Tag.Get("json")
	if tag == "-" || !f.IsExported() {
		return ""
	}
	if name, _, _ := strings.Cut(tag, ","); name != "" {
		return name
	}
	return f.Name
}

func isConfigKey(k string) bool {
	for _, c := range configKeys {
		if c == k {
			return true
		}
	}
	return false
}

// configDict is the "config" entry: cfg's fields under their JSON names,
// with their Go types (ints stay ints, floats floats: mlp_ratios [2.0, ...]),
// then the extra entries, sorted.
func configDict(cfg gsrmt.Config, extra map[string]any) (*Dict, error) {
	d := NewDict()
	v := reflect.ValueOf(cfg)
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := jsonName(f)
		if name == "" {
			continue
		}
		if strings.Contains(f.Tag.Get("json"), ",omitempty") && v.Field(i).IsZero() {
			continue
		}
		pv, err := plainValue(v.Field(i).Interface(), "config."+name, 0)
		if err != nil {
			return nil, err
		}
		d.Set(name, pv)
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		if isConfigKey(k) {
			return nil, fmt.Errorf("config extra entry %q collides with a model config field", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		pv, err := plainValue(extra[k], "config."+k, 0)
		if err != nil {
			return nil, err
		}
		d.Set(k, pv)
	}
	return d, nil
}

// configFromMap splits a "config" dict into the model config
// (gsrmt.DecodeConfig: defaults, a known preset's values, validation) and the
// rest.
func configFromMap(m map[string]any) (gsrmt.Config, map[string]any, error) {
	model := map[string]any{}
	extra := map[string]any{}
	for k, v := range m {
		if isConfigKey(k) {
			model[k] = v
		} else {
			extra[k] = v
		}
	}
	if len(model) == 0 {
		return gsrmt.Config{}, nil, ErrNoConfig
	}
	j, err := jsonable(model, "config")
	if err != nil {
		return gsrmt.Config{}, nil, err
	}
	b, err := json.Marshal(j)
	if err != nil {
		return gsrmt.Config{}, nil, err
	}
	cfg, err := gsrmt.DecodeConfig(b, false)
	if err != nil {
		return gsrmt.Config{}, nil, err
	}
	if len(extra) == 0 {
		extra = nil
	}
	return cfg, extra, nil
}

func jsonConfig(cfg gsrmt.Config) ([]byte, error) { return json.Marshal(cfg) }

func jsonPlain(v any) ([]byte, error) {
	p, err := plainValue(v, "", 0)
	if err != nil {
		return nil, err
	}
	j, err := jsonable(p, "")
	if err != nil {
		return nil, err
	}
	return json.Marshal(j)
}

// jsonable converts a plain tree (as plainValue or the reader make it) for
// encoding/json; tensors are an error.
func jsonable(v any, path string) (any, error) {
	switch v := v.(type) {
	case *Tensor:
		return nil, fmt.Errorf("%s: a tensor cannot be stored as JSON", pathName(path))
	case *big.Int:
		return json.Number(v.String()), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s: %v cannot be stored as JSON", pathName(path), v)
		}
		return v, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			w, err := jsonable(e, joinPath(path, k))
			if err != nil {
				return nil, err
			}
			out[k] = w
		}
		return out, nil
	case *Dict:
		m, err := plainDict(v, path)
		if err != nil {
			return nil, err
		}
		return jsonable(m, path)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			w, err := jsonable(e, joinPath(path, i))
			if err != nil {
				return nil, err
			}
			out[i] = w
		}
		return out, nil
	case Tuple:
		return jsonable([]any(v), path)
	}
	return v, nil
}

// plainDict converts a loaded dict (or nil) into map[string]any, nested
// dicts with string keys included; a dict with other keys stays a *Dict.
func plainDict(v any, path string) (map[string]any, error) {
	if v == nil {
		return nil, nil
	}
	switch d := v.(type) {
	case map[string]any:
		return d, nil
	case *Dict:
		out := make(map[string]any, d.Len())
		for _, e := range d.Entries() {
			k, ok := e.Key.(string)
			if !ok {
				return nil, fmt.Errorf("%s: key %v is a %T, not a string", pathName(path), e.Key, e.Key)
			}
			out[k] = fromLoaded(e.Value)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s is a %T, not a dict", pathName(path), v)
}

func fromLoaded(v any) any {
	switch v := v.(type) {
	case *Dict:
		if m, err := plainDict(v, ""); err == nil {
			return m
		}
		return v
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = fromLoaded(e)
		}
		return out
	case Tuple:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = fromLoaded(e)
		}
		return out
	}
	return v
}

// plainMap converts a caller's map for saving; nil becomes an empty dict.
func plainMap(m map[string]any, path string) (any, error) {
	if m == nil {
		return NewDict(), nil
	}
	return plainValue(m, path, 0)
}

// plainValue converts a caller's value into the values Save accepts (dicts,
// lists, strings, numbers, booleans, None, tensors): any integer type
// becomes int64 (*big.Int beyond int64), float32 float64, []byte a uint8
// tensor, a libtorch tensor a checkpoint tensor, maps with string keys and
// slices of any element type dicts and lists.
func plainValue(v any, path string, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%s: nested more than %d deep", pathName(path), maxDepth)
	}
	switch x := v.(type) {
	case nil, string, bool, int64, float64, *Tensor, *Dict:
		return v, nil
	case *big.Int:
		return v, nil
	case float32:
		return float64(x), nil
	case []byte:
		t, err := NewTensor(Uint8, []int64{int64(len(x))}, append([]byte(nil), x...))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pathName(path), err)
		}
		return t, nil
	case *ts.Tensor:
		t, err := FromTorchTensor(x)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pathName(path), err)
		}
		return t, nil
	case Tuple:
		out := make(Tuple, len(x))
		for i, e := range x {
			w, err := plainValue(e, joinPath(path, i), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = w
		}
		return out, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return new(big.Int).SetUint64(u), nil
		}
		return int64(u), nil
	case reflect.Float32, reflect.Float64:
		return rv.Float(), nil
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.String:
		return rv.String(), nil
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil, nil
		}
		return plainValue(rv.Elem().Interface(), path, depth+1)
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return []any{}, nil
		}
		out := make([]any, rv.Len())
		for i := range out {
			w, err := plainValue(rv.Index(i).Interface(), joinPath(path, i), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = w
		}
		return out, nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("%s: map keys must be strings, not %v", pathName(path), rv.Type().Key())
		}
		keys := make([]string, 0, rv.Len())
		for _, k := range rv.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		d := NewDict()
		for _, k := range keys {
			w, err := plainValue(rv.MapIndex(reflect.ValueOf(k).Convert(rv.Type().Key())).Interface(), joinPath(path, k), depth+1)
			if err != nil {
				return nil, err
			}
			d.Set(k, w)
		}
		return d, nil
	}
	return nil, fmt.Errorf("%s: cannot save a value of type %T", pathName(path), v)
}
