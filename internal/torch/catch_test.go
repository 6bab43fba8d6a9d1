package torch

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

func TestErrorKeepsOneLine(t *testing.T) {
	long := errors.New("Libtorch API Error: [enforce fail at alloc_cpu.cpp:75] . DefaultCPUAllocator: can't allocate memory: you tried to allocate 17179869184 bytes.\nException raised from alloc_cpu at ../c10/core/impl/alloc_cpu.cpp:75 (most recent call first):\nframe #0: c10::ThrowEnforceNotMet\nframe #1: ...")
	err := Error(long)
	if strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "libtorch: [enforce fail") {
		t.Errorf("Error: %q", err)
	}
	if !errors.Is(err, ErrOutOfMemory) || !errors.Is(err, long) {
		t.Errorf("Error(%q) should match ErrOutOfMemory and wrap the original", err)
	}
	short := errors.New("one line")
	if Error(short) != short || Error(nil) != nil {
		t.Error("a one-line or nil error should be returned as it is")
	}
}

func caught(f func()) (err error) {
	defer Catch(&err, "doing it")
	f()
	return nil
}

func TestCatchConvertsLibtorchPanicsOnly(t *testing.T) {
	if err := caught(func() { panic(errors.New("libtorch: shape mismatch\nframe #0: x")) }); err == nil || err.Error() != "doing it: libtorch: shape mismatch" {
		t.Errorf("a gotch panic: %v", err)
	}
	if err := caught(func() { panic("a string") }); err == nil || err.Error() != "doing it: a string" {
		t.Errorf("a string panic: %v", err)
	}
	if err := caught(func() {}); err != nil {
		t.Errorf("no panic: %v", err)
	}
	defer func() {
		if r := recover(); r == nil {
			t.Error("a nil dereference was swallowed")
		}
	}()
	var p *struct{ x int }
	_ = caught(func() { _ = p.x })
}

// A libtorch error (here a real allocation failure: 2^61 bytes, which no
// allocator grants and which costs nothing) comes back as one line.
func TestErrorOnARealAllocationFailure(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	x, raw := ts.Empty([]int64{1 << 59}, gotch.Float, gotch.CPU)
	if raw == nil {
		x.MustDrop()
		t.Skip("libtorch allocated 2^61 bytes")
	}
	if !strings.Contains(raw.Error(), "\n") {
		t.Fatalf("gotch's error is one line already: %q", raw)
	}
	err := fmt.Errorf("load x: %w", Error(raw))
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") || !strings.Contains(msg, "libtorch: ") ||
		!strings.Contains(msg, "can't allocate memory") || strings.Contains(msg, "frame #") {
		t.Errorf("error %q, want libtorch's message on one line", msg)
	}
	if !errors.Is(err, ErrOutOfMemory) || errors.Unwrap(errors.Unwrap(err)) != raw {
		t.Errorf("error %v: want ErrOutOfMemory, with gotch's error underneath", err)
	}
	if e := errors.New("one line"); Error(e) != e {
		t.Error("a one-line error was wrapped")
	}
}

// gotch's Must* helpers panic on libtorch's errors in the copy that
// setup-libtorch.sh prepares (tools/gotchprep turns their log.Fatal into
// panic), so Catch returns a shape mismatch as a one-line error instead of
// the process ending.
func TestCatchRecoversAMustHelper(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a := ts.MustOnes([]int64{2, 3}, gotch.Float, gotch.CPU)
	b := ts.MustOnes([]int64{4, 5}, gotch.Float, gotch.CPU)
	defer a.MustDrop()
	defer b.MustDrop()
	err := caught(func() { a.MustMatmul(b, false).MustDrop() })
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "doing it: ") {
		t.Fatalf("a failing MustMatmul: %v", err)
	}
	t.Logf("caught: %v", err)
}
