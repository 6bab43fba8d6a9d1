package train

import (
	"fmt"
	"time"

	"github.com/gsrmt/gsrmt/internal/cpushare"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
)

// coreShareEvery is how often a CPU run looks at what other processes use
// of its CPUs (two small /proc reads).
const coreShareEvery = 2 * time.Second

// coreShare sizes libtorch's threads on the CPU to the cores other
// processes leave free (cpushare.Threads), between 1 and the threads the
// run was given. libgomp's waiting threads spin, so two jobs of 2 threads
// on 2 cores ran at 16 % of their solo speed each (docs/PERFORMANCE.md);
// with a thread each they keep about half of it, and a job alone keeps
// all of its threads.
type coreShare struct {
	meter *cpushare.Meter
	limit int       // the threads the run was given
	now   int       // the threads in use
	next  time.Time // when to look again
}

// newCoreShare returns the run's coreShare, or nil where it does not apply:
// a CUDA run, --fixed-threads, or no /proc accounting.
func newCoreShare(o *Options) *coreShare {
	if o.Device != gotch.CPU || o.FixedThreads {
		return nil
	}
	m, err := cpushare.New()
	if err != nil {
		return nil
	}
	n := torch.NumThreads()
	return &coreShare{meter: m, limit: n, now: n, next: time.Now().Add(coreShareEvery)}
}

// adjust sets the thread count for what other processes used since the
// last look, at most every coreShareEvery, and says so when it changes. It
// runs on the training thread (OpenMP's thread count is per thread).
func (c *coreShare) adjust(o *Options) error {
	if c == nil || time.Now().Before(c.next) {
		return nil
	}
	c.next = time.Now().Add(coreShareEvery)
	others, err := c.meter.Others()
	if err != nil {
		return nil // measuring is best effort: keep the threads
	}
	n := cpushare.Threads(c.meter.CPUs(), others, c.limit)
	if n == c.now {
		return nil
	}
	if err := torch.SetNumThreads(n); err != nil {
		return err
	}
	if n < c.now {
		fmt.Fprintf(o.Log, "other processes keep %.1f of the %d CPUs busy: %d libtorch threads (of %d) while they do (--fixed-threads keeps %d)\n",
			others, c.meter.CPUs(), n, c.limit, c.limit)
	} else {
		fmt.Fprintf(o.Log, "CPUs free again: %d libtorch threads (of %d)\n", n, c.limit)
	}
	c.now = n
	return nil
}
