package sysmon

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// voluntarySwitches reads voluntary_ctxt_switches of thread tid.
func voluntarySwitches(t *testing.T, tid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no voluntary_ctxt_switches in /proc/self/task/%d/status", tid)
	return 0
}

// spin runs Go code without system calls or allocation for d.
func spin(d time.Duration) uint64 {
	var x uint64 = 1
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		for i := 0; i < 100000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	return x
}

var sink uint64

func TestQuietLowersTheMonitorThread(t *testing.T) {
	runtime.LockOSThread()
	caller := syscall.Gettid()
	tid, err := Quiet(2 * time.Second)
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatal(err)
	}
	if tid == caller || tid == os.Getpid() {
		t.Fatalf("Quiet chose thread %d, the caller's or the main thread", tid)
	}
	if p, err := policy(tid); err != nil || p != schedIdle {
		t.Fatalf("thread %d: policy %d (%v), want SCHED_IDLE (5)", tid, p, err)
	}
	if again, err := Quiet(time.Second); err != nil || again != tid || QuietTID() != tid {
		t.Fatalf("second Quiet: %d, %v; QuietTID %d; want %d", again, err, QuietTID(), tid)
	}
	// sysmon wakes at least every 10 ms while a goroutine runs, so during
	// pure Go code (no system calls, no allocation, no locked thread whose
	// preemption would hand its P to another M) it keeps waking, where a
	// parked M would not wake at all. At SCHED_IDLE on a machine whose CPUs
	// are busy (CI runs test binaries side by side) it waits for idle CPU
	// time, 50 ms or more a wake-up, so the test gives it up to 10 s.
	const want = 5
	before := voluntarySwitches(t, tid)
	deadline := time.Now().Add(10 * time.Second)
	woke := 0
	for woke < want && time.Now().Before(deadline) {
		sink += spin(50 * time.Millisecond)
		woke = voluntarySwitches(t, tid) - before
	}
	if woke < want {
		t.Fatalf("thread %d woke %d times in 10 s of a running goroutine, want %d; sysmon wakes every 20 us to 10 ms", tid, woke, want)
	}
}

func TestRestoreResetsInheritedIdleThreads(t *testing.T) {
	quiet, err := Quiet(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// A thread that inherited SCHED_IDLE, as one the runtime starts from
	// sysmon would.
	tidc, done := make(chan int), make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid := syscall.Gettid()
		if err := setPolicy(tid, schedIdle); err != nil {
			t.Error(err)
		}
		tidc <- tid
		<-done
	}()
	tid := <-tidc
	defer close(done)
	if p, _ := policy(tid); p != schedIdle {
		t.Fatalf("thread %d: policy %d after setting SCHED_IDLE", tid, p)
	}
	n, err := Restore()
	if err != nil {
		t.Fatal(err)
	}
	if n < 1 {
		t.Fatalf("Restore changed %d threads, want at least 1", n)
	}
	if p, _ := policy(tid); p != schedOther {
		t.Fatalf("thread %d: policy %d after Restore, want SCHED_OTHER (0)", tid, p)
	}
	if p, _ := policy(quiet); p != schedIdle {
		t.Fatalf("Restore changed the monitor thread %d to policy %d", quiet, p)
	}
}
