package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"

	"github.com/gsrmt/gsrmt/datasets"
	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/dist"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// EvalResult is a model's performance on a data split.
type EvalResult struct {
	Loss   float64 `json:"loss"` // mean cross-entropy
	Top1   float64 `json:"top1"` // percent
	Top5   float64 `json:"top5"` // percent
	Images int     `json:"images"`
	// NonFinite counts the images whose logits hold a NaN or an infinity:
	// they count as wrong in Top1 and Top5, and make Loss NaN or infinite.
	NonFinite int `json:"non_finite_logits"`
	// Confusion[true][predicted] counts, filled when asked for.
	Confusion [][]int64 `json:"-"`
}

// PerClass returns each class's top-1 accuracy (percent) from the confusion matrix.
func (e EvalResult) PerClass() []float64 {
	out := make([]float64, len(e.Confusion))
	for i, row := range e.Confusion {
		var n int64
		for _, c := range row {
			n += c
		}
		if n > 0 {
			out[i] = 100 * float64(row[i]) / float64(n)
		}
	}
	return out
}

// EvalOptions says how Evaluate runs. The zero value evaluates on the CPU
// without a confusion matrix; Classes 0 means the model's class count.
type EvalOptions struct {
	Device    gotch.Device
	Classes   int  // logits per image (default: m.Config.NumClasses)
	Confusion bool // also count the confusion matrix
	// Progress, when set, is called after each batch with the images done.
	Progress func(done int)
	// Group, when set, means l holds this rank's shard of the split: the
	// sums are added over the ranks, so that every rank returns the result
	// of the whole split.
	Group *dist.Group
}

// Evaluate runs m in eval mode without gradients over every batch of l
// (epoch 0, in order).
func Evaluate(m *gsrmt.Model, l *datasets.Loader, o EvalOptions) (res EvalResult, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	restoreThreads()
	classes, dev := o.Classes, o.Device
	if classes == 0 {
		classes = m.Config.NumClasses
	}
	if o.Confusion {
		res.Confusion = make([][]int64, classes)
		for i := range res.Confusion {
			res.Confusion[i] = make([]int64, classes)
		}
	}
	it := l.Epoch(context.Background(), 0)
	defer it.Close()
	var lossSum float64
	var top1, top5 int
	k5 := min(5, classes)
	for {
		b, err := it.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("evaluate: %w", err)
		}
		logits, loss, err := evalBatch(m, b, dev)
		if err != nil {
			b.Release()
			return res, fmt.Errorf("evaluate batch %d: %w", b.Index+1, err)
		}
		hits := TopK(logits, b.Labels, classes, 1, k5)
		top1 += hits[0]
		top5 += hits[1]
		res.NonFinite += countNonFinite(logits, classes)
		lossSum += loss * float64(b.N)
		if res.Confusion != nil {
			for i, lab := range b.Labels {
				res.Confusion[lab][Argmax(logits[i*classes:(i+1)*classes])]++
			}
		}
		res.Images += b.N
		b.Release()
		if o.Progress != nil {
			o.Progress(res.Images)
		}
	}
	if o.Group != nil {
		if err := reduceEval(o.Group, &res, &lossSum, &top1, &top5); err != nil {
			return res, fmt.Errorf("evaluate: %w", err)
		}
	}
	if res.Images == 0 {
		return res, fmt.Errorf("evaluate: the split has no images")
	}
	res.Loss = lossSum / float64(res.Images)
	res.Top1 = 100 * float64(top1) / float64(res.Images)
	res.Top5 = 100 * float64(top5) / float64(res.Images)
	return res, nil
}

// reduceEval adds an evaluation's sums (and confusion matrix) over the ranks.
func reduceEval(g *dist.Group, res *EvalResult, lossSum *float64, top1, top5 *int) error {
	vals := []float64{*lossSum, float64(*top1), float64(*top5), float64(res.Images), float64(res.NonFinite)}
	for _, row := range res.Confusion {
		for _, c := range row {
			vals = append(vals, float64(c))
		}
	}
	sums, err := g.AllReduceFloat64(vals)
	if err != nil {
		return err
	}
	*lossSum, *top1, *top5, res.Images, res.NonFinite = sums[0], int(sums[1]), int(sums[2]), int(sums[3]), int(sums[4])
	k := 5
	for _, row := range res.Confusion {
		for j := range row {
			row[j] = int64(sums[k])
			k++
		}
	}
	return nil
}

// evalBatch runs one batch forward without gradients and returns its
// logits (float32, on the CPU) and mean cross-entropy.
func evalBatch(m *gsrmt.Model, b *datasets.Batch, dev gotch.Device) (logits []float32, loss float64, err error) {
	torch.NoGrad(func() {
		x, e := batchTensor(b, dev)
		if e != nil {
			err = e
			return
		}
		defer x.MustDrop()
		out, e := m.Forward(x, false)
		if e != nil {
			err = e
			return
		}
		out32 := out.MustTotype(gotch.Float, true).MustTo(gotch.CPU, true)
		defer out32.MustDrop()
		labels := ts.MustOfSlice(b.Labels)
		defer labels.MustDrop()
		l, e := CrossEntropy(out32, labels)
		if e != nil {
			err = e
			return
		}
		loss = float64(l.Vals().([]float32)[0])
		l.MustDrop()
		logits = out32.Vals().([]float32)
	})
	return logits, loss, err
}

// Finite reports whether the evaluation saw only finite logits and loss:
// otherwise its numbers describe a broken model, not its accuracy.
func (e EvalResult) Finite() bool {
	return e.NonFinite == 0 && !math.IsNaN(e.Loss) && !math.IsInf(e.Loss, 0)
}
