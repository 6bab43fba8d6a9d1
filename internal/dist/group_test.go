package dist

// Multi-process tests: the test binary re-runs itself as the ranks of a
// group (TestHelperWorker, selected by GSRMT_DIST_SCENARIO), with the
// variables torchrun would set, and the parent checks what each printed.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gsrmt/gsrmt/internal/testutil"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// requireGloo skips a test when this build has no gloo, except under CI
// (where scripts/install-deps.sh installs libgloo-dev), where it fails.
func requireGloo(t *testing.T) {
	t.Helper()
	if contains(Available(), "gloo") {
		return
	}
	msg := fmt.Sprintf("this build has no gloo backend (Available() = %v): install libgloo-dev and re-run ./setup-libtorch.sh", Available())
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// cleanEnv is this process's environment without any launcher's variables.
func cleanEnv(extra ...string) []string {
	drop := map[string]bool{"RANK": true, "WORLD_SIZE": true, "LOCAL_RANK": true, "LOCAL_WORLD_SIZE": true,
		"MASTER_ADDR": true, "MASTER_PORT": true, "GROUP_RANK": true, "ROLE_RANK": true, "OMP_NUM_THREADS": true}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if drop[k] || strings.HasPrefix(k, "SLURM_") || strings.HasPrefix(k, "TORCHELASTIC_") || strings.HasPrefix(k, "GSRMT_DIST_") {
			continue
		}
		env = append(env, kv)
	}
	return append(append(env, "OMP_NUM_THREADS=1"), extra...)
}

// proc is one started rank.
type proc struct {
	rank int
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan struct{}
	err  error
	took time.Duration
}

// startRank starts the test binary as rank of a world-size group.
func startRank(t *testing.T, ctx context.Context, scenario string, rank, world, port int, extra ...string) *proc {
	t.Helper()
	p := &proc{rank: rank, done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperWorker$", "-test.count=1")
	p.cmd.Env = cleanEnv(append([]string{"GSRMT_DIST_SCENARIO=" + scenario, "RANK=" + strconv.Itoa(rank),
		"WORLD_SIZE=" + strconv.Itoa(world), "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + strconv.Itoa(port)}, extra...)...)
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = &p.out
	start := time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		p.took = time.Since(start)
		close(p.done)
	}()
	return p
}

// runRanks starts ranks 0..world-1 (except those in skip) and waits for
// them all, within limit.
func runRanks(t *testing.T, scenario string, world int, limit time.Duration, extra ...string) []*proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	port := freePort(t)
	var ps []*proc
	for r := 0; r < world; r++ {
		ps = append(ps, startRank(t, ctx, scenario, r, world, port, extra...))
	}
	for _, p := range ps {
		<-p.done
	}
	if ctx.Err() != nil {
		for _, p := range ps {
			t.Logf("rank %d output:\n%s", p.rank, p.out.String())
		}
		t.Fatalf("%s: the ranks did not finish within %v", scenario, limit)
	}
	return ps
}

// expectOK fails the test unless p exited 0 and printed "WORKER OK"; it
// logs the errors the rank printed (go test -v shows them).
func expectOK(t *testing.T, p *proc) {
	t.Helper()
	if p.err != nil || !strings.Contains(p.out.String(), "WORKER OK") {
		t.Errorf("rank %d: exit %v, output:\n%s", p.rank, p.err, p.out.String())
	}
	for _, line := range strings.Split(p.out.String(), "\n") {
		if strings.Contains(line, "ERROR") {
			t.Logf("rank %d (%v): %s", p.rank, p.took.Round(time.Millisecond), line)
		}
	}
}

func TestCollectivesThreeRanks(t *testing.T) {
	requireGloo(t)
	t.Parallel()
	start := time.Now()
	for _, p := range runRanks(t, "collectives", 3, 60*time.Second, "GSRMT_DIST_TIMEOUT_MS=30000") {
		expectOK(t, p)
		out := p.out.String()
		switch p.rank {
		case 2:
			if !strings.Contains(out, `parameter 1: rank 0 has "b" [100], rank 2 has "b" [101]`) {
				t.Errorf("rank 2's shape error does not name the difference:\n%s", out)
			}
		default:
			if !strings.Contains(out, "differ from rank 0's on rank 2") {
				t.Errorf("rank %d's shape error does not name rank 2:\n%s", p.rank, out)
			}
		}
	}
	t.Logf("3 ranks: %v", time.Since(start).Round(time.Millisecond))
}

// TestRankExits: a rank that exits mid-way makes the others fail fast,
// naming it; later calls return the first error at once.
func TestRankExits(t *testing.T) {
	requireGloo(t)
	t.Parallel()
	for _, c := range []struct {
		world, victim int
		want          string
	}{
		{3, 1, "rank 1 did not report the failure"},
		{2, 0, "the store that rank 0 hosts at 127.0.0.1:"},
	} {
		ps := runRanks(t, "dead", c.world, 60*time.Second, "GSRMT_DIST_TIMEOUT_MS=20000", "GSRMT_DIST_VICTIM="+strconv.Itoa(c.victim))
		for _, p := range ps {
			out := p.out.String()
			if p.rank == c.victim {
				if !strings.Contains(out, "VICTIM EXITS") {
					t.Errorf("world %d: rank %d did not exit as planned: %v\n%s", c.world, p.rank, p.err, out)
				}
				continue
			}
			expectOK(t, p)
			if !strings.Contains(out, c.want) {
				t.Errorf("world %d, rank %d exits: rank %d's error lacks %q:\n%s", c.world, c.victim, p.rank, c.want, out)
			}
			if p.took > 15*time.Second {
				t.Errorf("world %d: rank %d took %v to fail (timeout 20s)", c.world, p.rank, p.took)
			}
		}
	}
}

// TestRankHangs: a rank that stops calling collectives makes the other
// fail at the timeout, naming it.
func TestRankHangs(t *testing.T) {
	requireGloo(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	port := freePort(t)
	extra := []string{"GSRMT_DIST_TIMEOUT_MS=3000"}
	p0 := startRank(t, ctx, "hung", 0, 2, port, extra...)
	p1 := startRank(t, ctx, "hung", 1, 2, port, extra...)
	<-p0.done
	_ = p1.cmd.Process.Kill()
	<-p1.done
	expectOK(t, p0)
	out := p0.out.String()
	for _, want := range []string{"waited out the timeout (3s)", "rank 1 did not report the failure"} {
		if !strings.Contains(out, want) {
			t.Errorf("rank 0's error lacks %q:\n%s", want, out)
		}
	}
}

// TestRankMissing: a rank that never starts makes Init fail at the
// timeout, naming it.
func TestRankMissing(t *testing.T) {
	requireGloo(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := startRank(t, ctx, "missing", 0, 2, freePort(t), "GSRMT_DIST_TIMEOUT_MS=2000")
	<-p.done
	expectOK(t, p)
	if out := p.out.String(); !strings.Contains(out, "rank 1 never reached the store") {
		t.Errorf("Init's error does not name rank 1:\n%s", out)
	}
}

// TestTorchrun launches two ranks with torchrun --no_python (its agent
// hosts the store); the first attempt loses rank 1, torchrun restarts both,
// and the second attempt (store keys under /worker/attempt_1) completes.
func TestTorchrun(t *testing.T) {
	requireGloo(t)
	py := testutil.PythonTorch(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	logDir := t.TempDir()
	cmd := exec.CommandContext(ctx, py, "-m", "torch.distributed.run", "--nproc_per_node=2", "--max_restarts=1",
		"--monitor_interval=1", "--master_addr=127.0.0.1", "--master_port="+strconv.Itoa(freePort(t)),
		"--log_dir="+logDir, "--redirects", "1", "--tee", "1", "--no_python",
		os.Args[0], "-test.run=^TestHelperWorker$", "-test.count=1")
	cmd.Env = cleanEnv("GSRMT_DIST_SCENARIO=torchrun", "GSRMT_DIST_TIMEOUT_MS=20000")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	s := string(out)
	if err != nil && strings.Contains(s, "No module named torch.distributed.run") {
		msg := py + " -m torch.distributed.run is not available: " + strings.TrimSpace(s)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if err != nil || ctx.Err() != nil {
		t.Fatalf("torchrun: %v\n%s", err, s)
	}
	// Attempt 0: rank 0's barrier fails once rank 1 has exited, unless the
	// agent's SIGTERM comes first (it stops all ranks when one fails).
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, "WORKER FAILED rank=0") {
			t.Logf("%s", line)
			if !strings.Contains(line, "rank 1 did not report the failure") {
				t.Errorf("rank 0's error in the first attempt does not name rank 1: %s", line)
			}
		}
	}
	t.Logf("torchrun, two attempts: %v", time.Since(start).Round(time.Millisecond))
}

// TestPythonRanks: Python torch.distributed ranks (gloo, env://) and Go
// ranks allreduce, broadcast and barrier in one group, with the store
// hosted by a Go rank and by a Python rank.
func TestPythonRanks(t *testing.T) {
	requireGloo(t)
	py := testutil.PythonTorch(t)
	t.Parallel()
	script, err := filepath.Abs(filepath.Join("testdata", "pyrank.py"))
	if err != nil {
		t.Fatal(err)
	}
	for _, layout := range []string{"GPG", "PG"} { // which rank is Python (P) or Go (G)
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		port := freePort(t)
		var ps []*proc
		for r, kind := range layout {
			extra := []string{"GSRMT_DIST_TIMEOUT_MS=30000"}
			if kind == 'G' {
				ps = append(ps, startRank(t, ctx, "python", r, len(layout), port, extra...))
				continue
			}
			p := &proc{rank: r, done: make(chan struct{})}
			p.cmd = exec.CommandContext(ctx, py, script)
			p.cmd.Env = cleanEnv("RANK="+strconv.Itoa(r), "WORLD_SIZE="+strconv.Itoa(len(layout)),
				"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port))
			p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
			if err := p.cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { p.err = p.cmd.Wait(); close(p.done) }()
			ps = append(ps, p)
		}
		for _, p := range ps {
			<-p.done
		}
		timedOut := ctx.Err() != nil
		cancel()
		for i, p := range ps {
			want := "WORKER OK"
			if layout[i] == 'P' {
				want = "PYTHON OK"
			}
			if timedOut || p.err != nil || !strings.Contains(p.out.String(), want) {
				t.Errorf("layout %s, rank %d: exit %v (timed out: %v), output:\n%s", layout, p.rank, p.err, timedOut, p.out.String())
			}
		}
	}
}

// ---- the worker side ----------------------------------------------------

// TestBucketTiming measures AllReduceMean of 150 tensors (6 MB, as a small
// model's gradients) between two ranks; it runs when GSRMT_DIST_BENCH=1.
func TestBucketTiming(t *testing.T) {
	if os.Getenv("GSRMT_DIST_BENCH") != "1" {
		t.Skip("a measurement: set GSRMT_DIST_BENCH=1")
	}
	requireGloo(t)
	for _, p := range runRanks(t, "bench", 2, 120*time.Second) {
		expectOK(t, p)
		for _, line := range strings.Split(p.out.String(), "\n") {
			if strings.HasPrefix(line, "BENCH") {
				t.Logf("rank %d: %s", p.rank, line)
			}
		}
	}
}

// TestHelperWorker is a rank of a multi-process test, not a test itself.
func TestHelperWorker(t *testing.T) {
	scenario := os.Getenv("GSRMT_DIST_SCENARIO")
	if scenario == "" {
		t.Skip("a rank of the multi-process tests; runs only when they start it")
	}
	env, err := EnvFromOS()
	if err == nil {
		err = runScenario(scenario, env)
	}
	if err != nil {
		fmt.Printf("WORKER FAILED rank=%d: %v\n", env.Rank, err)
		os.Exit(1)
	}
	fmt.Printf("WORKER OK rank=%d attempt=%d\n", env.Rank, env.RestartCount)
	os.Exit(0)
}

func workerTimeout() time.Duration {
	ms, err := strconv.Atoi(os.Getenv("GSRMT_DIST_TIMEOUT_MS"))
	if err != nil || ms <= 0 {
		return 30 * time.Second
	}
	return time.Duration(ms) * time.Millisecond
}

func runScenario(scenario string, env Env) error {
	opts := Options{Timeout: workerTimeout()}
	switch scenario {
	case "collectives":
		opts.FirstBucketBytes, opts.BucketBytes = 1<<10, 4<<10
		g, err := Init(env, opts)
		if err != nil {
			return err
		}
		return collectives(g)
	case "dead":
		return dead(env, opts)
	case "hung":
		g, err := Init(env, opts)
		if err != nil {
			return err
		}
		if env.Rank == 1 {
			time.Sleep(time.Minute) // the parent kills this rank
			return nil
		}
		x := filled(0, 0, []int64{100}, gotch.Float)
		defer x.MustDrop()
		err = g.AllReduceSum([]*ts.Tensor{x})
		fmt.Printf("ERROR: %v\n", err)
		var ce *CollectiveError
		if !errors.As(err, &ce) {
			return fmt.Errorf("want a CollectiveError, got %v", err)
		}
		return nil
	case "missing":
		g, err := Init(env, opts)
		if err == nil {
			g.Close()
			return errors.New("Init succeeded without rank 1")
		}
		fmt.Printf("INIT ERROR: %v\n", err)
		return nil
	case "torchrun":
		return torchrunScenario(env, opts)
	case "python":
		return pythonScenario(env, opts)
	case "bench":
		return benchScenario(env, opts)
	case "syncbn":
		return syncBNScenario(env, opts)
	case "syncbn-dead":
		return syncBNDeadScenario(env, opts)
	}
	return fmt.Errorf("unknown scenario %q", scenario)
}

// spec describes one test tensor.
type spec struct {
	shape      []int64
	dtype      gotch.DType
	grad       bool // a leaf that requires grad
	transposed bool // a non-contiguous view (of a [shape[1], shape[0]] tensor)
}

// filled returns tensor i of rank: element k (row-major) = (rank+1)(i+1) + k%5.
func filled(rank, i int, shape []int64, dtype gotch.DType) *ts.Tensor {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	vals := make([]float64, n)
	for k := range vals {
		vals[k] = float64((rank+1)*(i+1) + k%5)
	}
	return ts.MustOfSlice(vals).MustView(shape, true).MustTotype(dtype, true)
}

// makeTensors returns the tensors of specs for rank, and the tensors whose
// storage to check (the base of a transposed view).
func makeTensors(rank int, specs []spec) (args, check []*ts.Tensor) {
	for i, s := range specs {
		if s.transposed {
			base := filled(rank, i, []int64{s.shape[1], s.shape[0]}, s.dtype)
			args = append(args, base.MustT(false))
			check = append(check, base)
			continue
		}
		x := filled(rank, i, s.shape, s.dtype)
		if s.grad {
			x.MustRequiresGrad_(true)
		}
		args = append(args, x)
		check = append(check, x)
	}
	return args, check
}

func dropAll(lists ...[]*ts.Tensor) {
	seen := map[*ts.Tensor]bool{}
	for _, l := range lists {
		for _, t := range l {
			if !seen[t] {
				seen[t] = true
				t.MustDrop()
			}
		}
	}
}

// values returns a tensor's elements in row-major order as float64.
func values(t *ts.Tensor) []float64 {
	c := t.MustContiguous(false)
	d := c.MustTotype(gotch.Double, true)
	defer d.MustDrop()
	n := d.Numel()
	if n == 0 {
		return nil
	}
	v := make([]float64, n)
	d.MustCopyData(v, n)
	return v
}

// checkTensors compares each check tensor with want(i, k).
func checkTensors(what string, check []*ts.Tensor, want func(i, k int) float64) error {
	for i, t := range check {
		for k, v := range values(t) {
			w := want(i, k)
			if d := v - w; d > 1e-5*w || d < -1e-5*w {
				return fmt.Errorf("%s: tensor %d element %d = %v, want %v", what, i, k, v, w)
			}
		}
	}
	return nil
}

func collectives(g *Group) error {
	rank, ws := g.Rank(), g.Size()
	specs := []spec{
		{shape: []int64{10, 20}, dtype: gotch.Float},        // 800 B: the first bucket (1 KiB)
		{shape: []int64{100}, dtype: gotch.Float},           // would pass 1 KiB: bucket 2
		{shape: []int64{3, 3, 3}, dtype: gotch.Float},       // bucket 2
		{shape: []int64{50}, dtype: gotch.Double},           // another dtype: bucket 3
		{shape: []int64{2000}, dtype: gotch.Float},          // 8000 B > 4 KiB: alone, in place
		{shape: []int64{7}, dtype: gotch.Float, grad: true}, // a parameter
		{shape: []int64{6, 4}, dtype: gotch.Float, transposed: true},
		{shape: []int64{300}, dtype: gotch.Float},
	}
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	shapes := make([][]int64, len(specs))
	for i, s := range specs {
		shapes[i] = s.shape
	}
	if err := g.VerifySameShapes(names, shapes); err != nil {
		return fmt.Errorf("same shapes: %w", err)
	}
	tri := float64(ws * (ws + 1) / 2)
	sum := func(i, k int) float64 { return float64(i+1)*tri + float64(ws*(k%5)) }

	args, check := makeTensors(rank, append(specs, spec{shape: []int64{5}, dtype: gotch.Int64}))
	err := g.AllReduceSum(args)
	if err == nil {
		err = checkTensors("sum", check, sum)
	}
	dropAll(args, check)
	if err != nil {
		return err
	}

	args, check = makeTensors(rank, specs)
	err = g.AllReduceMean(args)
	if err == nil {
		err = checkTensors("mean", check, func(i, k int) float64 { return sum(i, k) / float64(ws) })
	}
	dropAll(args, check)
	if err != nil {
		return err
	}

	args, check = makeTensors(rank, specs)
	err = g.Broadcast(args, 1)
	if err == nil {
		err = checkTensors("broadcast from 1", check, func(i, k int) float64 { return float64(2*(i+1) + k%5) })
	}
	dropAll(args, check)
	if err != nil {
		return err
	}

	r := float64(rank)
	got, err := g.AllReduceFloat64([]float64{r, 0.5 * r, 1e15 + r})
	if err != nil {
		return err
	}
	tr := float64(ws * (ws - 1) / 2)
	if want := []float64{tr, 0.5 * tr, float64(ws)*1e15 + tr}; got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		return fmt.Errorf("AllReduceFloat64 = %v, want %v", got, want)
	}
	if err := g.Barrier(); err != nil {
		return err
	}

	// The last rank builds parameter "b" with another shape.
	if rank == ws-1 {
		shapes[1] = []int64{101}
	}
	err = g.VerifySameShapes(names, shapes)
	if err == nil {
		return errors.New("VerifySameShapes accepted different shapes")
	}
	fmt.Printf("SHAPE ERROR: %v\n", err)
	// The group is still usable.
	if got, err := g.AllReduceFloat64([]float64{1}); err != nil || got[0] != float64(ws) {
		return fmt.Errorf("after a shape mismatch: %v, %v", got, err)
	}
	return g.Close()
}

func dead(env Env, opts Options) error {
	victim, _ := strconv.Atoi(os.Getenv("GSRMT_DIST_VICTIM"))
	g, err := Init(env, opts)
	if err != nil {
		return err
	}
	x := filled(env.Rank, 0, []int64{1000}, gotch.Float)
	defer x.MustDrop()
	if err := g.AllReduceSum([]*ts.Tensor{x}); err != nil {
		return err
	}
	if env.Rank == victim {
		fmt.Printf("VICTIM EXITS rank=%d\n", env.Rank)
		os.Exit(7)
	}
	start := time.Now()
	err = g.AllReduceSum([]*ts.Tensor{x})
	took := time.Since(start)
	fmt.Printf("ERROR after %v: %v\n", took.Round(time.Millisecond), err)
	var ce *CollectiveError
	if !errors.As(err, &ce) {
		return fmt.Errorf("want a CollectiveError, got %v", err)
	}
	start = time.Now()
	_, again := g.AllReduceFloat64([]float64{1})
	if again != err || time.Since(start) > 100*time.Millisecond {
		return fmt.Errorf("a later call returned %v after %v, want the first error at once", again, time.Since(start))
	}
	return g.Close()
}

func torchrunScenario(env Env, opts Options) error {
	if !env.AgentStore || env.Launcher != "torchrun" || env.WorldSize != 2 {
		return fmt.Errorf("not torchrun's environment: %+v", env)
	}
	g, err := Init(env, opts)
	if err != nil {
		return err
	}
	// Default buckets: 800 KB + 400 KB cross the first bucket's 1 MiB.
	specs := []spec{{shape: []int64{200000}, dtype: gotch.Float}, {shape: []int64{100000}, dtype: gotch.Float}, {shape: []int64{10}, dtype: gotch.Float}}
	args, check := makeTensors(env.Rank, specs)
	defer dropAll(args, check)
	if err := g.AllReduceSum(args); err != nil {
		return err
	}
	if env.RestartCount == 0 && env.Rank == 1 {
		fmt.Printf("VICTIM EXITS rank=%d attempt=%d\n", env.Rank, env.RestartCount)
		os.Exit(7)
	}
	if err := checkTensors("sum", check, func(i, k int) float64 { return float64(3*(i+1) + 2*(k%5)) }); err != nil {
		return err
	}
	if err := g.Barrier(); err != nil {
		return err
	}
	return g.Close()
}

// pythonScenario mirrors testdata/pyrank.py call for call.
func pythonScenario(env Env, opts Options) error {
	g, err := Init(env, opts)
	if err != nil {
		return err
	}
	ws := env.WorldSize
	specs := []spec{{shape: []int64{1000}, dtype: gotch.Float}, {shape: []int64{10}, dtype: gotch.Float}}
	args, check := makeTensors(env.Rank, specs)
	defer dropAll(args, check)
	if err := g.AllReduceSum(args); err != nil { // one bucket of 1010 floats
		return err
	}
	tri := float64(ws * (ws + 1) / 2)
	if err := checkTensors("sum", check, func(i, k int) float64 { return float64(i+1)*tri + float64(ws*(k%5)) }); err != nil {
		return err
	}
	c := filled(env.Rank, 0, []int64{20}, gotch.Float)
	defer c.MustDrop()
	if err := g.Broadcast([]*ts.Tensor{c}, 0); err != nil {
		return err
	}
	if err := checkTensors("broadcast", []*ts.Tensor{c}, func(_, k int) float64 { return float64(1 + k%5) }); err != nil {
		return err
	}
	got, err := g.AllReduceFloat64([]float64{float64(env.Rank + 1), 0.25})
	if err != nil {
		return err
	}
	if got[0] != tri || got[1] != 0.25*float64(ws) {
		return fmt.Errorf("AllReduceFloat64 = %v", got)
	}
	if err := g.Barrier(); err != nil {
		return err
	}
	return g.Close() // a barrier: pyrank.py ends with one
}

func benchScenario(env Env, opts Options) error {
	g, err := Init(env, opts)
	if err != nil {
		return err
	}
	var specs []spec
	for i := 0; i < 150; i++ {
		n := int64(1000 + (i%10)*2000) // 4 KB to 76 KB each, 6 MB in all
		specs = append(specs, spec{shape: []int64{n}, dtype: gotch.Float})
	}
	args, check := makeTensors(env.Rank, specs)
	defer dropAll(args, check)
	measure := func(name string, f func() error) error {
		var ds []time.Duration
		for i := 0; i < 30; i++ {
			start := time.Now()
			if err := f(); err != nil {
				return err
			}
			ds = append(ds, time.Since(start))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		fmt.Printf("BENCH %s: median %v, p90 %v\n", name, ds[len(ds)/2].Round(10*time.Microsecond), ds[len(ds)*9/10].Round(10*time.Microsecond))
		return nil
	}
	if err := measure("150 tensors (6 MB) in buckets", func() error { return g.AllReduceMean(args) }); err != nil {
		return err
	}
	if err := measure("150 tensors one by one", func() error {
		for _, a := range args {
			if err := g.AllReduceMean([]*ts.Tensor{a}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	return g.Close()
}
