package train

import (
	"math"

	"github.com/gsrmt/gsrmt/checkpoints"
)

// Schedule is a linear warmup followed by a cosine decay to MinLR, updated
// every step (closed form, no state): for update k = 0, 1, ...
//
//	k < W:  lr = BaseLR * (k+1) / W
//	k >= W: lr = MinLR + (BaseLR - MinLR) * (1 + cos(pi * (k-W) / (T-W))) / 2
//
// with W = WarmupSteps and T = TotalSteps; past T the rate stays at MinLR.
type Schedule struct {
	BaseLR, MinLR           float64
	WarmupSteps, TotalSteps int64
}

// LR returns the learning rate of update k (0-based).
func (s Schedule) LR(k int64) float64 {
	if k < s.WarmupSteps {
		return s.BaseLR * float64(k+1) / float64(s.WarmupSteps)
	}
	span := s.TotalSteps - s.WarmupSteps
	if span <= 0 {
		return s.BaseLR
	}
	p := float64(k-s.WarmupSteps) / float64(span)
	if p > 1 {
		p = 1
	}
	return s.MinLR + (s.BaseLR-s.MinLR)*(1+math.Cos(math.Pi*p))/2
}

// State returns the schedule's section of a checkpoint once step updates
// have been taken. There is no SetState: the schedule is a closed form of
// the run's options, which a resumed run rebuilds, and only the step (the
// checkpoint's "step") carries over.
func (s Schedule) State(step int64) *checkpoints.SchedulerState {
	return &checkpoints.SchedulerState{Type: "warmup-cosine", BaseLR: s.BaseLR, MinLR: s.MinLR,
		WarmupSteps: s.WarmupSteps, TotalSteps: s.TotalSteps, Step: step}
}
