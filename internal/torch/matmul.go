package torch

// #include <stdlib.h>
// #include "shim.h"
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"

	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"
)

// BatchMatmul is torch.matmul(a, b) for a (..., M, K) and b (..., K, N)
// with the same batch dims, values and gradients bit for bit. For float32
// on the CPU (a libtorch without MKL) it multiplies the batch's matrices
// over the intra-op threads: libtorch's bmm makes the same BLAS calls one
// matrix at a time on one thread, which is most of the time of batches of
// many small matrices such as the window attention's. Elsewhere it is
// torch.matmul. The caller owns the result.
func BatchMatmul(a, b *ts.Tensor) (*ts.Tensor, error) {
	var out unsafe.Pointer
	err := cerr(C.gsrmt_batch_matmul(a.Ctensor(), b.Ctensor(), &out))
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	if err != nil {
		return nil, fmt.Errorf("torch: batch matmul: %w", err)
	}
	return ts.New(lib.Ctensor(out)), nil
}

// BatchMatmulPath says how BatchMatmul multiplies float32 on the CPU in
// this process: "threaded BLAS sgemm" (libtorch's bmm calls, from all
// intra-op threads), or "torch.matmul" and why (libtorch's bmm batches
// through MKL itself; no BLAS sgemm in the process).
func BatchMatmulPath() string {
	switch C.gsrmt_batch_matmul_path() {
	case 0:
		return "threaded BLAS sgemm"
	case 1:
		return "torch.matmul (libtorch has MKL)"
	default:
		return "torch.matmul (no BLAS sgemm found in the process)"
	}
}
