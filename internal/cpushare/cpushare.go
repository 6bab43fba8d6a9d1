// Package cpushare measures how much of this process's CPUs other processes
// keep busy, so that a CPU job can size its libtorch threads to the cores
// that are actually free. libgomp's threads spin while they wait for work;
// two jobs whose threads together outnumber the cores then take turns
// spinning on each other's cores and run many times slower than half their
// solo speed, while one thread a core keeps each near it.
package cpushare

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ErrUnsupported is returned where the kernel's CPU accounting
// (/proc/stat, /proc/self/stat) cannot be read.
var ErrUnsupported = errors.New("cpushare: no /proc CPU accounting here")

// Meter samples the CPU time of this process's CPUs and of the process
// itself; Others reports what other processes used between two samples.
type Meter struct {
	cpus []int // the CPUs this process may run on (Cpus_allowed_list)
	last sample
}

// sample is one reading of the counters, in clock ticks.
type sample struct {
	busy, total uint64 // of the CPUs in Meter.cpus: non-idle and all time
	own         uint64 // this process's user + system time
}

// New returns a Meter of the CPUs this process may run on, with a first
// sample taken.
func New() (*Meter, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	cpus, err := allowedCPUs(status)
	if err != nil {
		return nil, err
	}
	m := &Meter{cpus: cpus}
	if m.last, err = m.read(); err != nil {
		return nil, err
	}
	return m, nil
}

// CPUs is the number of CPUs the process may run on.
func (m *Meter) CPUs() int { return len(m.cpus) }

// Others returns how many of the process's CPUs other processes kept busy,
// on average, since the last call (or New): 1.5 means one and a half CPUs'
// worth of time went to other processes.
func (m *Meter) Others() (float64, error) {
	now, err := m.read()
	if err != nil {
		return 0, err
	}
	prev := m.last
	m.last = now
	total := float64(now.total - prev.total)
	if total <= 0 || now.busy < prev.busy || now.own < prev.own {
		return 0, nil // no time passed, or a counter went back: nothing to say
	}
	others := float64(now.busy-prev.busy) - float64(now.own-prev.own)
	return max(0, others/total*float64(len(m.cpus))), nil
}

// read takes a sample of /proc/stat and /proc/self/stat.
func (m *Meter) read() (sample, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return sample{}, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	defer f.Close()
	s, err := cpuTicks(f, m.cpus)
	if err != nil {
		return s, err
	}
	self, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return s, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	s.own, err = processTicks(self)
	return s, err
}

// cpuTicks sums the busy and total ticks of the given CPUs' lines of
// /proc/stat ("cpuN user nice system idle iowait irq softirq steal ...";
// idle and iowait are not busy; guest time is already in user).
func cpuTicks(r io.Reader, cpus []int) (sample, error) {
	want := map[string]bool{}
	for _, c := range cpus {
		want["cpu"+strconv.Itoa(c)] = true
	}
	var s sample
	found := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 9 || !want[fields[0]] {
			continue
		}
		for i, f := range fields[1:9] {
			v, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return s, fmt.Errorf("/proc/stat: %s: field %q: %v", fields[0], f, err)
			}
			s.total += v
			if i != 3 && i != 4 { // idle, iowait
				s.busy += v
			}
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("/proc/stat: %w", err)
	}
	if found != len(cpus) {
		return s, fmt.Errorf("%w: /proc/stat has %d of the process's %d CPUs", ErrUnsupported, found, len(cpus))
	}
	return s, nil
}

// processTicks is utime + stime of a /proc/PID/stat line (fields 14 and
// 15, counted after the command name, which may hold spaces).
func processTicks(stat []byte) (uint64, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("/proc/self/stat: no command name in %q", stat)
	}
	fields := strings.Fields(string(stat[end+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/self/stat: %d fields after the name, want at least 13", len(fields))
	}
	var sum uint64
	for _, f := range fields[11:13] { // utime, stime (fields 14 and 15 of the line)
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/self/stat: %q: %v", f, err)
		}
		sum += v
	}
	return sum, nil
}

// allowedCPUs parses the Cpus_allowed_list line of /proc/self/status
// ("0-3,8,10-11").
func allowedCPUs(status []byte) ([]int, error) {
	for _, line := range strings.Split(string(status), "\n") {
		list, ok := strings.CutPrefix(line, "Cpus_allowed_list:")
		if !ok {
			continue
		}
		var cpus []int
		for _, part := range strings.Split(strings.TrimSpace(list), ",") {
			lo, hi, isRange := strings.Cut(part, "-")
			a, err1 := strconv.Atoi(lo)
			b, err2 := a, error(nil)
			if isRange {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 != nil || err2 != nil || b < a {
				return nil, fmt.Errorf("/proc/self/status: Cpus_allowed_list %q: bad part %q", list, part)
			}
			for c := a; c <= b; c++ {
				cpus = append(cpus, c)
			}
		}
		return cpus, nil
	}
	return nil, fmt.Errorf("%w: /proc/self/status has no Cpus_allowed_list", ErrUnsupported)
}

// Threads is how many threads a job that may use up to limit threads on
// cpus CPUs should run while other processes keep others CPUs busy: the
// CPUs they leave free (a CPU counts as taken from 0.6 of it), at least 1
// and at most limit.
func Threads(cpus int, others float64, limit int) int {
	free := cpus - int(others+0.4)
	return max(1, min(limit, free))
}
