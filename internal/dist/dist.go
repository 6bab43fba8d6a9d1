// Package dist joins gsrmt processes into a data-parallel group on
// PyTorch's own engine: libtorch's c10d, through a small C++ shim. The store
// is c10d's TCPStore and the group is ProcessGroupGloo (CPU) or
// ProcessGroupNCCL (CUDA, when the libtorch has it), built the way
// torch.distributed.init_process_group builds them with env://, so gsrmt
// ranks run under torchrun (also with --no_python), under Slurm, or set by
// hand, and join the same groups as Python ranks.
//
// Every rank must call the same collectives in the same order with tensors
// of the same shapes and dtypes (VerifySameShapes checks a model's
// parameters at start). After the first failed collective the group is
// unusable: every later call returns that error, and the process should
// exit so that the launcher can restart the job.
package dist

// #include <stdlib.h>
// #include "shim.h"
import "C"

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// This constant lives in zz_cgo_flags.go, which ./setup-libtorch.sh writes
// with the include, define and link flags of the libtorch it chose. If the
// build stops here, run ./setup-libtorch.sh in the repository root.
const _ = distPreparedBySetupLibtorch

// Defaults for Options.
const (
	// DefaultTimeout bounds every store operation and collective: a rank
	// that died or hangs makes the others fail after at most this long.
	DefaultTimeout = 10 * time.Minute
	// DefaultBucketBytes is the size of the flat buckets collectives send
	// (DDP's bucket_cap_mb=25).
	DefaultBucketBytes = 25 << 20
	// DefaultFirstBucketBytes is the size of the first bucket (DDP's 1 MiB).
	DefaultFirstBucketBytes = 1 << 20
)

// Options choose the backend and limits of a group.
type Options struct {
	// Backend is "gloo", "nccl", or "" for nccl when this build has it and
	// libtorch sees a CUDA device, else gloo.
	Backend string
	// Timeout bounds store operations and collectives; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// BucketBytes and FirstBucketBytes size the flat buckets of AllReduce*
	// and Broadcast; 0 means the defaults.
	BucketBytes, FirstBucketBytes int64
}

// Available lists the backends this build has: "gloo" when libgloo-dev's
// headers were found by setup-libtorch.sh, "nccl" when the libtorch has CUDA
// and the NCCL and CUDA headers were found.
func Available() []string {
	var b []string
	if C.gsrmt_dist_has_gloo() != 0 {
		b = append(b, "gloo")
	}
	if C.gsrmt_dist_has_nccl() != 0 {
		b = append(b, "nccl")
	}
	return b
}

// Group is this process's membership in a process group. Its methods are
// safe for concurrent use, but every rank must issue the same collectives
// in the same order.
type Group struct {
	env         Env
	backend     string
	timeout     time.Duration
	bucket      int64
	firstBucket int64

	mu      sync.Mutex
	h       unsafe.Pointer // the shim's Group; nil once closed
	err     error          // the first collective error: the group is unusable
	verifyN int            // VerifySameShapes calls, for unique store keys
}

// cerr turns a malloc'd message from the shim into a string.
func cerr(msg *C.char) string {
	defer C.free(unsafe.Pointer(msg))
	return strings.TrimSpace(C.GoString(msg))
}

// Init joins the group that env describes: it opens the store (rank 0
// hosts it, or torchrun's agent does when env.AgentStore), creates the
// backend's process group and waits until every rank has joined. It fails
// after opts.Timeout when a rank does not come, naming the ranks that did.
//
// Init makes the process ignore SIGPIPE (as Python does): a peer that exits
// otherwise kills this process from one of Gloo's threads.
func Init(env Env, opts Options) (*Group, error) {
	if err := env.check("rank", "world size", "local rank", "local world size"); err != nil {
		return nil, err
	}
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("dist: timeout %v: want a positive duration (0 for %v)", opts.Timeout, DefaultTimeout)
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.BucketBytes < 0 || opts.FirstBucketBytes < 0 {
		return nil, fmt.Errorf("dist: bucket sizes %d and %d bytes: want 0 (default) or more", opts.BucketBytes, opts.FirstBucketBytes)
	}
	if opts.BucketBytes == 0 {
		opts.BucketBytes = DefaultBucketBytes
	}
	if opts.FirstBucketBytes == 0 {
		opts.FirstBucketBytes = DefaultFirstBucketBytes
	}
	backend := opts.Backend
	if backend == "" {
		backend = "gloo"
		if C.gsrmt_dist_has_nccl() != 0 && C.gsrmt_dist_cuda_devices() > 0 {
			backend = "nccl"
		}
	}
	avail := Available()
	if !contains(avail, backend) {
		have := "none"
		if len(avail) > 0 {
			have = strings.Join(avail, ", ")
		}
		return nil, fmt.Errorf("dist: backend %q is not in this build (it has: %s); gloo needs libgloo-dev, nccl a CUDA libtorch with NCCL: install them and re-run ./setup-libtorch.sh", backend, have)
	}
	signal.Ignore(syscall.SIGPIPE)

	if !env.Distributed() && env.MasterAddr == "" {
		// One process: a group of one on a free local port.
		env.MasterAddr, env.MasterPort = "127.0.0.1", 0
	}
	g := &Group{env: env, backend: backend, timeout: opts.Timeout, bucket: opts.BucketBytes, firstBucket: opts.FirstBucketBytes}
	who := fmt.Sprintf("dist: rank %d of %d", env.Rank, env.WorldSize)
	addr := C.CString(env.MasterAddr)
	defer C.free(unsafe.Pointer(addr))
	var h unsafe.Pointer
	if msg := C.gsrmt_dist_open(addr, C.int(env.MasterPort), C.int(env.Rank), C.int(env.WorldSize),
		cbool(env.AgentStore), C.int(env.RestartCount), C.int64_t(opts.Timeout.Milliseconds()), &h); msg != nil {
		cause := cerr(msg)
		where := fmt.Sprintf("%s:%d", env.MasterAddr, env.MasterPort)
		switch {
		case env.AgentStore:
			return nil, fmt.Errorf("%s: cannot reach torchrun's store at %s within %v: %s (is the torchrun agent running? MASTER_ADDR/MASTER_PORT come from it)", who, where, opts.Timeout, cause)
		case env.Rank == 0:
			return nil, fmt.Errorf("%s: cannot host the store on port %d: %s (another job on this port? pick a free MASTER_PORT)", who, env.MasterPort, cause)
		default:
			return nil, fmt.Errorf("%s: cannot reach the store that rank 0 hosts at %s within %v: %s (is rank 0 running, with the same MASTER_ADDR and MASTER_PORT?)", who, where, opts.Timeout, cause)
		}
	}
	g.h = h
	host, _ := os.Hostname()
	if err := g.storeSet(joinedKey(env.Rank), []byte(fmt.Sprintf("%s pid %d", host, os.Getpid()))); err != nil {
		C.gsrmt_dist_free(h)
		return nil, fmt.Errorf("%s: register with the store at %s:%d: %v", who, env.MasterAddr, env.MasterPort, err)
	}
	name := C.CString(backend)
	defer C.free(unsafe.Pointer(name))
	start := time.Now()
	if msg := C.gsrmt_dist_create(h, name, C.int(env.LocalRank)); msg != nil {
		cause := cerr(msg)
		missing, _ := g.absent(joinedKey)
		C.gsrmt_dist_free(h)
		var hint string
		if len(missing) > 0 {
			hint = fmt.Sprintf("; %s never reached the store (not started, crashed, or started with another MASTER_ADDR, MASTER_PORT or WORLD_SIZE; Python ranks are not counted)", rankList(missing))
		}
		return nil, fmt.Errorf("%s: creating the %s group failed after %v (timeout %v): %s%s", who, backend, since(start), opts.Timeout, cause, hint)
	}
	return g, nil
}

// Rank is this process's rank in the group.
func (g *Group) Rank() int { return g.env.Rank }

// Size is the number of processes in the group.
func (g *Group) Size() int { return g.env.WorldSize }

// Backend is "gloo" or "nccl".
func (g *Group) Backend() string { return g.backend }

// Env is the environment the group was created from.
func (g *Group) Env() Env { return g.env }

// Timeout is the group's timeout.
func (g *Group) Timeout() time.Duration { return g.timeout }

// Err returns the error that made the group unusable, or nil. It also
// reports a collective that failed inside SyncBatchNorm's backward (where
// the caller sees only autograd's error): call it when a backward fails.
func (g *Group) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err == nil && g.h != nil {
		_ = g.usable("")
	}
	return g.err
}

// AllReduceSum replaces each tensor by its sum over all ranks, in place.
// The tensors, in the caller's order, are flattened into buckets of one
// dtype and device (the first up to FirstBucketBytes, the others up to
// BucketBytes), each bucket sent while the next is flattened, and copied
// back without autograd (parameters that require grad are fine). Every rank
// must pass tensors of the same shapes, dtypes and order.
func (g *Group) AllReduceSum(tensors []*ts.Tensor) error {
	return g.tensors("allreduce (sum)", tensors, func(h unsafe.Pointer, p *unsafe.Pointer, n C.int) *C.char {
		return C.gsrmt_dist_allreduce(h, p, n, C.int64_t(g.firstBucket), C.int64_t(g.bucket), 0)
	})
}

// AllReduceMean replaces each tensor by its mean over all ranks, in place:
// the sum divided by the group size (Gloo has no average). Floating-point
// tensors only. As AllReduceSum otherwise.
func (g *Group) AllReduceMean(tensors []*ts.Tensor) error {
	for i, t := range tensors {
		if t == nil {
			continue // tensors reports it
		}
		switch dt := t.DType(); dt {
		case gotch.Float, gotch.Double, gotch.Half, gotch.BFloat16:
		default:
			return fmt.Errorf("dist: rank %d of %d: allreduce (mean): tensor %d is %v: the mean needs floating point (use AllReduceSum)", g.env.Rank, g.env.WorldSize, i, dt)
		}
	}
	return g.tensors("allreduce (mean)", tensors, func(h unsafe.Pointer, p *unsafe.Pointer, n C.int) *C.char {
		return C.gsrmt_dist_allreduce(h, p, n, C.int64_t(g.firstBucket), C.int64_t(g.bucket), 1)
	})
}

// Broadcast copies root's tensors into every rank's tensors, in place,
// coalesced into buckets as AllReduceSum.
func (g *Group) Broadcast(tensors []*ts.Tensor, root int) error {
	if root < 0 || root >= g.env.WorldSize {
		return fmt.Errorf("dist: rank %d of %d: broadcast from rank %d: no such rank", g.env.Rank, g.env.WorldSize, root)
	}
	return g.tensors(fmt.Sprintf("broadcast from rank %d", root), tensors, func(h unsafe.Pointer, p *unsafe.Pointer, n C.int) *C.char {
		return C.gsrmt_dist_broadcast(h, p, n, C.int(root), C.int64_t(g.firstBucket), C.int64_t(g.bucket))
	})
}

// SyncBatchNorm is torch.nn.SyncBatchNorm's training forward: it normalizes
// x (N, C, ...) with the mean and biased variance of every rank's x
// together (per-channel count, sum and sum of squares all-reduced over the
// group), moves runningMean and runningVar in place towards those global
// statistics by momentum (the variance unbiased with the global count, as
// PyTorch), and applies weight and bias. weight, bias, runningMean and
// runningVar may be nil. It refuses (as PyTorch) a group-wide count of one
// value per channel.
//
// The result is part of the autograd graph; its backward all-reduces the
// per-channel sums of dy and dy*(x-mean), so that the input gradient is the
// one of a single BatchNorm over the global batch, and returns this rank's
// own weight and bias gradients (PyTorch's SyncBatchNorm does the same): the
// caller averages every parameter gradient over the ranks afterwards. Every
// rank must call SyncBatchNorm, and run the backward, in the same order with
// the same C, and issue no other collective while a backward runs; when a
// backward fails, Err tells whether the group failed. The caller owns the
// result.
func (g *Group) SyncBatchNorm(x, weight, bias, runningMean, runningVar *ts.Tensor, momentum, eps float64) (*ts.Tensor, error) {
	who := fmt.Sprintf("dist: rank %d of %d", g.env.Rank, g.env.WorldSize)
	if x == nil {
		return nil, fmt.Errorf("%s: sync batch norm: the input is nil", who)
	}
	op := "sync batch norm"
	if dims, err := x.Size(); err == nil {
		op = fmt.Sprintf("sync batch norm of %v", dims)
	}
	handle := func(t *ts.Tensor) unsafe.Pointer {
		if t == nil {
			return nil
		}
		return t.Ctensor()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.usable(op); err != nil {
		return nil, err
	}
	var out unsafe.Pointer
	var failed C.int
	start := time.Now()
	msg := C.gsrmt_dist_sync_batch_norm(g.h, handle(x), handle(weight), handle(bias), handle(runningMean), handle(runningVar),
		C.double(momentum), C.double(eps), &out, &failed)
	runtime.KeepAlive(x)
	runtime.KeepAlive(weight)
	runtime.KeepAlive(bias)
	runtime.KeepAlive(runningMean)
	runtime.KeepAlive(runningVar)
	if msg != nil {
		cause := cerr(msg)
		if failed != 0 {
			return nil, g.fail(op, since(start), cause)
		}
		return nil, fmt.Errorf("%s: %s: %s", who, op, cause)
	}
	return ts.FromCtensor(out), nil
}

// tensors runs a bucketed collective over tensors.
func (g *Group) tensors(op string, tensors []*ts.Tensor, f func(unsafe.Pointer, *unsafe.Pointer, C.int) *C.char) error {
	if len(tensors) == 0 {
		return nil
	}
	hs := make([]unsafe.Pointer, len(tensors))
	for i, t := range tensors {
		if t == nil {
			return fmt.Errorf("dist: rank %d of %d: %s: tensor %d is nil", g.env.Rank, g.env.WorldSize, op, i)
		}
		hs[i] = t.Ctensor()
	}
	op = fmt.Sprintf("%s of %s", op, plural(len(tensors), "tensor"))
	err := g.collective(op, func(h unsafe.Pointer) *C.char { return f(h, &hs[0], C.int(len(hs))) })
	runtime.KeepAlive(tensors)
	return err
}

// AllReduceFloat64 returns the sums over all ranks of vals (for metric
// sums: exact in float64 for counts). vals is not changed.
func (g *Group) AllReduceFloat64(vals []float64) ([]float64, error) {
	out := append([]float64(nil), vals...)
	if len(out) == 0 {
		return out, nil
	}
	err := g.collective(fmt.Sprintf("allreduce of %d float64 values", len(out)), func(h unsafe.Pointer) *C.char {
		return C.gsrmt_dist_allreduce_f64(h, (*C.double)(unsafe.Pointer(&out[0])), C.int(len(out)))
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Barrier returns once every rank has called it.
func (g *Group) Barrier() error {
	return g.collective("barrier", func(h unsafe.Pointer) *C.char { return C.gsrmt_dist_barrier(h) })
}

// broadcastBytes copies root's buf into every rank's buf.
func (g *Group) broadcastBytes(buf []byte, root int) error {
	return g.collective(fmt.Sprintf("broadcast of %d bytes", len(buf)), func(h unsafe.Pointer) *C.char {
		return C.gsrmt_dist_broadcast_bytes(h, (*C.uint8_t)(unsafe.Pointer(&buf[0])), C.int64_t(len(buf)), C.int(root))
	})
}

// VerifySameShapes checks that every rank holds the same parameter names
// and shapes, in the same order, as rank 0 (a model built from other flags,
// or an unordered parameter list, makes ranks reduce different tensors into
// each other). Each rank's error names the first difference it holds, or
// the ranks that differ. A mismatch leaves the group usable.
func (g *Group) VerifySameShapes(names []string, shapes [][]int64) error {
	who := fmt.Sprintf("dist: rank %d of %d", g.env.Rank, g.env.WorldSize)
	if len(names) != len(shapes) {
		return fmt.Errorf("%s: verify shapes: %d names but %d shapes", who, len(names), len(shapes))
	}
	lines := make([]string, len(names))
	for i := range names {
		lines[i] = fmt.Sprintf("%q %v", names[i], shapes[i])
	}
	desc := strings.Join(lines, "\n")
	sum := sha256.Sum256([]byte(desc))
	g.mu.Lock()
	if err := g.err; err != nil {
		g.mu.Unlock()
		return err
	}
	if g.h == nil {
		g.mu.Unlock()
		return fmt.Errorf("%s: verify shapes: %w", who, errClosed)
	}
	g.verifyN++
	key := "verify/" + strconv.Itoa(g.verifyN)
	g.mu.Unlock()
	if g.env.Rank == 0 {
		if err := g.storeSet(key, []byte(desc)); err != nil {
			return fmt.Errorf("%s: verify shapes: publish rank 0's parameters: %v", who, err)
		}
	}
	theirs := sum
	if err := g.broadcastBytes(theirs[:], 0); err != nil {
		return err
	}
	flags := make([]float64, g.env.WorldSize)
	if theirs != sum {
		flags[g.env.Rank] = 1
	}
	flags, err := g.AllReduceFloat64(flags)
	if err != nil {
		return err
	}
	var differ []int
	for r, f := range flags {
		if f != 0 {
			differ = append(differ, r)
		}
	}
	if len(differ) == 0 {
		return nil
	}
	if theirs == sum {
		return fmt.Errorf("%s: parameter names or shapes differ from rank 0's on %s (their errors name the first difference): every rank must build the same model with the same options", who, rankList(differ))
	}
	ref, err := g.storeGet(key)
	if err != nil {
		return fmt.Errorf("%s: this rank holds other parameter names or shapes than rank 0 (reading rank 0's list: %v)", who, err)
	}
	return fmt.Errorf("%s: this rank holds other parameter names or shapes than rank 0: %s; every rank must build the same model with the same options", who, firstDifference(strings.Split(string(ref), "\n"), lines, g.env.Rank))
}

// firstDifference names the first line where rank 0's list and ours differ.
func firstDifference(ref, ours []string, rank int) string {
	if len(ref) == 1 && ref[0] == "" {
		ref = nil // an empty list
	}
	for i := 0; i < len(ref) && i < len(ours); i++ {
		if ref[i] != ours[i] {
			return fmt.Sprintf("parameter %d: rank 0 has %s, rank %d has %s", i, ref[i], rank, ours[i])
		}
	}
	if len(ref) > len(ours) {
		return fmt.Sprintf("rank 0 has %d parameters, rank %d has %d (the first missing here: %s)", len(ref), rank, len(ours), ref[len(ours)])
	}
	return fmt.Sprintf("rank 0 has %d parameters, rank %d has %d (the first extra here: %s)", len(ref), rank, len(ours), ours[len(ref)])
}

// Close leaves the group. When rank 0 hosts the store (not under torchrun's
// agent), every rank first waits at a barrier so that rank 0 does not take
// the store away from ranks still using it: every rank must call Close.
// After a collective error Close releases nothing (the C++ destructors
// could wait on dead peers; the process is about to exit) and returns nil.
func (g *Group) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.h == nil {
		return nil
	}
	if g.err == nil {
		_ = g.usable("close") // a failure inside SyncBatchNorm's backward
	}
	h := g.h
	g.h = nil
	if g.err != nil {
		return nil
	}
	if !g.env.AgentStore && g.env.WorldSize > 1 {
		if msg := C.gsrmt_dist_barrier(h); msg != nil {
			g.err = fmt.Errorf("dist: rank %d of %d: barrier before closing: %s (another rank exited without closing the group)", g.env.Rank, g.env.WorldSize, cerr(msg))
			return g.err
		}
	}
	C.gsrmt_dist_free(h)
	return nil
}

// CollectiveError is the error of a failed collective. The group is
// unusable afterwards.
type CollectiveError struct {
	Op         string        // what failed, e.g. "allreduce (sum) of 150 tensors"
	Rank, Size int           // this rank and the group size
	Backend    string        // "gloo" or "nccl"
	Elapsed    time.Duration // how long the collective ran
	Timeout    time.Duration // the group's timeout
	// Silent lists the ranks that did not report the failure to the store
	// shortly after it: they exited, crashed or hang.
	Silent []int
	Grace  time.Duration // how long this rank waited for the others' reports
	// StoreLost is true when the store was unreachable after the failure:
	// its host (rank 0, or torchrun's agent) is gone.
	StoreLost bool
	Store     string // the store's address
	StoreHost string // who hosts it: "rank 0" or "torchrun's agent"
	Cause     string // the backend's message
}

func (e *CollectiveError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dist: rank %d of %d: %s failed after %v: %s", e.Rank, e.Size, e.Op, e.Elapsed.Round(time.Millisecond), e.Cause)
	switch {
	case e.StoreLost:
		fmt.Fprintf(&b, "; the store that %s hosts at %s is unreachable: %s exited or crashed", e.StoreHost, e.Store, e.StoreHost)
	case len(e.Silent) > 0:
		fmt.Fprintf(&b, "; %s did not report the failure within %v: exited, crashed, hung or still busy", rankList(e.Silent), e.Grace)
	}
	if e.Elapsed >= e.Timeout*9/10 {
		fmt.Fprintf(&b, "; it waited out the timeout (%v)", e.Timeout)
	} else {
		fmt.Fprintf(&b, " (timeout %v)", e.Timeout)
	}
	b.WriteString("; the group is unusable: stop this process (torchrun --max_restarts restarts every rank; resume from the last checkpoint)")
	return b.String()
}

// errClosed is returned by calls on a closed group.
var errClosed = errors.New("the group is closed")

// collective runs f on the shim's group unless the group is closed or
// broken; a failure breaks the group.
func (g *Group) collective(op string, f func(unsafe.Pointer) *C.char) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.usable(op); err != nil {
		return err
	}
	start := time.Now()
	msg := f(g.h)
	if msg == nil {
		return nil
	}
	return g.fail(op, since(start), cerr(msg))
}

// usable returns the error that makes the group unusable for op, if any:
// an earlier failure (also one inside SyncBatchNorm's backward, which the
// shim recorded), or a closed group. g.mu must be held.
func (g *Group) usable(op string) error {
	if g.err != nil {
		return g.err
	}
	if g.h == nil {
		return fmt.Errorf("dist: rank %d of %d: %s: %w", g.env.Rank, g.env.WorldSize, op, errClosed)
	}
	var ms C.int64_t
	if msg := C.gsrmt_dist_async_error(g.h, &ms); msg != nil {
		return g.fail("sync batch norm", time.Duration(ms)*time.Millisecond, cerr(msg))
	}
	return nil
}

// fail records the failure of op, which ran for elapsed, as the group's
// error (after the roll call that names the silent ranks) and returns it.
// g.mu must be held.
func (g *Group) fail(op string, elapsed time.Duration, cause string) error {
	e := &CollectiveError{Op: op, Rank: g.env.Rank, Size: g.env.WorldSize, Backend: g.backend,
		Elapsed: elapsed, Timeout: g.timeout, Cause: cause,
		Store: fmt.Sprintf("%s:%d", g.env.MasterAddr, g.env.MasterPort), StoreHost: "rank 0"}
	if g.env.AgentStore {
		e.StoreHost = "torchrun's agent"
	}
	e.Grace = g.grace()
	e.Silent, e.StoreLost = g.rollCall(e.Cause, e.Grace)
	g.err = e
	return e
}

// rollCall reports this rank's failure to the store and waits briefly for
// the other ranks' reports: the ranks that stay silent are the suspects.
// lost is true when the store cannot be reached.
func (g *Group) rollCall(cause string, grace time.Duration) (silent []int, lost bool) {
	if g.storeSet(failedKey(g.env.Rank), []byte(cause)) != nil {
		return nil, true
	}
	deadline := time.Now().Add(grace)
	var last []int
	for checked := false; ; checked = true {
		missing, err := g.absent(failedKey)
		if err != nil {
			// Lost now, after a first answer: the host left after we
			// reported (rank 0 exiting on its own error); keep what we saw.
			return last, !checked
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			return missing, false
		}
		last = missing
		time.Sleep(50 * time.Millisecond)
	}
}

// grace is how long a failed rank waits for the others' reports: a tenth
// of the timeout, within 1 to 3 seconds (torchrun's agent stops the ranks
// within its monitor interval, 5 s by default, once one has failed).
func (g *Group) grace() time.Duration {
	d := g.timeout / 10
	if d < time.Second {
		d = time.Second
	}
	if d > 3*time.Second {
		d = 3 * time.Second
	}
	return d
}

// absent returns the ranks whose key (from key(rank)) is not in the store.
func (g *Group) absent(key func(int) string) ([]int, error) {
	var missing []int
	for r := 0; r < g.env.WorldSize; r++ {
		ck := C.CString(key(r))
		var msg *C.char
		found := C.gsrmt_dist_store_check(g.h, ck, &msg)
		C.free(unsafe.Pointer(ck))
		if found < 0 {
			return nil, errors.New(cerr(msg))
		}
		if found == 0 {
			missing = append(missing, r)
		}
	}
	return missing, nil
}

func joinedKey(rank int) string { return "joined/" + strconv.Itoa(rank) }
func failedKey(rank int) string { return "failed/" + strconv.Itoa(rank) }

func (g *Group) storeSet(key string, val []byte) error {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var p *C.uint8_t
	if len(val) > 0 {
		p = (*C.uint8_t)(unsafe.Pointer(&val[0]))
	}
	if msg := C.gsrmt_dist_store_set(g.h, ck, p, C.int64_t(len(val))); msg != nil {
		return errors.New(cerr(msg))
	}
	return nil
}

func (g *Group) storeGet(key string) ([]byte, error) {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var p *C.uint8_t
	var n C.int64_t
	if msg := C.gsrmt_dist_store_get(g.h, ck, &p, &n); msg != nil {
		return nil, errors.New(cerr(msg))
	}
	defer C.free(unsafe.Pointer(p))
	return C.GoBytes(unsafe.Pointer(p), C.int(n)), nil
}

// rankList spells ranks as "rank 2" or "ranks 1, 3".
func rankList(ranks []int) string {
	sort.Ints(ranks)
	s := make([]string, len(ranks))
	for i, r := range ranks {
		s[i] = strconv.Itoa(r)
	}
	if len(ranks) == 1 {
		return "rank " + s[0]
	}
	return "ranks " + strings.Join(s, ", ")
}

// plural spells "1 tensor", "2 tensors".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
