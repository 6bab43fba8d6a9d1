package main

import (
	"github.com/gsrmt/gsrmt/train"
	"github.com/sugarme/gotch"
	"github.com/urfave/cli/v2"
)

// cudaSpeedFlags are the CUDA speed settings of train, eval, bench and
// predict (train.CUDASpeed): on by default, as timm's train.py sets them on
// CUDA; without effect on the CPU.
func cudaSpeedFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "tf32", Value: true, Usage: "CUDA: let float32 matmuls and convolutions use TF32 tensor cores (--tf32=false: full float32); no effect on the CPU"},
		&cli.BoolFlag{Name: "cudnn-benchmark", Value: true, Usage: "CUDA: cuDNN times its convolution algorithms for each new input shape and keeps the fastest; no effect on the CPU"},
	}
}

// cudaSpeed resolves --tf32 and --cudnn-benchmark for a run on dev: the
// flags' values (default on) on a CUDA device, both off on the CPU.
func cudaSpeed(c *cli.Context, dev gotch.Device) train.CUDASpeed {
	return train.CUDASpeed{TF32: c.Bool("tf32"), CuDNNBenchmark: c.Bool("cudnn-benchmark")}.On(dev)
}
