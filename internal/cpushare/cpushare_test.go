package cpushare

import (
	"math"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestThreads(t *testing.T) {
	for _, c := range []struct {
		cpus   int
		others float64
		limit  int
		want   int
	}{
		{2, 0, 2, 2},     // alone
		{2, 0.5, 2, 2},   // half a CPU busy elsewhere: not a CPU
		{2, 0.6, 2, 1},   // from 0.6 a CPU counts as taken
		{2, 1.9, 2, 1},   // never below one thread
		{2, 3.0, 2, 1},   //
		{8, 2.0, 8, 6},   // the free CPUs
		{8, 0, 4, 4},     // never above the limit
		{16, 7.7, 16, 8}, // 7.7 rounds to 8 taken
	} {
		if got := Threads(c.cpus, c.others, c.limit); got != c.want {
			t.Errorf("Threads(%d, %g, %d) = %d, want %d", c.cpus, c.others, c.limit, got, c.want)
		}
	}
}

func TestParsers(t *testing.T) {
	cpus, err := allowedCPUs([]byte("Name:\tx\nCpus_allowed:\tff\nCpus_allowed_list:\t0-2,5,7-8\n"))
	if err != nil || len(cpus) != 6 || cpus[0] != 0 || cpus[2] != 2 || cpus[3] != 5 || cpus[5] != 8 {
		t.Errorf("allowedCPUs = %v, %v; want [0 1 2 5 7 8]", cpus, err)
	}
	if _, err := allowedCPUs([]byte("Cpus_allowed_list:\t3-1\n")); err == nil {
		t.Error("a backwards range was accepted")
	}
	stat := "cpu  10 20 30 40 50 60 70 80 90 100\n" +
		"cpu0 1 2 3 4 5 6 7 8 9 10\n" +
		"cpu1 100 0 100 1000 7 1 1 0 0 0\n" +
		"cpu2 5 5 5 5 5 5 5 5 5 5\n"
	s, err := cpuTicks(strings.NewReader(stat), []int{0, 1})
	// cpu0: busy 1+2+3+6+7+8 = 27 of 36; cpu1: busy 100+0+100+1+1+0 = 202 of 1209.
	if err != nil || s.busy != 27+202 || s.total != 36+1209 {
		t.Errorf("cpuTicks = %+v, %v; want busy 229 of 1245", s, err)
	}
	if _, err := cpuTicks(strings.NewReader(stat), []int{0, 4}); err == nil {
		t.Error("a CPU missing from /proc/stat was not reported")
	}
	own, err := processTicks([]byte("4242 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 311 22 13 14 15"))
	if err != nil || own != 333 {
		t.Errorf("processTicks = %d, %v; want utime 311 + stime 22", own, err)
	}
}

// Two processes that spin on this machine's CPUs show up as others' time,
// and the meter's own process's spinning does not.
func TestOthersSeesOtherProcesses(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("cpushare reads Linux's /proc")
	}
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	// Alone (but for whatever else runs here): this process spins one CPU.
	spin(300 * time.Millisecond)
	alone, err := m.Others()
	if err != nil {
		t.Fatal(err)
	}
	var procs []*exec.Cmd
	for i := 0; i < m.CPUs(); i++ {
		p := exec.Command("sh", "-c", "while :; do :; done")
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	defer func() {
		for _, p := range procs {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	}()
	if _, err := m.Others(); err != nil { // start the window with the spinners running
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	busy, err := m.Others()
	if err != nil {
		t.Fatal(err)
	}
	// At least 80 % of the CPUs, and half a CPU more than before the spinners
	// unless other jobs already kept the CPUs near full (a busy CI machine):
	// others cannot rise past the CPUs there are.
	want := math.Max(0.8*float64(m.CPUs()), math.Min(alone+0.5, 0.95*float64(m.CPUs())))
	if busy < want {
		t.Errorf("with %d spinning processes others = %.2f CPUs (alone %.2f), want at least %.2f", m.CPUs(), busy, alone, want)
	}
}

// spin keeps this process's thread busy for d.
func spin(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
	}
}
