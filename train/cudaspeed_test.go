package train

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
)

// config.json records the CUDA speed settings a CUDA run used and leaves
// them out on the CPU; a resumed run may change them (they are not part of
// the recorded options).
func TestCUDASpeedRecordedOnCUDAOnly(t *testing.T) {
	s := CUDASpeed{TF32: false, CuDNNBenchmark: true}
	cuda := gotch.CudaBuilder(0)
	var c runConfig
	c.TF32, c.CuDNNBenchmark = s.recorded(cuda)
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"tf32":false`) || !strings.Contains(string(data), `"cudnn_benchmark":true`) {
		t.Errorf("CUDA run's config.json lacks tf32 false / cudnn_benchmark true: %s", data)
	}
	c.TF32, c.CuDNNBenchmark = s.recorded(gotch.CPU)
	if data, _ = json.Marshal(c); strings.Contains(string(data), "tf32") || strings.Contains(string(data), "cudnn_benchmark") {
		t.Errorf("CPU run's config.json records the CUDA speed settings: %s", data)
	}
	if got := s.On(gotch.CPU); got != (CUDASpeed{}) {
		t.Errorf("On(cpu) = %+v, want both off", got)
	}
	if got := s.On(cuda); got != s {
		t.Errorf("On(cuda) = %+v, want %+v", got, s)
	}
	if got, want := s.note(cuda), " (TF32 off, cuDNN benchmark on)"; got != want {
		t.Errorf("log note on CUDA = %q, want %q", got, want)
	}
	if got := s.note(gotch.CPU); got != "" {
		t.Errorf("log note on the CPU = %q, want none", got)
	}
	saved, resumed := Options{CUDASpeed: CUDASpeed{TF32: true, CuDNNBenchmark: true}}, Options{CUDASpeed: s}
	if bad := ResumeConflicts(&saved, &resumed); len(bad) > 0 {
		t.Errorf("changing --tf32 on resume is refused: %v", bad)
	}
}
