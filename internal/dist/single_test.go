package dist

import (
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// TestSingleProcessGroup runs the API in this process as a group of one:
// collectives leave values as they are, and a closed group refuses calls.
func TestSingleProcessGroup(t *testing.T) {
	requireGloo(t)
	g, err := Init(Env{WorldSize: 1, LocalWorldSize: 1}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if g.Rank() != 0 || g.Size() != 1 || g.Backend() != "gloo" || g.Timeout() != DefaultTimeout {
		t.Errorf("rank %d size %d backend %q timeout %v", g.Rank(), g.Size(), g.Backend(), g.Timeout())
	}
	args, check := makeTensors(0, []spec{
		{shape: []int64{3, 4}, dtype: gotch.Float, grad: true},
		{shape: []int64{0}, dtype: gotch.Float},
		{shape: []int64{5, 2}, dtype: gotch.Double, transposed: true},
	})
	defer dropAll(args, check)
	if err := g.AllReduceMean(args); err != nil {
		t.Fatal(err)
	}
	if err := g.Broadcast(args, 0); err != nil {
		t.Fatal(err)
	}
	if err := checkTensors("mean of one", check, func(i, k int) float64 { return float64(i+1) + float64(k%5) }); err != nil {
		t.Fatal(err)
	}
	ints := ts.MustOnes([]int64{3}, gotch.Int64, gotch.CPU)
	defer ints.MustDrop()
	if err := g.AllReduceMean([]*ts.Tensor{ints}); err == nil || !strings.Contains(err.Error(), "use AllReduceSum") {
		t.Errorf("the mean of int64 tensors: %v", err)
	}
	if err := g.Broadcast(args, 1); err == nil {
		t.Error("broadcast from rank 1 of 1 succeeded")
	}
	if got, err := g.AllReduceFloat64([]float64{0.1, 3}); err != nil || got[0] != 0.1 || got[1] != 3 {
		t.Errorf("AllReduceFloat64 = %v, %v", got, err)
	}
	if err := g.VerifySameShapes([]string{"w"}, [][]int64{{3, 4}}); err != nil {
		t.Error(err)
	}
	if err := g.Barrier(); err != nil {
		t.Error(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
	if err := g.Barrier(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("a barrier on a closed group: %v", err)
	}
}

func TestInitRefusesUnknownBackend(t *testing.T) {
	_, err := Init(Env{WorldSize: 1, LocalWorldSize: 1}, Options{Backend: "mpi"})
	if err == nil || !strings.Contains(err.Error(), `backend "mpi" is not in this build`) {
		t.Errorf("Init with mpi: %v", err)
	}
}
