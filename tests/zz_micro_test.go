package tests

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/gsrmt/gsrmt/train"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

func TestZZMicro(t *testing.T) {
	runtime.LockOSThread()
	torch.KeepFreedMemory()
	torch.SetNumThreads(2)
	v := os.Getenv("V")
	cfg, _ := gsrmt.PresetConfig(v, "nano", 100)
	m, _ := gsrmt.New(cfg, gotch.CPU)
	x := ts.MustRandn([]int64{64, 3, 32, 32}, gotch.Float, gotch.CPU)
	opt, _ := train.NewAdamW(m.Trainable(), train.DefaultAdamW())
	labels := ts.MustOfSlice(make([]int64, 64))
	for i := 0; i < 3; i++ {
		opt.ZeroGrad()
		y, _ := m.Forward(x, true)
		loss, _ := train.CrossEntropy(y, labels)
		loss.Backward()
		loss.MustDrop()
		y.MustDrop()
		opt.Update(1e-4)
	}
	ev := func() string {
		var r0, r1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
		st := time.Now()
		torch.NoGrad(func() {
			y, _ := m.Forward(x, false)
			y.MustDrop()
		})
		d := time.Since(st)
		syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
		return fmt.Sprintf("%.1f/%d", float64(d.Microseconds())/1000, r1.Minflt-r0.Minflt)
	}
	var a []string
	n := 10
	if os.Getenv("N") != "" {
		fmt.Sscan(os.Getenv("N"), &n)
	}
	for i := 0; i < n; i++ {
		a = append(a, ev())
	}
	fmt.Println(v, "eval ms/faults", a)
}
