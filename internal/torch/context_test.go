package torch

import "testing"

// The switches are plain fields of libtorch's global context: on the CPU
// build they are set and read back like on a CUDA one.
func TestTF32AndCuDNNBenchmarkReadBack(t *testing.T) {
	matmul0, _, err := TF32()
	if err != nil {
		t.Fatal(err)
	}
	bench0, err := CuDNNBenchmark()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// SetTF32 sets both; matmul's is the one that matters to other
		// tests (none runs cuDNN on the CPU).
		_ = SetTF32(matmul0)
		_ = SetCuDNNBenchmark(bench0)
	})
	for _, on := range []bool{true, false, true} {
		if err := SetTF32(on); err != nil {
			t.Fatal(err)
		}
		matmul, cudnn, err := TF32()
		if err != nil {
			t.Fatal(err)
		}
		if matmul != on || cudnn != on {
			t.Errorf("SetTF32(%v): TF32() = matmul %v, cuDNN %v", on, matmul, cudnn)
		}
		if err := SetCuDNNBenchmark(on); err != nil {
			t.Fatal(err)
		}
		if got, err := CuDNNBenchmark(); err != nil || got != on {
			t.Errorf("SetCuDNNBenchmark(%v): CuDNNBenchmark() = %v, %v", on, got, err)
		}
	}
}
