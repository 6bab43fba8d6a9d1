// Package sysmon keeps the Go runtime's system monitor thread from
// preempting libtorch's OpenMP threads.
//
// A Go program that calls libtorch has one thread more than a Python one:
// sysmon, which the runtime starts before main. While a goroutine spends
// its time in cgo calls, sysmon wakes every 20 us to 10 ms to retake its
// processor and to preempt it, and on a machine where libtorch runs one
// OpenMP thread per CPU each wake-up preempts one of them in the middle of a
// parallel region, which the other threads then wait for at the barrier.
// On the 2-CPU machines this project is measured on, that cost 10-40 % of
// a step (gsrmt-cli bench, nano at 32 px: evaluation 25-30 ms against 18-20
// ms once sysmon ran at SCHED_IDLE, as fast as PyTorch's own 18-20 ms).
//
// Quiet finds sysmon and sets its scheduling policy to SCHED_IDLE, under
// which a waking thread never preempts a running one: sysmon still runs,
// on idle CPU time. Threads that sysmon itself creates inherit the policy;
// Restore puts every other thread of the process back to SCHED_OTHER.
package sysmon

import (
	"errors"
	"os"
	"time"
)

// ErrUnsupported is returned on systems without Linux's SCHED_IDLE.
var ErrUnsupported = errors.New("sysmon: lowering the Go runtime's monitor thread needs Linux")

// ErrDisabled is returned by QuietUnlessDisabled when GSRMT_SYSMON=normal.
var ErrDisabled = errors.New("sysmon: left at normal priority (GSRMT_SYSMON=normal)")

// QuietUnlessDisabled calls Quiet unless the environment sets
// GSRMT_SYSMON=normal, in which case it returns ErrDisabled.
func QuietUnlessDisabled(timeout time.Duration) (int, error) {
	if os.Getenv("GSRMT_SYSMON") == "normal" {
		return 0, ErrDisabled
	}
	return Quiet(timeout)
}
