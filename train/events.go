package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gsrmt/gsrmt/internal/atomicfile"
	"github.com/gsrmt/gsrmt/internal/tfevents"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch/ts"
)

// EventsFile is the run folder's step log: one JSON object (StepEvent) per
// line and optimizer step (docs/LOGS.md).
const EventsFile = "events.jsonl"

// TensorBoardDir is the folder of the run folder that --tensorboard writes
// TensorBoard event files to unless it names another.
const TensorBoardDir = "tensorboard"

// StepEvent is one line of events.jsonl.
type StepEvent struct {
	Step  int64   `json:"step"`  // optimizer steps taken, this one included
	Epoch int     `json:"epoch"` // 1-based
	Batch int     `json:"batch"` // 1-based position of the step's batch in its epoch
	Time  float64 `json:"time"`  // Unix seconds at the end of the step
	// Loss is the mean training loss of the step's (global) batch.
	Loss number  `json:"loss"`
	LR   float64 `json:"lr"`
	// GradNorm is the global L2 norm of the gradients before clipping.
	GradNorm number `json:"grad_norm"`
	// ImagesPerS is the step's (global) batch over the step's wall time.
	ImagesPerS float64 `json:"images_per_s"`
	// RSSMB is the process's resident memory (VmRSS), in MiB.
	RSSMB float64 `json:"rss_mb"`
	// CUDAUsedMB is, on CUDA, the device memory in use (as nvidia-smi shows
	// it: every process's, the CUDA context and PyTorch's cache included).
	CUDAUsedMB float64 `json:"cuda_used_mb,omitempty"`
}

// number is a float64 that JSON writes as null when it is NaN or infinite.
type number float64

// MarshalJSON writes the number, or null for NaN and infinities.
func (n number) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, float64(n), 'g', -1, 64), nil
}

// stepLog writes a run's step-level logs (rank 0): events.jsonl, and the
// TensorBoard event file when o.TensorBoard names a folder.
type stepLog struct {
	jsonl *os.File
	tb    *tfevents.Writer
	cuda  int // the CUDA device whose memory is logged; -1 on the CPU

	// norm is the gradient norm of the step being taken, when the log
	// measures it (stepGradNorm): a tensor that may still be computing.
	norm *ts.Tensor
	// pending is the last step added, written when the next one is added
	// (its norm read then) or at flush.
	pending     *StepEvent
	pendingNorm *ts.Tensor
}

// openStepLog opens the step logs of a run that has taken step steps. A new
// run starts events.jsonl afresh; a resumed run keeps the lines of the steps
// up to its checkpoint's and drops those after it (steps that a crashed
// attempt logged and the resumed run repeats), then appends. TensorBoard
// files are never rewritten: a resumed run starts a new one whose first
// event after the file version is a SessionLog START at step+1, which tells
// TensorBoard to discard the older files' events from that step on (what
// torch.utils.tensorboard's purge_step writes).
func openStepLog(o *Options, step int64) (*stepLog, error) {
	path := filepath.Join(o.Out, EventsFile)
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if step == 0 {
		flags |= os.O_TRUNC
	} else if err := truncateEvents(path, step); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("step log: %w", err)
	}
	l := &stepLog{jsonl: f, cuda: -1}
	if o.Device.Name == "CUDA" {
		l.cuda = o.Device.Value
	}
	if o.TensorBoard == "" {
		return l, nil
	}
	if l.tb, err = tfevents.Create(o.TensorBoard); err != nil {
		l.close()
		return nil, err
	}
	if step > 0 {
		if err := l.tb.Write(tfevents.Event{WallTime: tfevents.WallTime(time.Now()), Step: step + 1, SessionStatus: tfevents.SessionStart}); err != nil {
			l.close()
			return nil, err
		}
	}
	return l, nil
}

// truncateEvents rewrites events.jsonl (atomically) without the lines of
// steps after step, and without lines that do not parse (the last line of a
// process killed while writing it). A missing file is left missing.
func truncateEvents(path string, step int64) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("step log: %w", err)
	}
	var kept bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e struct {
			Step *int64 `json:"step"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Step != nil && *e.Step <= step {
			kept.Write(sc.Bytes())
			kept.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("step log %s: %w", path, err)
	}
	if kept.Len() == len(data) {
		return nil
	}
	if err := atomicfile.Write(path, func(w io.Writer) error { _, err := w.Write(kept.Bytes()); return err }); err != nil {
		return fmt.Errorf("step log: rewrite %s: %w", path, err)
	}
	return nil
}

// add records a step that just ended, with the memory in use now, and
// writes the step before it. A gradient norm that the log measured (l.norm)
// is read from the device one step later, when the next step's loss has
// been read and the device has certainly finished it: so the log makes no
// step wait for the device.
func (l *stepLog) add(e StepEvent) error {
	err := l.flush()
	e.RSSMB = rssMB("VmRSS")
	if l.cuda >= 0 {
		if used, _, err := torch.CUDAMemory(l.cuda); err == nil {
			e.CUDAUsedMB = float64(used) / (1 << 20)
		}
	}
	l.pending, l.pendingNorm, l.norm = &e, l.norm, nil
	return err
}

// flush writes the pending step, if any.
func (l *stepLog) flush() (err error) {
	if l.pending == nil {
		return nil
	}
	e, norm := *l.pending, l.pendingNorm
	l.pending, l.pendingNorm = nil, nil
	if norm != nil {
		defer norm.MustDrop()
		defer torch.Catch(&err, "step log: gradient norm")
		e.GradNorm = number(scalarValue(norm))
	}
	return l.write(e)
}

// write appends e to events.jsonl and its values to TensorBoard under
// train/ tags.
func (l *stepLog) write(e StepEvent) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("step log: %w", err)
	}
	if _, err := l.jsonl.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("step log: %w", err)
	}
	if l.tb == nil {
		return nil
	}
	scalars := []tfevents.Scalar{{Tag: "train/loss", Value: float32(e.Loss)}, {Tag: "train/lr", Value: float32(e.LR)},
		{Tag: "train/grad_norm", Value: float32(e.GradNorm)}, {Tag: "train/images_per_s", Value: float32(e.ImagesPerS)},
		{Tag: "train/rss_mb", Value: float32(e.RSSMB)}}
	if l.cuda >= 0 {
		scalars = append(scalars, tfevents.Scalar{Tag: "train/cuda_used_mb", Value: float32(e.CUDAUsedMB)})
	}
	return l.tb.Write(tfevents.Event{WallTime: e.Time, Step: e.Step, Scalars: scalars})
}

// epoch writes an epoch's row of metrics.csv to TensorBoard at the step
// that ended the epoch: epoch, train/epoch_loss, train/epoch_top1, and the
// test/ tags of an evaluated epoch (test/ema_top1 with --ema).
func (l *stepLog) epoch(m EpochMetrics, step int64) error {
	if err := l.flush(); err != nil || l.tb == nil {
		return err
	}
	scalars := []tfevents.Scalar{{Tag: "epoch", Value: float32(m.Epoch)},
		{Tag: "train/epoch_loss", Value: float32(m.TrainLoss)}, {Tag: "train/epoch_top1", Value: float32(m.TrainTop1)}}
	for _, s := range []tfevents.Scalar{{Tag: "test/loss", Value: float32(m.TestLoss)}, {Tag: "test/top1", Value: float32(m.TestTop1)},
		{Tag: "test/top5", Value: float32(m.TestTop5)}, {Tag: "test/ema_top1", Value: float32(m.EMATop1)}} {
		if !math.IsNaN(float64(s.Value)) { // not measured this epoch
			scalars = append(scalars, s)
		}
	}
	return l.tb.Write(tfevents.Event{WallTime: tfevents.WallTime(time.Now()), Step: step, Scalars: scalars})
}

// close writes the pending step and closes the files.
func (l *stepLog) close() {
	_ = l.flush()
	if l.norm != nil {
		l.norm.MustDrop()
	}
	if l.tb != nil {
		_ = l.tb.Close()
	}
	_ = l.jsonl.Close()
}

// recordStep logs the step just taken (rank 0).
func (r *run) recordStep(st stepStatus, lr float64, took time.Duration) error {
	if r.log == nil {
		return nil
	}
	return r.log.add(StepEvent{Step: r.step, Epoch: r.pos.Epoch + 1, Batch: r.pos.Batch, Time: tfevents.WallTime(time.Now()),
		Loss: number(st.lossSum / float64(st.seen)), LR: lr, GradNorm: number(r.gradNorm), ImagesPerS: float64(st.seen) / took.Seconds()})
}

// stepGradNorm starts measuring the global gradient norm for the step's
// log when --grad-clip, which measures it anyway, is off. It returns NaN:
// the log reads the value a step later (stepLog.add).
func (r *run) stepGradNorm() (float64, error) {
	if r.log == nil {
		return math.NaN(), nil
	}
	if r.log.norm != nil { // a step that failed after measuring
		r.log.norm.MustDrop()
	}
	var err error
	r.log.norm, err = gradNormTensor(r.model.Trainable())
	return math.NaN(), err
}
