package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/train"
)

// Every key a run's config.json may hold is either a train flag (which
// --config sets) or one of the keys --config skips by name: a new field
// of config.json must be put on one side or the other.
func TestConfigKeysAreFlagsOrRecordOnly(t *testing.T) {
	flags := map[string]bool{}
	for _, f := range trainCommand().Flags {
		for _, n := range f.Names() {
			flags[n] = true
		}
	}
	for _, key := range train.ConfigKeys() {
		isFlag := flags[strings.ReplaceAll(key, "_", "-")]
		skipped := key == "model" || slices.Contains(configRecordOnly, key)
		if !isFlag && !skipped {
			t.Errorf("config.json key %q is neither a train flag nor in configRecordOnly: --config would refuse every run's config.json", key)
		}
	}
}
