package checkpoints

import (
	"testing"

	"github.com/gsrmt/gsrmt/checkpoints/torchfmt"
)

// with sets string keys to values in d, pairwise, and returns d.
func with(d *Dict, kv ...any) *Dict {
	for i := 0; i+1 < len(kv); i += 2 {
		d.Set(kv[i].(string), kv[i+1]) // cannot fail: strings are hashable
	}
	return d
}

// f32 is a float32 tensor of shape holding values (zeros when none are
// given).
func f32(t testing.TB, shape []int64, values ...float32) *Tensor {
	t.Helper()
	if values == nil {
		n, _ := torchfmt.ShapeNumel(shape)
		values = make([]float32, n)
	}
	x, err := FromFloat32(Float32, shape, values)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestModelState(t *testing.T) {
	sd := with(NewOrderedDict(), "w", f32(t, []int64{1}, 1))
	for _, key := range []string{"model", "state_dict", "model_state_dict"} {
		got, err := ModelState(with(NewDict(), "epoch", int64(1), key, sd))
		if err != nil || got != sd {
			t.Errorf("under %q: %v", key, err)
		}
	}
	if got, err := ModelState(sd); err != nil || got != sd {
		t.Errorf("bare state_dict: %v", err)
	}
	for _, bad := range []any{[]any{}, NewDict(), with(NewDict(), "epoch", int64(1))} {
		if _, err := ModelState(bad); err == nil {
			t.Errorf("ModelState(%v) succeeded", bad)
		}
	}
}
