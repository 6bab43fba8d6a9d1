package torch

import (
	"math"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// maxAbsDiff is max |a - b| over two float32 tensors of one shape.
func maxAbsDiff(t *testing.T, a, b *ts.Tensor) float64 {
	t.Helper()
	av, bv := a.MustContiguous(false).Vals().([]float32), b.MustContiguous(false).Vals().([]float32)
	if len(av) != len(bv) {
		t.Fatalf("sizes %v and %v", a.MustSize(), b.MustSize())
	}
	m := 0.0
	for i := range av {
		m = math.Max(m, math.Abs(float64(av[i])-float64(bv[i])))
	}
	return m
}

// leaf is a random float32 tensor that requires grad.
func leaf(t *testing.T, dims ...int64) *ts.Tensor {
	t.Helper()
	x := ts.MustRandn(dims, gotch.Float, gotch.CPU)
	x.MustRequiresGrad_(true)
	return x
}

// TestBatchMatmulMatchesMatmul compares BatchMatmul with libtorch's matmul,
// value and gradients, bit for bit, on the attention's shapes (contiguous,
// transposed operands, batch dims that do not collapse, libtorch's naive
// kernel below 400 multiply-adds) and the edge cases of BLAS's leading
// dimensions.
func TestBatchMatmulMatchesMatmul(t *testing.T) {
	if err := ManualSeed(7); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		a, b  []int64
		tA    bool // a given as the transpose of its last two dims
		tB    bool
		swapB bool // b as transpose(3, 4) of a 6-D tensor: batch dims that do not collapse
		tOut  bool // the product transposed before backward: a non-contiguous gradient
		narA  bool // a as the first half of its last dim: rows not contiguous
	}{
		{name: "q k^T, window 7, d 16", a: []int64{4, 3, 2, 7, 7, 16}, b: []int64{4, 3, 2, 7, 7, 16}, tB: true},
		{name: "A v, window 7, d 16", a: []int64{4, 3, 2, 7, 7, 7}, b: []int64{4, 3, 2, 7, 7, 16}},
		{name: "global 8 x 8, d 32", a: []int64{64, 1, 2, 8, 8, 32}, b: []int64{64, 1, 2, 8, 8, 32}, tB: true},
		{name: "height pass, strided batch", a: []int64{2, 4, 2, 7, 7, 16}, b: []int64{2, 4, 2, 7, 7, 16}, tB: true, swapB: true},
		{name: "transposed a", a: []int64{8, 16, 5}, b: []int64{8, 16, 9}, tA: true},
		{name: "small (naive in libtorch)", a: []int64{9, 3, 2}, b: []int64{9, 2, 4}},
		{name: "global 14 x 14, d 16", a: []int64{4, 1, 2, 14, 14, 14}, b: []int64{4, 1, 2, 14, 14, 16}},
		{name: "rmt's last stage, 49 tokens", a: []int64{2, 8, 49, 32}, b: []int64{2, 8, 49, 32}, tB: true},
		{name: "one column", a: []int64{5, 30, 20}, b: []int64{5, 20, 1}},
		{name: "one row", a: []int64{5, 1, 40}, b: []int64{5, 40, 20}},
		{name: "inner size one", a: []int64{5, 30, 1}, b: []int64{5, 1, 20}},
		{name: "non-contiguous gradient", a: []int64{2, 4, 2, 7, 7, 16}, b: []int64{2, 4, 2, 7, 7, 16}, tB: true, swapB: true, tOut: true},
		{name: "height pass at 8 and 14, strided batch", a: []int64{4, 2, 2, 14, 8, 16}, b: []int64{4, 2, 2, 8, 14, 16}, tB: true, swapB: true, tOut: true},
		{name: "narrowed rows", a: []int64{3, 2, 9, 32}, b: []int64{3, 2, 16, 9}, narA: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a0, b0 := leaf(t, c.a...), leaf(t, c.b...)
			a, b := a0, b0
			if c.swapB {
				b = b.MustTranspose(3, 4, false)
			}
			if c.tA {
				a = a.MustTranspose(-1, -2, false)
			}
			if c.narA {
				a = a.MustNarrow(-1, 0, c.a[len(c.a)-1]/2, false)
			}
			if c.tB {
				b = b.MustTranspose(-1, -2, false)
			}
			want := a.MustMatmul(b, false)
			got, err := BatchMatmul(a, b)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(t, got, want); d != 0 {
				t.Fatalf("values differ by %g", d)
			}
			g := ts.MustRandn(want.MustSize(), gotch.Float, gotch.CPU)
			if c.tOut {
				g = ts.MustRandn(want.MustTranspose(-1, -2, false).MustSize(), gotch.Float, gotch.CPU)
			}
			grads := func(out *ts.Tensor) (*ts.Tensor, *ts.Tensor) {
				ZeroGrad([]*ts.Tensor{a0, b0})
				if c.tOut {
					out = out.MustTranspose(-1, -2, false)
				}
				if err := BackwardWithGrad(out, g); err != nil {
					t.Fatal(err)
				}
				return a0.MustGrad(false).MustContiguous(true).MustMulScalar(ts.FloatScalar(1), true), b0.MustGrad(false).MustMulScalar(ts.FloatScalar(1), true)
			}
			wa, wb := grads(want)
			ga, gb := grads(got)
			if d := maxAbsDiff(t, ga, wa); d != 0 {
				t.Errorf("gradient of a differs by %g", d)
			}
			if d := maxAbsDiff(t, gb, wb); d != 0 {
				t.Errorf("gradient of b differs by %g", d)
			}
		})
	}
}

// TestBatchMatmulTakesTheThreadedPath fails when BatchMatmul would silently
// fall back to torch.matmul in a process whose libtorch calls a separate
// BLAS library (Debian's libtorch with OpenBLAS or Netlib's BLAS): the
// results would stay right, only the speed would go.
func TestBatchMatmulTakesTheThreadedPath(t *testing.T) {
	blas := BLASLibrary()
	if blas == "" {
		t.Skipf("libtorch loads no separate BLAS library here; BatchMatmul: %s", BatchMatmulPath())
	}
	if got := BatchMatmulPath(); got != "threaded BLAS sgemm" {
		t.Fatalf("with %s loaded, BatchMatmul takes %q, want the threaded BLAS calls", blas, got)
	}
}

func TestBatchMatmulRefusesMismatches(t *testing.T) {
	a := ts.MustRandn([]int64{2, 3, 4}, gotch.Float, gotch.CPU)
	for _, b := range []*ts.Tensor{
		ts.MustRandn([]int64{2, 5, 4}, gotch.Float, gotch.CPU), // inner sizes differ
		ts.MustRandn([]int64{3, 4, 4}, gotch.Float, gotch.CPU), // batch differs
	} {
		if _, err := BatchMatmul(a, b); err == nil {
			t.Errorf("%v @ %v %v: no error", a.MustSize(), b.MustSize(), b.DType())
		}
	}
}

// BenchmarkBatchMatmul times BatchMatmul against libtorch's matmul on the
// attention's products (threads: libtorch's default, OMP_NUM_THREADS).
func BenchmarkBatchMatmul(b *testing.B) {
	for _, c := range []struct {
		name string
		a, b []int64
	}{
		{"window 7 q k^T (nano 224 px stage 0)", []int64{8, 64, 2, 7, 7, 16}, []int64{8, 64, 2, 7, 16, 7}},
		{"global 8 (nano 32 px stage 0)", []int64{64, 1, 2, 8, 8, 16}, []int64{64, 1, 2, 8, 16, 8}},
		{"global 56 (rmt 224 px stage 0)", []int64{8, 1, 2, 56, 56, 16}, []int64{8, 1, 2, 56, 16, 56}},
		{"global 28 (rmt 224 px stage 1)", []int64{8, 1, 2, 28, 28, 32}, []int64{8, 1, 2, 28, 32, 28}},
		{"full 49 (rmt 224 px stage 3)", []int64{8, 8, 49, 32}, []int64{8, 8, 32, 49}},
	} {
		x := ts.MustRandn(c.a, gotch.Float, gotch.CPU)
		y := ts.MustRandn(c.b, gotch.Float, gotch.CPU)
		b.Run(c.name+"/matmul", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				x.MustMatmul(y, false).MustDrop()
			}
		})
		b.Run(c.name+"/BatchMatmul", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				z, err := BatchMatmul(x, y)
				if err != nil {
					b.Fatal(err)
				}
				z.MustDrop()
			}
		})
	}
}
