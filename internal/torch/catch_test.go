package torch

import (
	"errors"
	"strings"
	"testing"
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
