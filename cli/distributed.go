package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gsrmt/gsrmt/internal/dist"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/gsrmt/gsrmt/train"
	"github.com/sugarme/gotch"
	"github.com/urfave/cli/v2"
)

// distFlags choose how a training rank joins its group (docs/DISTRIBUTED.md).
func distFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "dist-backend", Value: "auto", Usage: "collectives of a distributed run: auto (nccl on CUDA, gloo on the CPU), gloo or nccl"},
		&cli.DurationFlag{Name: "dist-timeout", Value: dist.DefaultTimeout, Usage: "how long a rank waits for the others before it fails (a dead or hung rank)"},
		&cli.IntFlag{Name: "nproc", Usage: "start this many local ranks (like torchrun --nproc_per_node, no Python needed)"},
	}
}

// joinGroup joins the data-parallel group the environment describes
// (torchrun, Slurm, or RANK/WORLD_SIZE set by hand) and fits the options to
// the rank: its share of the CPUs unless --threads says otherwise, and
// cuda:LOCAL_RANK on CUDA. It returns nil for a single process.
func joinGroup(c *cli.Context, o *train.Options) (*dist.Group, error) {
	env, err := dist.EnvFromOS()
	if err != nil {
		return nil, usagef("distributed environment: %v", err)
	}
	if !env.Distributed() {
		if c.IsSet("dist-backend") {
			return nil, usagef("--dist-backend %s: this is a single process (WORLD_SIZE unset or 1): launch with torchrun, srun or --nproc", c.String("dist-backend"))
		}
		return nil, nil
	}
	backend := c.String("dist-backend")
	if backend == "auto" {
		backend = ""
	} else if err := oneOfFlag("dist-backend", backend, []string{"auto", "gloo", "nccl"}); err != nil {
		return nil, err
	}
	if c.Duration("dist-timeout") <= 0 {
		return nil, usagef("--dist-timeout %v: want a positive duration, e.g. 10m", c.Duration("dist-timeout"))
	}
	if o.Device.Name == "CUDA" {
		if n := torch.CUDADeviceCount(); env.LocalRank >= n {
			return nil, fmt.Errorf("rank %d: LOCAL_RANK %d but libtorch sees %d CUDA devices on this node", env.Rank, env.LocalRank, n)
		}
		o.Device = gotch.CudaBuilder(uint(env.LocalRank))
	}
	if !c.IsSet("threads") && o.Device == gotch.CPU {
		// Ranks that share a node share its cores: OpenMP threads that wait
		// for cores spin and slow every rank down many times over.
		o.Threads = max(1, runtime.NumCPU()/max(1, env.LocalWorldSize))
		if err := torch.SetNumThreads(o.Threads); err != nil {
			return nil, err
		}
	}
	g, err := dist.Init(env, dist.Options{Backend: backend, Timeout: c.Duration("dist-timeout")})
	if err != nil {
		return nil, fmt.Errorf("join the group (%s): %w", env, err)
	}
	fmt.Fprintf(c.App.ErrWriter, "rank %d of %d joined (%s, %s backend, %d threads)\n", env.Rank, env.WorldSize, env, g.Backend(), torch.NumThreads())
	return g, nil
}

// injectFault makes this process exit abruptly, as a crash would, after the
// step that GSRMT_FAULT_EXIT_AFTER_STEP names, on the rank that
// GSRMT_FAULT_RANK names (default 0) and only in torchrun's first attempt:
// the tests of the restart path (--resume auto under torchrun
// --max_restarts) use it. Unset, it does nothing.
func injectFault(o *train.Options) error {
	v := os.Getenv("GSRMT_FAULT_EXIT_AFTER_STEP")
	if v == "" || os.Getenv("TORCHELASTIC_RESTART_COUNT") > "0" {
		return nil
	}
	step, err := strconv.ParseInt(v, 10, 64)
	if err != nil || step < 1 {
		return usagef("GSRMT_FAULT_EXIT_AFTER_STEP=%q: want a step number", v)
	}
	rank, _ := strconv.Atoi(os.Getenv("GSRMT_FAULT_RANK"))
	if o.Group != nil && o.Group.Rank() != rank {
		return nil
	}
	o.OnStep = func(s int64) {
		if s == step {
			fmt.Fprintf(os.Stderr, "GSRMT_FAULT_EXIT_AFTER_STEP: exiting after step %d\n", s)
			os.Exit(3)
		}
	}
	return nil
}

// launchLocal runs the command again as n local ranks (--nproc n), with the
// variables torchrun would set, and waits for them. The first rank that
// fails stops the others; its exit status is the launcher's.
func launchLocal(c *cli.Context, n int) error {
	if _, set := os.LookupEnv("WORLD_SIZE"); set {
		return usagef("--nproc %d: WORLD_SIZE is already set (this process is a rank of a launched job): drop --nproc", n)
	}
	port, err := dist.FreePort()
	if err != nil {
		return fmt.Errorf("--nproc: pick a port for the store: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("--nproc: %w", err)
	}
	args := withoutFlag(os.Args[1:], "nproc")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for rank := 0; rank < n; rank++ {
		cmd := exec.CommandContext(ctx, self, args...)
		cmd.Stdout, cmd.Stderr = c.App.Writer, c.App.ErrWriter
		cmd.Env = append(os.Environ(), "RANK="+strconv.Itoa(rank), "LOCAL_RANK="+strconv.Itoa(rank),
			"WORLD_SIZE="+strconv.Itoa(n), "LOCAL_WORLD_SIZE="+strconv.Itoa(n),
			"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port))
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 30 * time.Second
		if err := cmd.Start(); err != nil {
			cancel()
			return fmt.Errorf("--nproc: start rank %d: %w", rank, err)
		}
		wg.Add(1)
		go func(rank int) {
			defer wg.Done()
			if err := cmd.Wait(); err != nil && ctx.Err() == nil {
				errs[rank] = fmt.Errorf("rank %d: %w", rank, err)
				cancel() // stop the other ranks
			}
		}(rank)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == exitUsage {
			return usageError{err.Error()}
		}
		return fmt.Errorf("--nproc %d: %w", n, err)
	}
	return nil
}

// withoutFlag removes --name VALUE and --name=VALUE from args.
func withoutFlag(args []string, name string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--"+name || a == "-"+name:
			i++ // and its value
		case strings.HasPrefix(a, "--"+name+"=") || strings.HasPrefix(a, "-"+name+"="):
		default:
			out = append(out, a)
		}
	}
	return out
}
