package train

import (
	"fmt"
	"hash/fnv"
	"math"

	"github.com/gsrmt/gsrmt/datasets"
	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/dist"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// replica is a run's place in a data-parallel group (DISTRIBUTED.md in
// docs/): every rank holds the same model, trains on its shard of each
// epoch with batch Batch/world, and averages gradients before the
// optimizer, so that the ranks stay identical; rank 0 alone writes the run
// folder. The zero value, with no group, is a process training alone.
type replica struct {
	g *dist.Group
	// syncBN: the model's BatchNorm layers reduce their statistics over the
	// group (Options.SyncBN), so the ranks' running statistics agree.
	syncBN bool
}

// useSyncBN makes the model's BatchNorm layers compute their training
// statistics over the group (torch.nn.SyncBatchNorm) when on and there is a
// group; in a single process it does nothing.
func (p *replica) useSyncBN(m *gsrmt.Model, on bool) {
	if p.g == nil || !on {
		return
	}
	p.syncBN = true
	m.SetTrainBatchNorm(p.g.SyncBatchNorm)
}

func (p replica) rank() int {
	if p.g == nil {
		return 0
	}
	return p.g.Rank()
}

func (p replica) world() int {
	if p.g == nil {
		return 1
	}
	return p.g.Size()
}

// writer reports whether this process writes the run folder and logs.
func (p replica) writer() bool { return p.rank() == 0 }

// shard is this rank's share of each epoch: padded for training (the same
// step count on every rank), exact for evaluation (no sample twice).
func (p replica) shard(pad bool) datasets.Shard {
	return datasets.Shard{Rank: p.rank(), Count: p.world(), Pad: pad}
}

// stateTensors returns the model's float state (parameters and BatchNorm
// statistics) in state_dict order, without the num_batches_tracked
// counters, which every rank advances alike.
func stateTensors(m *gsrmt.Model, trainableOnly bool) (names []string, tensors []*ts.Tensor) {
	for _, q := range m.Params() {
		if q.Counter {
			continue
		}
		if trainableOnly && !q.Trainable {
			continue
		}
		names = append(names, q.Name)
		tensors = append(tensors, q.Tensor)
	}
	return names, tensors
}

// join checks that every rank built the same model (names and shapes in
// the same order) and gives every rank rank 0's weights and statistics.
func (p replica) join(m *gsrmt.Model) error {
	if p.g == nil {
		return nil
	}
	names, tensors := stateTensors(m, false)
	shapes := make([][]int64, len(tensors))
	for i, t := range tensors {
		shapes[i] = t.MustSize()
	}
	if err := p.g.VerifySameShapes(names, shapes); err != nil {
		return fmt.Errorf("the ranks built different models: %w", err)
	}
	if err := p.g.Broadcast(tensors, 0); err != nil {
		return fmt.Errorf("broadcast rank 0's weights: %w", err)
	}
	return nil
}

// syncBuffers gives every rank rank 0's BatchNorm statistics, as DDP's
// broadcast_buffers does before each forward: with per-rank batch
// statistics the running statistics would otherwise drift apart.
func (p replica) syncBuffers(m *gsrmt.Model) error {
	if p.g == nil {
		return nil
	}
	return p.broadcastBuffers(m)
}

// stepBuffers is syncBuffers before a step: skipped with synchronized
// BatchNorm, whose running statistics are computed alike on every rank
// (DDP broadcasts them anyway; it is harmless and costs a collective per
// step). The broadcasts before evaluation and saving stay.
func (p replica) stepBuffers(m *gsrmt.Model) error {
	if p.g == nil || p.syncBN {
		return nil
	}
	return p.broadcastBuffers(m)
}

// broadcastBuffers copies rank 0's BatchNorm statistics to every rank.
func (p replica) broadcastBuffers(m *gsrmt.Model) error {
	var bufs []*ts.Tensor
	for _, q := range m.Params() {
		if !q.Trainable && !q.Counter {
			bufs = append(bufs, q.Tensor)
		}
	}
	if len(bufs) == 0 {
		return nil
	}
	return p.g.Broadcast(bufs, 0)
}

// averageGrads replaces each trainable parameter's gradient by its mean
// over the ranks (flattened into buckets by the group).
func (p replica) averageGrads(m *gsrmt.Model) error {
	if p.g == nil {
		return nil
	}
	var grads []*ts.Tensor
	defer func() {
		for _, g := range grads {
			g.MustDrop()
		}
	}()
	for _, q := range m.Trainable() {
		g := q.Tensor.MustGrad(false)
		if !g.MustDefined() {
			g.MustDrop()
			return fmt.Errorf("average gradients: %s has no gradient (every rank must use every parameter)", q.Name)
		}
		grads = append(grads, g)
	}
	return p.g.AllReduceMean(grads)
}

// checkSame verifies that every rank holds the same weights (and, unless
// weightsOnly, BatchNorm statistics): each rank hashes their bytes, and the
// sum of the hashes over the ranks must be world times its own (exact:
// hashes are below 2^32).
func (p replica) checkSame(m *gsrmt.Model, when string, weightsOnly bool) error {
	if p.g == nil {
		return nil
	}
	_, tensors := stateTensors(m, weightsOnly)
	h := fnv.New32a()
	for _, t := range tensors {
		cpu := t.MustTo(gotch.CPU, false)
		vals := cpu.MustContiguous(true)
		n := vals.Numel()
		buf := make([]float32, n)
		vals.MustCopyData(buf, n)
		vals.MustDrop()
		for _, v := range buf {
			b := math.Float32bits(v)
			h.Write([]byte{byte(b), byte(b >> 8), byte(b >> 16), byte(b >> 24)})
		}
	}
	mine := float64(h.Sum32())
	sums, err := p.g.AllReduceFloat64([]float64{mine})
	if err != nil {
		return err
	}
	if sums[0] != mine*float64(p.world()) {
		return fmt.Errorf("%s the ranks hold different weights (rank %d's state hashes to %08x): data parallelism is broken; report this with the command line",
			when, p.rank(), uint32(mine))
	}
	return nil
}

// sum adds vals over the ranks (float64, exact for counts below 2^53).
func (p replica) sum(vals ...float64) ([]float64, error) {
	if p.g == nil {
		return vals, nil
	}
	return p.g.AllReduceFloat64(vals)
}

// stepStatus is what every rank learns about a step from all of them: the
// summed loss and counts for the log, whether a loss was not finite, and
// whether a rank was asked to stop (Ctrl-C), so that every rank takes the
// same decision at the same step.
type stepStatus struct {
	lossSum    float64 // sum over the ranks' samples of the loss
	hits, seen int64
	nonFinite  bool
	stop       bool
	// skippedSteps is 1 when the loss scaler skipped the step.
	skippedSteps int64
}

// agree sums a rank's step results over the group.
func (p replica) agree(loss float64, hits, n int, stop bool) (stepStatus, error) {
	bad, halt := 0.0, 0.0
	lossSum := loss * float64(n)
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		bad, lossSum = 1, 0
	}
	if stop {
		halt = 1
	}
	v, err := p.sum(lossSum, float64(hits), float64(n), bad, halt)
	if err != nil {
		return stepStatus{}, err
	}
	s := stepStatus{lossSum: v[0], hits: int64(v[1]), seen: int64(v[2]), nonFinite: v[3] > 0, stop: v[4] > 0}
	if s.nonFinite {
		s.lossSum = math.NaN()
	}
	return s, nil
}
