package dist

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// SyncBatchNorm over two ranks with unequal shares of a batch (3 and 4
// images) gives each rank its rows of a single-process BatchNorm over the
// whole batch: outputs, input gradients and running statistics, and weight
// and bias gradients whose sum over the ranks is the single process's
// (in float64 to 1e-10, in float32 to 1e-5, over two steps).
func TestSyncBatchNormTwoRanks(t *testing.T) {
	requireGloo(t)
	t.Parallel()
	for _, p := range runRanks(t, "syncbn", 2, 90*time.Second, "GSRMT_DIST_TIMEOUT_MS=30000") {
		expectOK(t, p)
		for _, line := range strings.Split(p.out.String(), "\n") {
			if strings.HasPrefix(line, "SYNCBN") {
				t.Logf("rank %d: %s", p.rank, line)
			}
		}
	}
}

// A rank that dies between SyncBatchNorm's forward and backward makes the
// other's backward fail; Err then returns the CollectiveError of the
// all-reduce that failed inside autograd.
func TestSyncBatchNormBackwardFailure(t *testing.T) {
	requireGloo(t)
	t.Parallel()
	ps := runRanks(t, "syncbn-dead", 2, 60*time.Second, "GSRMT_DIST_TIMEOUT_MS=20000")
	for _, p := range ps {
		expectOK(t, p)
	}
	if out := ps[0].out.String(); !strings.Contains(out, "ERROR: dist: rank 0 of 2: sync batch norm failed") || !strings.Contains(out, "backward") {
		t.Errorf("rank 0 did not report the failed backward:\n%s", out)
	}
}

// In a group of one, SyncBatchNorm is libtorch's batch_norm; nil weight,
// bias and running statistics are allowed; an argument error, or a batch of
// one value per channel, is an error that leaves the group usable.
func TestSyncBatchNormOneRank(t *testing.T) {
	requireGloo(t)
	g, err := Init(Env{WorldSize: 1, LocalWorldSize: 1}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, dt := range []gotch.DType{gotch.Double, gotch.Float} {
		if err := syncBNCheck(g, dt); err != nil {
			t.Fatal(err)
		}
	}

	// Without weight, bias and running statistics: (x - mean) / sqrt(var + eps).
	xv := []float64{1, 2, 4, 8, 3, 5} // (3, 2)
	x := ts.MustOfSlice(xv).MustView([]int64{3, 2}, true)
	defer x.MustDrop()
	y, err := g.SyncBatchNorm(x, nil, nil, nil, nil, 0.1, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	got := values(y)
	y.MustDrop()
	for c := 0; c < 2; c++ {
		col := []float64{xv[c], xv[2+c], xv[4+c]}
		mean := (col[0] + col[1] + col[2]) / 3
		v := 0.0
		for _, e := range col {
			v += (e - mean) * (e - mean) / 3
		}
		for i, e := range col {
			if want := (e - mean) / math.Sqrt(v+1e-5); math.Abs(got[2*i+c]-want) > 1e-12 {
				t.Errorf("without affine: y[%d][%d] = %v, want %v", i, c, got[2*i+c], want)
			}
		}
	}

	// Bias without weight: the gradient edges are x's and bias's.
	xg := ts.MustOfSlice(xv).MustView([]int64{3, 2}, true).MustSetRequiresGrad(true, true)
	bias := ts.MustOfSlice([]float64{0.5, -1}).MustSetRequiresGrad(true, true)
	defer xg.MustDrop()
	defer bias.MustDrop()
	y, err = g.SyncBatchNorm(xg, nil, bias, nil, nil, 0.1, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	up := ts.MustOfSlice([]float64{1, 0, 2, 1, -1, 3}).MustView([]int64{3, 2}, true)
	defer up.MustDrop()
	loss := y.MustMul(up, true).MustSum(gotch.Double, true)
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
	loss.MustDrop()
	xRef := ts.MustOfSlice(xv).MustView([]int64{3, 2}, true).MustSetRequiresGrad(true, true)
	defer xRef.MustDrop()
	ones, zeros := ts.MustOnes([]int64{2}, gotch.Double, gotch.CPU), ts.MustZeros([]int64{2}, gotch.Double, gotch.CPU)
	rm, rv := ts.MustZeros([]int64{2}, gotch.Double, gotch.CPU), ts.MustOnes([]int64{2}, gotch.Double, gotch.CPU)
	defer dropAll([]*ts.Tensor{ones, zeros, rm, rv})
	ref := ts.MustBatchNorm(xRef, ones, zeros, rm, rv, true, 0.1, 1e-5, false).MustMul(up, true).MustSum(gotch.Double, true)
	ref.MustBackward()
	ref.MustDrop()
	gx, gxRef, gb := xg.MustGrad(false), xRef.MustGrad(false), bias.MustGrad(false)
	defer dropAll([]*ts.Tensor{gx, gxRef, gb})
	a, b := values(gx), values(gxRef)
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-12 {
			t.Errorf("without weight: input gradient %v, want %v", a, b)
			break
		}
	}
	if v := values(gb); v[0] != 1+2-1 || v[1] != 0+1+3 {
		t.Errorf("without weight: bias gradient %v, want [2 4]", v)
	}

	one := ts.MustOnes([]int64{1, 2, 1, 1}, gotch.Float, gotch.CPU)
	defer one.MustDrop()
	if _, err := g.SyncBatchNorm(one, nil, nil, nil, nil, 0.1, 1e-5); err == nil || !strings.Contains(err.Error(), "more than 1 value per channel") {
		t.Errorf("one value per channel: %v", err)
	}
	w := ts.MustOnes([]int64{3}, gotch.Float, gotch.CPU)
	defer w.MustDrop()
	if _, err := g.SyncBatchNorm(x, w, nil, nil, nil, 0.1, 1e-5); err == nil || !strings.Contains(err.Error(), "weight has shape") {
		t.Errorf("a weight of 3 channels for 2: %v", err)
	}
	if _, err := g.SyncBatchNorm(nil, nil, nil, nil, nil, 0.1, 1e-5); err == nil {
		t.Error("a nil input was accepted")
	}
	if err := g.Err(); err != nil {
		t.Fatalf("the group is unusable after argument errors: %v", err)
	}
	if err := g.Barrier(); err != nil {
		t.Fatal(err)
	}
}

// syncBNScenario is a rank of TestSyncBatchNormTwoRanks.
func syncBNScenario(env Env, opts Options) error {
	g, err := Init(env, opts)
	if err != nil {
		return err
	}
	for _, dt := range []gotch.DType{gotch.Double, gotch.Float} {
		if err := syncBNCheck(g, dt); err != nil {
			return err
		}
	}
	// One value per channel over the group (rank 0 holds one image of 1x1,
	// rank 1 none): refused on every rank after the reduction, and the
	// group stays usable.
	n := int64(1 - g.Rank())
	x := ts.MustZeros([]int64{n, 2, 1, 1}, gotch.Float, gotch.CPU)
	defer x.MustDrop()
	if _, err := g.SyncBatchNorm(x, nil, nil, nil, nil, 0.1, 1e-5); err == nil || !strings.Contains(err.Error(), "more than 1 value per channel over the group") {
		return fmt.Errorf("one value per channel over the group: %v", err)
	}
	if err := g.Barrier(); err != nil {
		return err
	}
	return g.Close()
}

// syncBNCheck runs two steps of SyncBatchNorm on this rank's share of a
// batch of 7 images (rows split 3 + 4 over two ranks) and compares them with
// libtorch's batch_norm on the whole batch in this process.
func syncBNCheck(g *Group, dt gotch.DType) error {
	const B, C, H, W = 7, 3, 2, 3
	lo, hi := 0, B
	if g.Size() == 2 {
		lo, hi = []int{0, 3}[g.Rank()], []int{3, B}[g.Rank()]
	}
	tol := 1e-10
	if dt == gotch.Float {
		tol = 1e-5
	}
	rng := rand.New(rand.NewPCG(7, 8)) // the same draws on every rank
	normal := func(n int, scale, shift float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = rng.NormFloat64()*scale + shift
		}
		return v
	}
	mk := func(v []float64, shape []int64, grad bool) *ts.Tensor {
		t := ts.MustOfSlice(v).MustView(shape, true).MustTotype(dt, true)
		if grad {
			t = t.MustSetRequiresGrad(true, true)
		}
		return t
	}
	var keep []*ts.Tensor
	defer func() { dropAll(keep) }()
	hold := func(ts ...*ts.Tensor) { keep = append(keep, ts...) }

	// copyOf is a new tensor holding t's values, outside the graph.
	copyOf := func(t *ts.Tensor) *ts.Tensor {
		zero := ts.FloatScalar(0)
		defer zero.MustDrop()
		return t.MustDetach(false).MustAddScalar(zero, true)
	}
	wv, bv, rmv, rvv := normal(C, 0.5, 1), normal(C, 0.1, 0), normal(C, 0.1, 0), []float64{1, 2, 0.5}
	rm, rv := mk(rmv, []int64{C}, false), mk(rvv, []int64{C}, false)
	rmRef, rvRef := mk(rmv, []int64{C}, false), mk(rvv, []int64{C}, false)
	hold(rm, rv, rmRef, rvRef)
	img := C * H * W
	var worst [6]float64
	for step := 0; step < 2; step++ {
		xs, gs := normal(B*img, 2, 3), normal(B*img, 1, 0)
		x := mk(xs[lo*img:hi*img], []int64{int64(hi - lo), C, H, W}, true)
		up := mk(gs[lo*img:hi*img], []int64{int64(hi - lo), C, H, W}, false)
		w, b := mk(wv, []int64{C}, true), mk(bv, []int64{C}, true)
		hold(x, up, w, b)
		y, err := g.SyncBatchNorm(x, w, b, rm, rv, 0.1, 1e-5)
		if err != nil {
			return err
		}
		hold(y)
		loss := y.MustMul(up, false).MustSum(dt, true)
		hold(loss)
		if err := loss.Backward(); err != nil {
			return fmt.Errorf("backward: %v", err)
		}

		xRef := mk(xs, []int64{B, C, H, W}, true)
		upRef := mk(gs, []int64{B, C, H, W}, false)
		wRef, bRef := mk(wv, []int64{C}, true), mk(bv, []int64{C}, true)
		hold(xRef, upRef, wRef, bRef)
		yRef := ts.MustBatchNorm(xRef, wRef, bRef, rmRef, rvRef, true, 0.1, 1e-5, false)
		lossRef := yRef.MustMul(upRef, false).MustSum(dt, true)
		hold(yRef, lossRef)
		lossRef.MustBackward()

		// The weight and bias gradients are this rank's: their sum over
		// the ranks is the single process's.
		gw, gb := w.MustGrad(false), b.MustGrad(false)
		hold(gw, gb)
		gw, gb = copyOf(gw), copyOf(gb)
		hold(gw, gb)
		if err := g.AllReduceSum([]*ts.Tensor{gw, gb}); err != nil {
			return err
		}
		gx, gxRef := x.MustGrad(false), xRef.MustGrad(false)
		gwRef, gbRef := wRef.MustGrad(false), bRef.MustGrad(false)
		hold(gx, gxRef, gwRef, gbRef)
		for i, c := range []struct {
			what      string
			got, want []float64
		}{
			{"output", values(y), values(yRef)[lo*img : hi*img]},
			{"input gradient", values(gx), values(gxRef)[lo*img : hi*img]},
			{"weight gradient (sum over ranks)", values(gw), values(gwRef)},
			{"bias gradient (sum over ranks)", values(gb), values(gbRef)},
			{"running mean", values(rm), values(rmRef)},
			{"running var", values(rv), values(rvRef)},
		} {
			if len(c.got) != len(c.want) {
				return fmt.Errorf("%v step %d: %s: %d values, want %d", dt, step+1, c.what, len(c.got), len(c.want))
			}
			for k := range c.got {
				d := math.Abs(c.got[k]-c.want[k]) / (1 + math.Abs(c.want[k]))
				worst[i] = max(worst[i], d)
				if !(d <= tol) {
					return fmt.Errorf("%v step %d: %s[%d] = %v, single process %v", dt, step+1, c.what, k, c.got[k], c.want[k])
				}
			}
		}
	}
	fmt.Printf("SYNCBN %v over %d rank(s): largest relative differences: output %.2g, input grad %.2g, weight grad %.2g, bias grad %.2g, running mean %.2g, running var %.2g\n",
		dt, g.Size(), worst[0], worst[1], worst[2], worst[3], worst[4], worst[5])
	return nil
}

// syncBNDeadScenario is a rank of TestSyncBatchNormBackwardFailure: rank 1
// exits after the forward; rank 0's backward fails.
func syncBNDeadScenario(env Env, opts Options) error {
	g, err := Init(env, opts)
	if err != nil {
		return err
	}
	x := ts.MustOnes([]int64{2, 3, 2, 2}, gotch.Float, gotch.CPU)
	x.MustUniform_(-1, 1)
	x = x.MustSetRequiresGrad(true, true)
	defer x.MustDrop()
	y, err := g.SyncBatchNorm(x, nil, nil, nil, nil, 0.1, 1e-5)
	if err != nil {
		return err
	}
	defer y.MustDrop()
	if g.Rank() == 1 {
		return nil // exits without closing the group
	}
	time.Sleep(500 * time.Millisecond)
	loss := y.MustSum(gotch.Float, false)
	defer loss.MustDrop()
	if err := loss.Backward(); err == nil {
		return errors.New("the backward succeeded without rank 1")
	}
	err = g.Err()
	fmt.Printf("ERROR: %v\n", err)
	var ce *CollectiveError
	if !errors.As(err, &ce) || ce.Op != "sync batch norm" {
		return fmt.Errorf("want the CollectiveError of sync batch norm, got %v", err)
	}
	if err := g.Barrier(); err != error(ce) {
		return fmt.Errorf("a barrier after the failure: %v", err)
	}
	return nil
}
