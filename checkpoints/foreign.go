package checkpoints

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gsrmt/gsrmt/checkpoints/torchfmt"
)

// Choosing the weights in a checkpoint that other people's training
// scripts wrote: a dict whose state_dict sits under one key, next to the
// optimizer, the schedule, metrics and the script's arguments (an
// argparse.Namespace for timm's train.py and DeiT/RMT's main.py, a yacs
// CfgNode for Swin's), which the reader gives as inert records.

// DefaultStateKeys are the entries that hold the weights when no key is
// named, in the order timm's load_state_dict tries them ("state_dict",
// then "model"), then "model_state_dict". EMA weights ("state_dict_ema" of
// timm, "model_ema" of DeiT/RMT, "ema" of gsrmt) are used only when named.
var DefaultStateKeys = []string{"state_dict", "model", "model_state_dict"}

// ErrNoKey is wrapped by the error for a key the file does not have; the
// message lists the keys it has.
var ErrNoKey = errors.New("no such entry")

// Record is an object of a class that is not plain data (an
// argparse.Namespace, a yacs CfgNode, ...), read as an inert record.
type Record = torchfmt.Object

// selectState returns the state_dict of a loaded dict checkpoint: the
// entry named key, or without one the first of DefaultStateKeys that holds
// a dict, or else the dict itself when it is a bare state_dict (every
// value a tensor). used is the key taken ("" for a bare state_dict).
func selectState(top *Dict, key string) (state *Dict, used string, err error) {
	if key != "" {
		v, ok := top.Get(key)
		if !ok {
			return nil, "", fmt.Errorf("checkpoints: %w %q: the file's entries are %s", ErrNoKey, key, entryList(top))
		}
		d, ok := v.(*Dict)
		if !ok {
			return nil, "", fmt.Errorf("checkpoints: entry %q is %s, not a state_dict (the file's entries are %s)", key, describeValue(v), entryList(top))
		}
		return d, key, nil
	}
	for _, k := range DefaultStateKeys {
		if d, ok := dictEntry(top, k); ok {
			return d, k, nil
		}
	}
	if top.Len() == 0 {
		return nil, "", errors.New("checkpoints: checkpoint is an empty dict")
	}
	for _, e := range top.Entries() {
		if _, ok := e.Value.(*Tensor); !ok {
			return nil, "", fmt.Errorf("checkpoints: no state_dict: no %s entry, and entry %v is %s, not a tensor; name the entry that holds the weights among %s",
				quoteAll(DefaultStateKeys), e.Key, describeValue(e.Value), entryList(top))
		}
	}
	return top, "", nil
}

func dictEntry(top *Dict, key string) (*Dict, bool) {
	v, ok := top.Get(key)
	if !ok {
		return nil, false
	}
	d, ok := v.(*Dict)
	return d, ok
}

// entryList names a dict's keys for an error message, each with what it
// holds: "state_dict (dict of 12), args (argparse.Namespace record), epoch".
func entryList(top *Dict) string {
	parts := make([]string, 0, top.Len())
	for _, e := range top.Entries() {
		parts = append(parts, describeEntry(e))
	}
	return strings.Join(parts, ", ")
}

// describeEntry is one entry of a checkpoint's top-level dict: its key,
// with what it holds for a dict or a record.
func describeEntry(e DictEntry) string {
	switch v := e.Value.(type) {
	case *Dict:
		return fmt.Sprintf("%v (dict of %d)", e.Key, v.Len())
	case *Record:
		return fmt.Sprintf("%v (%s record)", e.Key, v.Class)
	}
	return fmt.Sprint(e.Key)
}

// describeValue says what a value is, for an error message.
func describeValue(v any) string {
	switch v := v.(type) {
	case *Record:
		return "a " + v.Class.String() + " record"
	case nil:
		return "None"
	case *Tensor:
		return "a tensor"
	}
	return fmt.Sprintf("a %T", v)
}

// ignoredEntries lists the entries of a dict checkpoint other than the
// ones used (the weights', and "config" when it was a gsrmt config), in
// file order, each described by describeEntry.
func ignoredEntries(top *Dict, used ...string) []string {
	var out []string
	for _, e := range top.Entries() {
		if k, ok := e.Key.(string); !ok || !slices.Contains(used, k) {
			out = append(out, describeEntry(e))
		}
	}
	return out
}
