package dist

import (
	"strings"
	"testing"
)

func lookupFrom(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func TestEnvFromVariables(t *testing.T) {
	cases := []struct {
		name string
		vars map[string]string
		want Env
	}{
		{"nothing set: one process", map[string]string{}, Env{WorldSize: 1, LocalWorldSize: 1}},
		{"torchrun", map[string]string{
			"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "node0",
			"MASTER_PORT": "1234", "TORCHELASTIC_RESTART_COUNT": "2", "TORCHELASTIC_USE_AGENT_STORE": "True",
			"TORCHELASTIC_RUN_ID": "none",
		}, Env{Rank: 1, WorldSize: 4, LocalRank: 1, LocalWorldSize: 2, MasterAddr: "node0", MasterPort: 1234,
			RestartCount: 2, AgentStore: true, Launcher: "torchrun"}},
		{"by hand, one node", map[string]string{"RANK": "2", "WORLD_SIZE": "3", "MASTER_ADDR": "127.0.0.1"},
			Env{Rank: 2, WorldSize: 3, LocalRank: 2, LocalWorldSize: 3, MasterAddr: "127.0.0.1", MasterPort: 29500, Launcher: "env"}},
		{"WORLD_SIZE=1 alone", map[string]string{"WORLD_SIZE": "1"}, Env{WorldSize: 1, LocalWorldSize: 1, MasterPort: 29500, Launcher: "env"}},
		{"torchrun wins over Slurm", map[string]string{"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "5",
			"SLURM_PROCID": "3", "SLURM_NTASKS": "8"},
			Env{Rank: 0, WorldSize: 2, LocalRank: 0, LocalWorldSize: 2, MasterAddr: "h", MasterPort: 5, Launcher: "env"}},
		{"slurm, tasks per node list", map[string]string{
			"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "SLURM_TASKS_PER_NODE": "4(x2)",
			"SLURM_NODEID": "1", "SLURM_JOB_NODELIST": "gpu[07-08]",
		}, Env{Rank: 5, WorldSize: 8, LocalRank: 1, LocalWorldSize: 4, MasterAddr: "gpu07", MasterPort: 29500, Launcher: "slurm"}},
		{"slurm, uneven nodes", map[string]string{
			"SLURM_PROCID": "6", "SLURM_NTASKS": "7", "SLURM_LOCALID": "0", "SLURM_TASKS_PER_NODE": "2(x3),1",
			"SLURM_NODEID": "3", "SLURM_JOB_NODELIST": "a,b,c,d",
		}, Env{Rank: 6, WorldSize: 7, LocalRank: 0, LocalWorldSize: 1, MasterAddr: "a", MasterPort: 29500, Launcher: "slurm"}},
		{"slurm, explicit master", map[string]string{
			"SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_LOCALID": "1", "SLURM_NTASKS_PER_NODE": "2",
			"SLURM_JOB_NODELIST": "x[1-3]-y[2]", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "4000",
		}, Env{Rank: 1, WorldSize: 2, LocalRank: 1, LocalWorldSize: 2, MasterAddr: "10.0.0.1", MasterPort: 4000, Launcher: "slurm"}},
		{"slurm, one task", map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "1"},
			Env{WorldSize: 1, LocalWorldSize: 1, MasterPort: 29500, Launcher: "slurm"}},
	}
	for _, c := range cases {
		got, err := envFrom(lookupFrom(c.vars))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
		if got.Distributed() != (c.want.WorldSize > 1) {
			t.Errorf("%s: Distributed() = %v", c.name, got.Distributed())
		}
	}
}

func TestEnvFromVariablesErrors(t *testing.T) {
	cases := []struct {
		vars map[string]string
		want string // in the error
	}{
		{map[string]string{"RANK": "3", "WORLD_SIZE": "3", "MASTER_ADDR": "h"}, "RANK=3 is outside 0..2"},
		{map[string]string{"RANK": "0", "WORLD_SIZE": "2"}, "MASTER_ADDR is not set"},
		{map[string]string{"RANK": "1"}, "WORLD_SIZE is not set"},
		{map[string]string{"WORLD_SIZE": "2", "MASTER_ADDR": "h"}, "RANK is not set"},
		{map[string]string{"RANK": "0", "WORLD_SIZE": "two"}, `WORLD_SIZE="two" is not a whole number`},
		{map[string]string{"RANK": "0", "WORLD_SIZE": "0"}, "WORLD_SIZE=0: want at least 1"},
		{map[string]string{"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "h"}, "LOCAL_RANK=2 is outside 0..1"},
		{map[string]string{"RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "8", "MASTER_ADDR": "h"}, "LOCAL_WORLD_SIZE=8: want 1..4"},
		{map[string]string{"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "70000"}, "MASTER_PORT=70000"},
		{map[string]string{"SLURM_PROCID": "4", "SLURM_NTASKS": "4", "SLURM_JOB_NODELIST": "n1"}, "SLURM_PROCID=4 is outside 0..3"},
		{map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_JOB_NODELIST": "x[1-3]-y[2]"}, "set MASTER_ADDR"},
		{map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "4"}, "set MASTER_ADDR"},
		{map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_NODELIST": "n1", "SLURM_TASKS_PER_NODE": "2(x2", "SLURM_LOCALID": "0"}, "SLURM_TASKS_PER_NODE"},
		{map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_NODELIST": "n1", "SLURM_TASKS_PER_NODE": "2(x2)", "SLURM_NODEID": "2"}, "SLURM_NODEID=2"},
	}
	for _, c := range cases {
		_, err := envFrom(lookupFrom(c.vars))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one containing %q", c.vars, err, c.want)
		}
	}
}

func TestFirstSlurmHost(t *testing.T) {
	for list, want := range map[string]string{
		"node07":            "node07",
		"node[07-09,12]":    "node07",
		"node[3]":           "node3",
		"a,b":               "a",
		"gpu[001-004],cpu1": "gpu001",
		"cpu1,gpu[001-004]": "cpu1",
	} {
		got, err := firstSlurmHost(list)
		if err != nil || got != want {
			t.Errorf("firstSlurmHost(%q) = %q, %v; want %q", list, got, err, want)
		}
	}
	for _, bad := range []string{"", "r[1-2]-n[1-3]", "n[]"} {
		if got, err := firstSlurmHost(bad); err == nil {
			t.Errorf("firstSlurmHost(%q) = %q, want an error", bad, got)
		}
	}
}

func TestFirstDifference(t *testing.T) {
	ref := []string{`"a" [2 3]`, `"b" [4]`}
	if got := firstDifference(ref, []string{`"a" [2 3]`, `"b" [5]`}, 2); !strings.Contains(got, `parameter 1: rank 0 has "b" [4], rank 2 has "b" [5]`) {
		t.Error(got)
	}
	if got := firstDifference(ref, []string{`"a" [2 3]`}, 1); !strings.Contains(got, `rank 0 has 2 parameters, rank 1 has 1 (the first missing here: "b" [4])`) {
		t.Error(got)
	}
	if got := firstDifference([]string{""}, []string{`"a" [1]`}, 1); !strings.Contains(got, "rank 0 has 0 parameters") {
		t.Error(got)
	}
}

func TestAvailableHasGloo(t *testing.T) {
	requireGloo(t)
}
