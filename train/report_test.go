package train

import (
	"slices"
	"strings"
	"testing"
)

// Every recorded option (a flag) is a key of config.json, under its flag
// name with underscores, so that train --config FILE reproduces a run.
func TestConfigJSONRecordsEveryOption(t *testing.T) {
	keys := ConfigKeys()
	for _, name := range optionNames() {
		if key := strings.ReplaceAll(name, "-", "_"); !slices.Contains(keys, key) {
			t.Errorf("option %q is recorded in checkpoints but config.json has no key %q (add a field to runConfig)", name, key)
		}
	}
}
