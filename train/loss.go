package train

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// SoftTargetCrossEntropy is mean over the batch of -sum_k t_k log softmax(z)_k
// for logits z (B, K) and soft targets t (B, K): the loss of Mixup/CutMix and
// label smoothing (timm's SoftTargetCrossEntropy).
func SoftTargetCrossEntropy(logits, targets *ts.Tensor) (loss *ts.Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("soft-target cross-entropy: %v", r)
		}
	}()
	logp := logits.MustLogSoftmax(-1, gotch.Float, false)
	prod := logp.MustMul(targets, true)
	perSample := prod.MustSumDimIntlist([]int64{-1}, false, gotch.Float, true)
	mean := perSample.MustMean(gotch.Float, true)
	return mean.MustNeg(true), nil
}

// SmoothedTargets returns one-hot rows for labels smoothed by eps: each row
// holds eps/K everywhere and 1 - eps + eps/K at its label (B x K floats).
func SmoothedTargets(labels []int64, k int, eps float64) []float32 {
	off := float32(eps / float64(k))
	on := float32(1-eps) + off
	t := make([]float32, len(labels)*k)
	for i, l := range labels {
		row := t[i*k : (i+1)*k]
		for j := range row {
			row[j] = off
		}
		row[l] = on
	}
	return t
}

// CrossEntropy is the mean cross-entropy of logits (B, K) against int64 labels (B).
func CrossEntropy(logits, labels *ts.Tensor) (loss *ts.Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cross-entropy: %v", r)
		}
	}()
	logp := logits.MustLogSoftmax(-1, gotch.Float, false)
	return logp.MustNllLoss(labels, ts.None, 1, -100, true), nil
}

// TopK counts, for each k in ks, the samples whose label is among the k
// largest logits (ties broken by index, as torch.topk).
func TopK(logits []float32, labels []int64, classes int, ks ...int) []int {
	hits := make([]int, len(ks))
	for i, l := range labels {
		row := logits[i*classes : (i+1)*classes]
		target := row[l]
		rank := 0 // how many classes beat the label
		for j, v := range row {
			if v > target || (v == target && j < int(l)) {
				rank++
			}
		}
		for n, k := range ks {
			if rank < k {
				hits[n]++
			}
		}
	}
	return hits
}
