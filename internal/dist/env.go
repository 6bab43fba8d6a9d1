package dist

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// DefaultPort is the store's port when MASTER_PORT is not set (PyTorch's).
const DefaultPort = 29500

// Env is where this process stands in a distributed job, as the launcher
// (torchrun, Slurm, or a person) described it in environment variables.
type Env struct {
	Rank           int    // this process's rank, 0 .. WorldSize-1 (RANK, SLURM_PROCID)
	WorldSize      int    // processes in the job (WORLD_SIZE, SLURM_NTASKS)
	LocalRank      int    // rank on this node, the CUDA device to use (LOCAL_RANK, SLURM_LOCALID)
	LocalWorldSize int    // processes on this node (LOCAL_WORLD_SIZE, SLURM_NTASKS_PER_NODE)
	MasterAddr     string // host of the store (MASTER_ADDR; Slurm: the job's first node)
	MasterPort     int    // port of the store (MASTER_PORT, default 29500)
	RestartCount   int    // torchrun's restarts so far (TORCHELASTIC_RESTART_COUNT)
	// AgentStore is true under torchrun's static rendezvous: its agent hosts
	// the store and every rank connects as a client
	// (TORCHELASTIC_USE_AGENT_STORE=True).
	AgentStore bool
	// Launcher names where the values came from: "torchrun", "env" (RANK
	// and WORLD_SIZE set by hand), "slurm", or "" for a single process.
	Launcher string
}

// Distributed reports whether the job has more than one process.
func (e Env) Distributed() bool { return e.WorldSize > 1 }

// String describes the environment in one line, for logs.
func (e Env) String() string {
	if !e.Distributed() {
		return "single process"
	}
	s := fmt.Sprintf("rank %d of %d (local %d of %d), store %s:%d", e.Rank, e.WorldSize, e.LocalRank,
		e.LocalWorldSize, e.MasterAddr, e.MasterPort)
	if e.AgentStore {
		s += fmt.Sprintf(" hosted by torchrun's agent, attempt %d", e.RestartCount)
	}
	if e.Launcher != "" {
		s += ", from " + e.Launcher
	}
	return s
}

// EnvFromOS reads the job's layout from the environment: torchrun's
// variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT, TORCHELASTIC_RESTART_COUNT, TORCHELASTIC_USE_AGENT_STORE)
// when RANK or WORLD_SIZE is set, else Slurm's (SLURM_PROCID, SLURM_NTASKS,
// SLURM_LOCALID, SLURM_NTASKS_PER_NODE or SLURM_TASKS_PER_NODE, the store on
// MASTER_ADDR or the first host of SLURM_JOB_NODELIST), else a single
// process. Set by hand, LOCAL_RANK and LOCAL_WORLD_SIZE default to RANK and
// WORLD_SIZE (one node) and MASTER_PORT to 29500. Inconsistent values are
// errors that name the variables.
func EnvFromOS() (Env, error) { return envFrom(os.LookupEnv) }

// envFrom is EnvFromOS over any lookup function (for tests).
func envFrom(lookup func(string) (string, bool)) (Env, error) {
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	_, hasRank := lookup("RANK")
	_, hasWorld := lookup("WORLD_SIZE")
	switch {
	case hasRank || hasWorld:
		return torchrunEnv(get)
	case get("SLURM_PROCID") != "" && get("SLURM_NTASKS") != "":
		return slurmEnv(get)
	}
	return Env{WorldSize: 1, LocalWorldSize: 1}, nil
}

// intVar parses variable k; def is used when it is empty (required: error).
func intVar(get func(string) string, k string, def int, required bool) (int, error) {
	v := get(k)
	if v == "" {
		if required {
			return 0, fmt.Errorf("dist: %s is not set", k)
		}
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("dist: %s=%q is not a whole number", k, v)
	}
	return n, nil
}

func torchrunEnv(get func(string) string) (Env, error) {
	e := Env{Launcher: "env"}
	var err error
	if get("TORCHELASTIC_RUN_ID") != "" || get("TORCHELASTIC_RESTART_COUNT") != "" {
		e.Launcher = "torchrun"
	}
	if e.WorldSize, err = intVar(get, "WORLD_SIZE", 0, true); err != nil {
		return Env{}, fmt.Errorf("%w (RANK is set: set WORLD_SIZE too, or neither for one process)", err)
	}
	if e.Rank, err = intVar(get, "RANK", 0, e.WorldSize > 1); err != nil {
		return Env{}, fmt.Errorf("%w (WORLD_SIZE=%d: every rank needs RANK)", err, e.WorldSize)
	}
	if e.LocalRank, err = intVar(get, "LOCAL_RANK", e.Rank, false); err != nil {
		return Env{}, err
	}
	if e.LocalWorldSize, err = intVar(get, "LOCAL_WORLD_SIZE", e.WorldSize, false); err != nil {
		return Env{}, err
	}
	if e.RestartCount, err = intVar(get, "TORCHELASTIC_RESTART_COUNT", 0, false); err != nil {
		return Env{}, err
	}
	e.AgentStore = get("TORCHELASTIC_USE_AGENT_STORE") == "True"
	e.MasterAddr = get("MASTER_ADDR")
	if e.MasterPort, err = intVar(get, "MASTER_PORT", DefaultPort, false); err != nil {
		return Env{}, err
	}
	return e, e.check("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
}

func slurmEnv(get func(string) string) (Env, error) {
	e := Env{Launcher: "slurm"}
	var err error
	if e.Rank, err = intVar(get, "SLURM_PROCID", 0, true); err != nil {
		return Env{}, err
	}
	if e.WorldSize, err = intVar(get, "SLURM_NTASKS", 0, true); err != nil {
		return Env{}, err
	}
	if e.LocalRank, err = intVar(get, "SLURM_LOCALID", 0, false); err != nil {
		return Env{}, err
	}
	if e.LocalWorldSize, err = slurmLocalWorldSize(get, e.WorldSize); err != nil {
		return Env{}, err
	}
	if e.MasterPort, err = intVar(get, "MASTER_PORT", DefaultPort, false); err != nil {
		return Env{}, err
	}
	e.MasterAddr = get("MASTER_ADDR")
	if e.MasterAddr == "" && e.WorldSize > 1 {
		list := get("SLURM_JOB_NODELIST")
		if list == "" {
			list = get("SLURM_NODELIST")
		}
		if e.MasterAddr, err = firstSlurmHost(list); err != nil {
			return Env{}, err
		}
	}
	return e, e.check("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE")
}

// slurmLocalWorldSize is SLURM_NTASKS_PER_NODE, else this node's entry of
// SLURM_TASKS_PER_NODE ("4(x2),3": four tasks on each of two nodes, three on
// the third; SLURM_NODEID picks the entry), else the world size.
func slurmLocalWorldSize(get func(string) string, world int) (int, error) {
	if get("SLURM_NTASKS_PER_NODE") != "" {
		return intVar(get, "SLURM_NTASKS_PER_NODE", 0, true)
	}
	spec := get("SLURM_TASKS_PER_NODE")
	if spec == "" {
		return world, nil
	}
	var counts []int
	for _, part := range strings.Split(spec, ",") {
		n, times := part, "1"
		if i := strings.Index(part, "(x"); i >= 0 && strings.HasSuffix(part, ")") {
			n, times = part[:i], part[i+2:len(part)-1]
		}
		c, err1 := strconv.Atoi(n)
		t, err2 := strconv.Atoi(times)
		if err1 != nil || err2 != nil || c < 1 || t < 1 {
			return 0, fmt.Errorf("dist: SLURM_TASKS_PER_NODE=%q: cannot read %q (want forms like 4(x2),3)", spec, part)
		}
		for ; t > 0 && len(counts) <= 1<<16; t-- {
			counts = append(counts, c)
		}
	}
	node, err := intVar(get, "SLURM_NODEID", 0, false)
	if err != nil {
		return 0, err
	}
	if node < 0 || node >= len(counts) {
		return 0, fmt.Errorf("dist: SLURM_NODEID=%d but SLURM_TASKS_PER_NODE=%q lists %d nodes", node, spec, len(counts))
	}
	return counts[node], nil
}

// firstSlurmHost returns the first host of a Slurm node list: "node07",
// "node[07-09,12]" and "a,b" are understood; anything more involved is an
// error asking for MASTER_ADDR.
func firstSlurmHost(list string) (string, error) {
	if list == "" {
		return "", fmt.Errorf("dist: Slurm job without MASTER_ADDR or SLURM_JOB_NODELIST: set MASTER_ADDR to the first node's address")
	}
	end, depth := len(list), 0
scan:
	for i, r := range list {
		switch r {
		case '[':
			depth++
		case ']':
			depth--
		case ',':
			if depth == 0 {
				end = i
				break scan
			}
		}
	}
	first := list[:end]
	open := strings.IndexByte(first, '[')
	if open < 0 {
		return first, nil
	}
	closing := strings.IndexByte(first, ']')
	if closing != len(first)-1 || strings.Count(first, "[") != 1 {
		return "", fmt.Errorf("dist: SLURM_JOB_NODELIST=%q is too involved to pick the first host: set MASTER_ADDR (e.g. MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n1))", list)
	}
	inner := first[open+1 : closing]
	if i := strings.IndexAny(inner, ",-"); i >= 0 {
		inner = inner[:i]
	}
	if inner == "" {
		return "", fmt.Errorf("dist: SLURM_JOB_NODELIST=%q: empty range: set MASTER_ADDR", list)
	}
	return first[:open] + inner, nil
}

// check reports values that cannot describe a job, naming the variables
// they came from (rank, world, local rank, local world).
func (e Env) check(rankVar, worldVar, localVar, localWorldVar string) error {
	switch {
	case e.WorldSize < 1:
		return fmt.Errorf("dist: %s=%d: want at least 1", worldVar, e.WorldSize)
	case e.Rank < 0 || e.Rank >= e.WorldSize:
		return fmt.Errorf("dist: %s=%d is outside 0..%d (%s=%d)", rankVar, e.Rank, e.WorldSize-1, worldVar, e.WorldSize)
	case e.LocalWorldSize < 1 || e.LocalWorldSize > e.WorldSize:
		return fmt.Errorf("dist: %s=%d: want 1..%d (%s=%d)", localWorldVar, e.LocalWorldSize, e.WorldSize, worldVar, e.WorldSize)
	case e.LocalRank < 0 || e.LocalRank >= e.LocalWorldSize:
		return fmt.Errorf("dist: %s=%d is outside 0..%d (%s=%d)", localVar, e.LocalRank, e.LocalWorldSize-1, localWorldVar, e.LocalWorldSize)
	case e.RestartCount < 0:
		return fmt.Errorf("dist: TORCHELASTIC_RESTART_COUNT=%d: want 0 or more", e.RestartCount)
	}
	if !e.Distributed() {
		return nil
	}
	if e.MasterAddr == "" {
		return fmt.Errorf("dist: %s=%d but MASTER_ADDR is not set: set it to the host of rank 0 (127.0.0.1 on one machine)", worldVar, e.WorldSize)
	}
	if e.MasterPort < 1 || e.MasterPort > 65535 {
		return fmt.Errorf("dist: MASTER_PORT=%d: want 1..65535", e.MasterPort)
	}
	return nil
}

// FreePort asks the kernel for a TCP port that is free on the loopback now,
// for a store that local ranks will host (--nproc, tests).
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
