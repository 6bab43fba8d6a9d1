package checkpoints

import (
	"path/filepath"
	"reflect"
	"testing"
)

// The loss scaler's section round-trips under GradScaler.state_dict()'s
// names in "amp_scaler"; a file without it reads as nil.
func TestScalerSectionRoundTrip(t *testing.T) {
	st := sectionsFixture(t)
	want := &ScalerState{Scale: 16384, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 2000, GrowthTracker: 17}
	st.Scaler = want
	dir := t.TempDir()
	path, bare := filepath.Join(dir, "amp.pt"), filepath.Join(dir, "bare.pt")
	if err := SaveTraining(path, nil, st); err != nil {
		t.Fatal(err)
	}
	got, err := LoadTraining(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Scaler, want) {
		t.Errorf("scaler %+v, want %+v", got.Scaler, want)
	}
	v, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sv, _ := v.(*Dict).Get("amp_scaler")
	d, ok := sv.(*Dict)
	if !ok {
		t.Fatalf("amp_scaler is a %T", sv)
	}
	for key, val := range map[string]any{"scale": 16384.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": int64(2000), "_growth_tracker": int64(17)} {
		if got, _ := d.Get(key); got != val {
			t.Errorf("amp_scaler[%q] = %v (%T), want %v", key, got, got, val)
		}
	}
	st.Scaler = nil
	if err := SaveTraining(bare, nil, st); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadTraining(bare); err != nil || got.Scaler != nil {
		t.Errorf("without a scaler: %+v, %v", got.Scaler, err)
	}
}
