package checkpoints

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/big"
	"reflect"
	"slices"

	"github.com/gsrmt/gsrmt/gsrmt"
)

// A checkpoint's "config" is one flat dict (one JSON object in safetensors
// metadata): the gsrmt.Config fields under their JSON names, the RunInfo
// fields under theirs, and any other entries (ConfigExtra). This file
// splits and joins the three.

// configKeys are the JSON names of gsrmt.Config's fields, in field order;
// runKeys those of RunInfo's.
var (
	configKeys = structKeys(reflect.TypeOf(gsrmt.Config{}))
	runKeys    = structKeys(reflect.TypeOf(RunInfo{}))
)

// configDict is the "config" entry: cfg's fields under their JSON names,
// with their Go types (ints stay ints, floats floats: mlp_ratios [2.0, ...]),
// then run's and the extra entries, sorted by key.
func configDict(cfg gsrmt.Config, run *RunInfo, extra map[string]any) (*Dict, error) {
	d, err := plainStruct(reflect.ValueOf(cfg), "config", 0)
	if err != nil {
		return nil, err
	}
	rest, err := joinExtra(run, extra)
	if err != nil {
		return nil, err
	}
	for _, k := range slices.Sorted(maps.Keys(rest)) {
		pv, err := plainValue(rest[k], "config."+k, 0)
		if err != nil {
			return nil, err
		}
		d.Set(k, pv) // cannot fail: strings are hashable
	}
	return d, nil
}

// joinExtra merges run's fields into the extra entries, which must use
// neither a model config key nor a RunInfo key.
func joinExtra(run *RunInfo, extra map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(extra)+len(runKeys))
	for k, v := range extra {
		switch {
		case slices.Contains(configKeys, k):
			return nil, fmt.Errorf("config extra entry %q collides with a model config field", k)
		case slices.Contains(runKeys, k):
			return nil, fmt.Errorf("config extra entry %q is a RunInfo field: set it in Run", k)
		}
		out[k] = v
	}
	if run != nil {
		fields, err := plainStruct(reflect.ValueOf(*run), "config", 0)
		if err != nil {
			return nil, err
		}
		for _, e := range fields.Entries() {
			out[e.Key.(string)] = e.Value
		}
	}
	return out, nil
}

// splitExtra takes the RunInfo entries out of the other config entries:
// run is nil when none is present, extra nil when nothing else is.
func splitExtra(m map[string]any) (*RunInfo, map[string]any, error) {
	var run *RunInfo
	runEntries := map[string]any{}
	extra := map[string]any{}
	for k, v := range m {
		if slices.Contains(runKeys, k) {
			runEntries[k] = v
		} else {
			extra[k] = v
		}
	}
	if len(runEntries) > 0 {
		run = &RunInfo{}
		if err := decodePlain(runEntries, reflect.ValueOf(run).Elem(), "config"); err != nil {
			return nil, nil, err
		}
	}
	if len(extra) == 0 {
		extra = nil
	}
	return run, extra, nil
}

// configFromMap splits a "config" dict into the model config
// (gsrmt.DecodeConfig: defaults, a known preset's values, validation), the
// run's description and the rest.
func configFromMap(m map[string]any) (gsrmt.Config, *RunInfo, map[string]any, error) {
	model := map[string]any{}
	rest := map[string]any{}
	for k, v := range m {
		if slices.Contains(configKeys, k) {
			model[k] = v
		} else {
			rest[k] = v
		}
	}
	if len(model) == 0 {
		return gsrmt.Config{}, nil, nil, ErrNoConfig
	}
	j, err := jsonable(model, "config")
	if err != nil {
		return gsrmt.Config{}, nil, nil, err
	}
	b, err := json.Marshal(j)
	if err != nil {
		return gsrmt.Config{}, nil, nil, err
	}
	cfg, err := gsrmt.DecodeConfig(b, false)
	if err != nil {
		return gsrmt.Config{}, nil, nil, err
	}
	run, extra, err := splitExtra(rest)
	if err != nil {
		return gsrmt.Config{}, nil, nil, err
	}
	return cfg, run, extra, nil
}

// configFromMetadata reads the config of a safetensors file: "config" (the
// model config's JSON) and "config_extra" (JSON of the run's description
// and the other entries).
func configFromMetadata(md map[string]string) (gsrmt.Config, *RunInfo, map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(md["config"]), &m); err != nil {
		return gsrmt.Config{}, nil, nil, fmt.Errorf("metadata \"config\": %w", err)
	}
	cfg, run, extra, err := configFromMap(m)
	if err != nil {
		return gsrmt.Config{}, nil, nil, fmt.Errorf("metadata \"config\": %w", err)
	}
	if raw, ok := md["config_extra"]; ok {
		var rest map[string]any
		if err := json.Unmarshal([]byte(raw), &rest); err != nil {
			return gsrmt.Config{}, nil, nil, fmt.Errorf("metadata \"config_extra\": %w", err)
		}
		if run, extra, err = splitExtra(rest); err != nil {
			return gsrmt.Config{}, nil, nil, fmt.Errorf("metadata \"config_extra\": %w", err)
		}
	}
	return cfg, run, extra, nil
}

// jsonPlain is the JSON of a plain value.
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
		return nil, fmt.Errorf("%s: a tensor cannot be stored as JSON", at(path))
	case *big.Int:
		return json.Number(v.String()), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s: %v cannot be stored as JSON", at(path), v)
		}
		return v, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			w, err := jsonable(e, sub(path, k))
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
			w, err := jsonable(e, sub(path, i))
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
