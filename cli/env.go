package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/gsrmt/gsrmt/internal/dist"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
	"github.com/urfave/cli/v2"
)

// envReport is what `gsrmt-cli env` prints.
type envReport struct {
	LibtorchVersion string   `json:"libtorch_version"`
	LibtorchRoot    string   `json:"libtorch_root"`
	LibtorchLib     string   `json:"libtorch_lib"`
	LibtorchSource  string   `json:"libtorch_source"`
	CUDABuild       bool     `json:"cuda_build"`
	CUDAAvailable   bool     `json:"cuda_available"`
	CUDADevices     int      `json:"cuda_devices"`
	Threads         int      `json:"threads"`
	InteropThreads  int      `json:"interop_threads"`
	CPUs            int      `json:"cpus"`
	BLAS            string   `json:"blas"`
	ReferenceBLAS   bool     `json:"reference_blas"`
	BatchMatmul     string   `json:"batch_matmul"` // how the attention's products run on the CPU (torch.BatchMatmulPath)
	GoSysmon        string   `json:"go_sysmon"`
	DistBackends    []string `json:"dist_backends"` // collectives this build has for data-parallel training
	GotchVersion    string   `json:"gotch_version"`
	StubbedOpsCount int      `json:"stubbed_ops"`
	StubbedOps      []string `json:"stubbed_op_names,omitempty"`
	CXX11ABI        int      `json:"cxx11_abi"`
	GoVersion       string   `json:"go_version"`
	TensorCheck     string   `json:"tensor_check"`
	// TF32Matmul, TF32CuDNN and CuDNNBenchmark are libtorch's own settings
	// of CUDA float32 math (torch.TF32, torch.CuDNNBenchmark), which train,
	// eval, bench and predict replace on CUDA (--tf32, --cudnn-benchmark);
	// CUDAMathError says why they could not be read.
	TF32Matmul     bool   `json:"tf32_matmul"`
	TF32CuDNN      bool   `json:"tf32_cudnn"`
	CuDNNBenchmark bool   `json:"cudnn_benchmark"`
	CUDAMathError  string `json:"cuda_math_error,omitempty"`
}

func envCommand() *cli.Command {
	return &cli.Command{
		Name:  "env",
		Usage: "show the libtorch, CUDA devices, threads and gotch build this binary uses",
		Description: `Prints what setup-libtorch.sh chose and what libtorch reports at run time.

Examples:
   gsrmt-cli env
   gsrmt-cli env --json
   gsrmt-cli env --stubs      # also list the gotch wrappers compiled as stubs`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
			&cli.BoolFlag{Name: "stubs", Usage: "list the names of the stubbed gotch wrappers"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("env takes no arguments, got %q", c.Args().Slice())
			}
			r := collectEnv()
			if !c.Bool("stubs") && !c.Bool("json") {
				r.StubbedOps = nil
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			writeEnv(c.App.Writer, r)
			return nil
		},
	}
}

func collectEnv() envReport {
	b := torch.Build()
	blas := torch.BLASLibrary()
	r := envReport{
		LibtorchVersion: torch.Version(),
		LibtorchRoot:    b.LibtorchRoot,
		LibtorchLib:     b.LibtorchLib,
		LibtorchSource:  b.LibtorchSource,
		CUDABuild:       b.CUDA,
		CUDAAvailable:   torch.CUDAAvailable(),
		CUDADevices:     torch.CUDADeviceCount(),
		Threads:         torch.NumThreads(),
		InteropThreads:  torch.NumInteropThreads(),
		CPUs:            runtime.NumCPU(),
		BLAS:            blas,
		ReferenceBLAS:   torch.ReferenceBLAS(blas),
		BatchMatmul:     torch.BatchMatmulPath(),
		GoSysmon:        sysmonState,
		DistBackends:    dist.Available(),
		GotchVersion:    b.GotchVersion,
		StubbedOpsCount: len(b.StubbedOps),
		StubbedOps:      b.StubbedOps,
		CXX11ABI:        b.CXX11ABI,
		GoVersion:       runtime.Version(),
		TensorCheck:     tensorCheck(),
	}
	var err1, err2 error
	r.TF32Matmul, r.TF32CuDNN, err1 = torch.TF32()
	r.CuDNNBenchmark, err2 = torch.CuDNNBenchmark()
	if err := errors.Join(err1, err2); err != nil {
		r.CUDAMathError = err.Error()
	}
	return r
}

// tensorCheck runs a small computation with autograd through gotch and
// compares it with values worked out by hand: for x = (1, 2, 3),
// y = sum(x*x + 2x) = 26 and dy/dx = 2x + 2 = (4, 6, 8).
func tensorCheck() string {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	x, err := ts.OfSlice([]float32{1, 2, 3})
	if err != nil {
		return "failed: " + err.Error()
	}
	defer x.MustDrop()
	x.MustRequiresGrad_(true)
	sq := x.MustMul(x, false)
	twice := x.MustAdd(x, false)
	sum := sq.MustAdd(twice, true)
	twice.MustDrop()
	y := sum.MustSum(gotch.Float, true)
	defer y.MustDrop()
	y.MustBackward()
	g := x.MustGrad(false)
	defer g.MustDrop()
	yv := y.Vals().([]float32)[0]
	gv := g.Vals().([]float32)
	if yv != 26 || gv[0] != 4 || gv[1] != 6 || gv[2] != 8 {
		return fmt.Sprintf("FAILED: y = %v (want 26), dy/dx = %v (want [4 6 8])", yv, gv)
	}
	return "ok (y = sum(x*x + 2x) = 26, dy/dx = [4 6 8] on the CPU)"
}

func writeEnv(w io.Writer, r envReport) {
	cuda := "no (CPU build of libtorch)"
	if r.CUDABuild {
		cuda = fmt.Sprintf("yes, %d device(s) available", r.CUDADevices)
		if !r.CUDAAvailable {
			cuda = "CUDA build, but no device is available"
		}
	}
	fmt.Fprintf(w, "libtorch:        %s (%s)\n", r.LibtorchVersion, r.LibtorchSource)
	fmt.Fprintf(w, "libtorch path:   %s (libraries in %s)\n", r.LibtorchRoot, r.LibtorchLib)
	fmt.Fprintf(w, "CUDA:            %s\n", cuda)
	fmt.Fprintf(w, "threads:         %d intra-op, %d inter-op (%d CPUs)\n", r.Threads, r.InteropThreads, r.CPUs)
	switch {
	case r.BLAS == "":
		fmt.Fprintf(w, "BLAS:            built into libtorch (no separate BLAS library loaded)\n")
	case r.ReferenceBLAS:
		fmt.Fprintf(w, "BLAS:            %s: Netlib's reference BLAS, 2-4x slower on the CPU;\n", r.BLAS)
		fmt.Fprintf(w, "                 install OpenBLAS: sudo apt-get install libopenblas0-openmp\n")
	default:
		fmt.Fprintf(w, "BLAS:            %s\n", r.BLAS)
	}
	fmt.Fprintf(w, "batch matmul:    %s (the attention's products on the CPU)\n", r.BatchMatmul)
	fmt.Fprintf(w, "Go sysmon:       %s\n", r.GoSysmon)
	if r.CUDAMathError != "" {
		fmt.Fprintf(w, "CUDA math:       %s\n", r.CUDAMathError)
	} else {
		onOff := map[bool]string{true: "on", false: "off"}
		fmt.Fprintf(w, "CUDA math:       libtorch's defaults TF32 matmul %s, TF32 cuDNN %s, cuDNN benchmark %s; train, eval, bench\n",
			onOff[r.TF32Matmul], onOff[r.TF32CuDNN], onOff[r.CuDNNBenchmark])
		fmt.Fprintf(w, "                 and predict turn all on with a CUDA device (--tf32=false, --cudnn-benchmark=false)\n")
	}
	dists := "none (setup-libtorch.sh found no libgloo-dev headers: scripts/install-deps.sh, then ./setup-libtorch.sh)"
	if len(r.DistBackends) > 0 {
		dists = strings.Join(r.DistBackends, ", ") + " (torchrun, srun or --nproc: docs/DISTRIBUTED.md)"
	}
	fmt.Fprintf(w, "distributed:     %s\n", dists)
	fmt.Fprintf(w, "gotch:           %s, prepared by setup-libtorch.sh (C++ ABI %d)\n", r.GotchVersion, r.CXX11ABI)
	fmt.Fprintf(w, "stubbed ops:     %d gotch wrapper(s) whose ops libtorch %s lacks\n", r.StubbedOpsCount, r.LibtorchVersion)
	if len(r.StubbedOps) > 0 {
		fmt.Fprintf(w, "                 %s\n", strings.Join(r.StubbedOps, " "))
	}
	fmt.Fprintf(w, "go:              %s\n", r.GoVersion)
	fmt.Fprintf(w, "tensor check:    %s\n", r.TensorCheck)
}
