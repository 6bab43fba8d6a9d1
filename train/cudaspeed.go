package train

import (
	"fmt"

	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
)

// CUDASpeed are the two speed settings of CUDA float32 math that timm's
// train.py turns on for CUDA runs (docs/MEMORY-AND-PRECISION.md): they
// change how fast a step runs, not what a run is, so a resumed run may
// change them. On the CPU they have no effect.
type CUDASpeed struct {
	// TF32 lets float32 matmuls (cuBLAS) and convolutions (cuDNN) use TF32
	// tensor cores (torch.backends.cuda.matmul.allow_tf32 and
	// torch.backends.cudnn.allow_tf32).
	TF32 bool `json:"tf32"`
	// CuDNNBenchmark turns on cuDNN's autotuner
	// (torch.backends.cudnn.benchmark).
	CuDNNBenchmark bool `json:"cudnn_benchmark"`
}

// Apply sets the settings in libtorch (process-wide) when dev is a CUDA
// device; on the CPU it sets nothing.
func (s CUDASpeed) Apply(dev gotch.Device) error {
	if !dev.IsCuda() {
		return nil
	}
	if err := torch.SetTF32(s.TF32); err != nil {
		return err
	}
	return torch.SetCuDNNBenchmark(s.CuDNNBenchmark)
}

// On returns s on a CUDA device and the zero CUDASpeed (both off) on the
// CPU, where they do not apply: what a run records and reports.
func (s CUDASpeed) On(dev gotch.Device) CUDASpeed {
	if !dev.IsCuda() {
		return CUDASpeed{}
	}
	return s
}

// note is the run's log line's " (TF32 on, cuDNN benchmark on)" on a CUDA
// device, "" on the CPU.
func (s CUDASpeed) note(dev gotch.Device) string {
	if !dev.IsCuda() {
		return ""
	}
	return " (" + s.String() + ")"
}

// recorded are config.json's tf32 and cudnn_benchmark: the values on a CUDA
// device, nil (absent) on the CPU.
func (s CUDASpeed) recorded(dev gotch.Device) (tf32, cudnnBenchmark *bool) {
	if !dev.IsCuda() {
		return nil, nil
	}
	return &s.TF32, &s.CuDNNBenchmark
}

// String is "TF32 on, cuDNN benchmark off".
func (s CUDASpeed) String() string {
	return fmt.Sprintf("TF32 %s, cuDNN benchmark %s", onOff(s.TF32), onOff(s.CuDNNBenchmark))
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
