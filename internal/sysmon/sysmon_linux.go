package sysmon

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Scheduling policies of sched_setscheduler(2).
const (
	schedOther = 0
	schedIdle  = 5
)

var (
	mu       sync.Mutex
	quietTID int // sysmon's thread id once Quiet succeeded
)

// Quiet finds the Go runtime's sysmon thread (the only thread that sleeps
// in nanosleep(2): sysmon's usleep; parked threads wait on futexes) by
// sampling /proc/self/task for up to timeout, and sets it to SCHED_IDLE.
// It returns the thread id. Calling it again returns the same thread.
func Quiet(timeout time.Duration) (int, error) {
	mu.Lock()
	defer mu.Unlock()
	if quietTID != 0 {
		return quietTID, nil
	}
	tid, err := find(timeout)
	if err != nil {
		return 0, err
	}
	if err := setPolicy(tid, schedIdle); err != nil {
		return 0, fmt.Errorf("sysmon: set thread %d to SCHED_IDLE: %w", tid, err)
	}
	quietTID = tid
	return tid, nil
}

// QuietTID returns the thread Quiet set to SCHED_IDLE, or 0.
func QuietTID() int {
	mu.Lock()
	defer mu.Unlock()
	return quietTID
}

// Restore sets every thread of the process other than the one Quiet chose
// back to SCHED_OTHER if it runs under SCHED_IDLE (threads that the Go
// runtime started from sysmon inherit its policy) and returns how many it
// changed. It does nothing before Quiet.
func Restore() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	if quietTID == 0 {
		return 0, nil
	}
	tids, err := threads()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, tid := range tids {
		if tid == quietTID {
			continue
		}
		p, err := policy(tid)
		if err != nil || p != schedIdle {
			continue // the thread may have exited
		}
		if err := setPolicy(tid, schedOther); err != nil {
			return n, fmt.Errorf("sysmon: set thread %d back to SCHED_OTHER: %w", tid, err)
		}
		n++
	}
	return n, nil
}

// find samples the threads' current system calls until one thread, and only
// one, has been seen in nanosleep three times.
func find(timeout time.Duration) (int, error) {
	self := syscall.Gettid()
	seen := map[int]int{}
	deadline := time.Now().Add(timeout)
	for samples := 0; ; samples++ {
		tids, err := threads()
		if err != nil {
			return 0, err
		}
		for _, tid := range tids {
			if tid == self {
				continue
			}
			if nr, ok := currentSyscall(tid); ok && nr == syscall.SYS_NANOSLEEP {
				seen[tid]++
			}
		}
		best, n := 0, 0
		for tid, c := range seen {
			if c >= 3 {
				best = tid
				n++
			}
		}
		if n == 1 {
			return best, nil
		}
		if n > 1 {
			return 0, fmt.Errorf("sysmon: %d threads sleep in nanosleep (%v); cannot tell which is the runtime's monitor", n, seen)
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("sysmon: no thread seen in nanosleep within %v (%d samples of /proc/self/task)", timeout, samples+1)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// threads lists the process's thread ids.
func threads() ([]int, error) {
	f, err := os.Open("/proc/self/task")
	if err != nil {
		return nil, fmt.Errorf("sysmon: list threads: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("sysmon: list threads: %w", err)
	}
	tids := make([]int, 0, len(names))
	for _, s := range names {
		if tid, err := strconv.Atoi(s); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// currentSyscall reads /proc/self/task/TID/syscall: the number of the system
// call the thread is blocked in (false while it runs).
func currentSyscall(tid int) (int, bool) {
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/syscall")
	if err != nil {
		return 0, false
	}
	field, _, _ := bytes.Cut(bytes.TrimSpace(b), []byte(" "))
	nr, err := strconv.Atoi(string(field))
	if err != nil {
		return 0, false // "running"
	}
	return nr, true
}

func setPolicy(tid, policy int) error {
	var param struct{ priority int32 }
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(tid), uintptr(policy), uintptr(unsafe.Pointer(&param)))
	if errno != 0 {
		return errno
	}
	return nil
}

// policy returns the scheduling policy of thread tid as sched_getscheduler(2)
// does (0 SCHED_OTHER, 5 SCHED_IDLE).
func policy(tid int) (int, error) {
	r, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETSCHEDULER, uintptr(tid), 0, 0)
	if errno != 0 {
		return 0, fmt.Errorf("sysmon: scheduling policy of thread %d: %w", tid, errno)
	}
	return int(r), nil
}
