package checkpoints

import (
	"fmt"
	"sort"

	"github.com/gsrmt/gsrmt/checkpoints/torchfmt"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

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

// NewOptimizerState copies moments held as libtorch tensors (names, m, v,
// in parameter order, as train.AdamW.State passes them; nil m and v before
// the first step give empty moments).
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
// for train.AdamW.SetState (which copies them: drop these afterwards).
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
		named, err := torchfmt.NamedTensors(md)
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
