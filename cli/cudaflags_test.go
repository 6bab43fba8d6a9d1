package main

import (
	"testing"

	"github.com/gsrmt/gsrmt/train"
	"github.com/sugarme/gotch"
	"github.com/urfave/cli/v2"
)

// --tf32 and --cudnn-benchmark are on by default with a CUDA device, follow
// an explicit value there, and are off on the CPU whatever the flags say.
func TestCUDASpeedFlags(t *testing.T) {
	cuda := gotch.CudaBuilder(0)
	cases := []struct {
		args []string
		dev  gotch.Device
		want train.CUDASpeed
	}{
		{nil, cuda, train.CUDASpeed{TF32: true, CuDNNBenchmark: true}},
		{[]string{"--tf32=false"}, cuda, train.CUDASpeed{TF32: false, CuDNNBenchmark: true}},
		{[]string{"--cudnn-benchmark=false"}, cuda, train.CUDASpeed{TF32: true, CuDNNBenchmark: false}},
		{nil, gotch.CPU, train.CUDASpeed{}},
		{[]string{"--tf32", "--cudnn-benchmark"}, gotch.CPU, train.CUDASpeed{}},
	}
	for _, tc := range cases {
		var got train.CUDASpeed
		app := &cli.App{Flags: cudaSpeedFlags(), Action: func(c *cli.Context) error {
			got = cudaSpeed(c, tc.dev)
			return nil
		}}
		if err := app.Run(append([]string{"gsrmt-cli"}, tc.args...)); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if got != tc.want {
			t.Errorf("%q on %s: %+v, want %+v", tc.args, train.DeviceName(tc.dev), got, tc.want)
		}
	}
	// train, eval and bench take the flags; a CPU run's options hold both off.
	for _, cmd := range []*cli.Command{trainCommand(), evalCommand(), benchCommand()} {
		names := map[string]bool{}
		for _, f := range cmd.Flags {
			names[f.Names()[0]] = true
		}
		if !names["tf32"] || !names["cudnn-benchmark"] {
			t.Errorf("%s has no --tf32 or --cudnn-benchmark", cmd.Name)
		}
	}
	o, err := trainOptionsFor(t, "--dataset", "fashion-mnist", "--tf32")
	if err != nil || o.CUDASpeed != (train.CUDASpeed{}) {
		t.Errorf("train --device cpu --tf32: %v, CUDASpeed %+v, want both off", err, o.CUDASpeed)
	}
}
