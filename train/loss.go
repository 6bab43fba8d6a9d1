package train

import (
	"github.com/gsrmt/gsrmt/internal/torch"
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// SoftTargetCrossEntropy is mean over the batch of -sum_k t_k log softmax(z)_k
// for logits z (B, K) and soft targets t (B, K): the loss of Mixup/CutMix and
// label smoothing (timm's SoftTargetCrossEntropy).
func SoftTargetCrossEntropy(logits, targets *ts.Tensor) (loss *ts.Tensor, err error) {
	defer torch.Catch(&err, "soft-target cross-entropy")
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
	defer torch.Catch(&err, "cross-entropy")
	logp := logits.MustLogSoftmax(-1, gotch.Float, false)
	return logp.MustNllLoss(labels, ts.None, 1, -100, true), nil
}

// TopK counts, for each k in ks, the samples whose label is among the k
// largest logits (ties broken by index, as torch.topk). A NaN logit ranks
// above every number, as in torch.topk, so a sample whose own logit is NaN
// is never a hit, and a NaN elsewhere in its row pushes the label down.
func TopK(logits []float32, labels []int64, classes int, ks ...int) []int {
	hits := make([]int, len(ks))
	for i, l := range labels {
		row := logits[i*classes : (i+1)*classes]
		target := row[l]
		if target != target {
			continue // NaN: never a hit
		}
		rank := 0 // how many classes beat the label
		for j, v := range row {
			if v != v || v > target || (v == target && j < int(l)) {
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

// Argmax returns the index of the largest value of row, NaN counting as the
// largest (torch.argmax); the first one wins ties.
func Argmax(row []float32) int {
	best := 0
	for j, v := range row {
		if v != v {
			return j
		}
		if v > row[best] {
			best = j
		}
	}
	return best
}

// countNonFinite counts the rows of logits (N rows of classes) that hold a
// NaN or an infinity.
func countNonFinite(logits []float32, classes int) int {
	n := 0
	for i := 0; i+classes <= len(logits); i += classes {
		for _, v := range logits[i : i+classes] {
			if v != v || v > math.MaxFloat32 || v < -math.MaxFloat32 {
				n++
				break
			}
		}
	}
	return n
}
