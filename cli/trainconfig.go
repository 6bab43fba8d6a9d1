package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"
)

// configRecordOnly are the fields of a run's config.json that are not train
// flags, or that a new run must not take from an old one (resume: where
// that run continued from); --config skips them by these names.
var configRecordOnly = []string{"classes", "class_names", "norm_mean", "norm_std", "train_images", "test_images", "split_rule",
	"train_augment", "eval_transform", "gray_to_rgb", "world_size", "rank_batch_size", "dist_backend", "steps_per_epoch",
	"warmup_steps", "optimizer", "resume", "resume_changed", "skipped_images", "finetune_report",
	"weights", "val_images", "val_split_rule", "best", "best_test", "skipped_steps", "effective_batch_size", "transform_rule"}

// configCommandLineOnly are the flags a config file may not set: a config
// names no other config, and --nproc's ranks read the same file.
var configCommandLineOnly = []string{"config", "nproc"}

// configModelFlags choose the model; when one is given, on the command line
// or in the file, it wins over the file's "model" object.
var configModelFlags = []string{"variant", "preset", "model-config"}

// applyConfigFile makes the values of --config FILE the defaults of the
// train flags: each key (a flag name, with - or _) sets its flag unless the
// command line gave it. A "model" object (config.json's) becomes the
// --model-config, written to a temporary file that cleanup removes.
func applyConfigFile(c *cli.Context) (cleanup func(), err error) {
	cleanup = func() {}
	path := c.String("config")
	if path == "" {
		return cleanup, nil
	}
	values, err := readConfigFile(path)
	if err != nil {
		return cleanup, usagef("--config %s: %v", path, err)
	}
	known := map[string]bool{}
	for _, f := range c.Command.Flags {
		for _, n := range f.Names() {
			known[n] = true
		}
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		name := strings.ReplaceAll(key, "_", "-")
		switch {
		case key == "model" || slices.Contains(configRecordOnly, key):
			continue
		case !known[name]:
			return cleanup, usagef("--config %s: unknown key %q: not a train flag (see gsrmt-cli train --help)", path, key)
		case slices.Contains(configCommandLineOnly, name):
			return cleanup, usagef("--config %s: key %q: give --%s on the command line", path, key, name)
		case c.IsSet(name):
			continue // the command line wins
		}
		s, err := configValue(values[key])
		if err != nil {
			return cleanup, usagef("--config %s: key %q: %v", path, key, err)
		}
		if err := c.Set(name, s); err != nil {
			return cleanup, usagef("--config %s: key %q: value %q is not a valid --%s: %v", path, key, s, name, err)
		}
	}
	model, ok := values["model"]
	if !ok || slices.ContainsFunc(configModelFlags, c.IsSet) {
		return cleanup, nil
	}
	return configModel(c, path, model)
}

// readConfigFile decodes a JSON (.json) or YAML (.yaml, .yml) object.
func readConfigFile(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var values map[string]any
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber() // keep the text of each number: 1e-05 stays 1e-05, a uint64 seed exact
		err = dec.Decode(&values)
	case ".yaml", ".yml":
		err = yaml.Unmarshal(data, &values)
	default:
		return nil, fmt.Errorf("want a .json, .yaml or .yml file")
	}
	if err != nil {
		return nil, err
	}
	if values == nil {
		return nil, fmt.Errorf("want an object of flag names and values")
	}
	return values, nil
}

// configValue is a config file's value as a flag's text.
func configValue(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	case nil:
		return "", fmt.Errorf("no value")
	case []any:
		return "", fmt.Errorf("want a single value, got a list")
	case map[string]any:
		return "", fmt.Errorf("want a single value, got an object")
	}
	return "", fmt.Errorf("want a single value, got %v", v)
}

// configModel writes the file's "model" object (a full model config, as
// config.json records it) to a temporary file and makes it --model-config.
func configModel(c *cli.Context, path string, model any) (func(), error) {
	if _, ok := model.(map[string]any); !ok {
		return func() {}, usagef("--config %s: key \"model\": want an object (a model config, as config.json records it)", path)
	}
	data, err := json.Marshal(model)
	if err == nil {
		_, err = gsrmt.DecodeConfig(data, true)
	}
	if err != nil {
		return func() {}, usagef("--config %s: key \"model\": %v", path, err)
	}
	f, err := os.CreateTemp("", "gsrmt-config-model-*.json")
	if err != nil {
		return func() {}, fmt.Errorf("--config %s: %w", path, err)
	}
	cleanup := func() { os.Remove(f.Name()) }
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = c.Set("model-config", f.Name())
	}
	if err != nil {
		cleanup()
		return func() {}, fmt.Errorf("--config %s: %w", path, err)
	}
	return cleanup, nil
}
