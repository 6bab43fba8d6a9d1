package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A checkpoint written by a 2-rank run resumes on 1 rank and on 4 ranks:
// the run finishes, the log says that the sample order follows the new world
// size, and config.json records the change.
func TestDistributedResumeOnOtherWorldSizes(t *testing.T) {
	data := makeImageFolder(t, 8, 4) // 24 training images: 3 global batches of 8
	two := filepath.Join(t.TempDir(), "two")
	if _, errOut, code := runCLI(t, distArgs(data, two, "--nproc", "2", "--epochs", "1")...); code != 0 {
		t.Fatalf("2-rank run exited %d:\n%s", code, errOut)
	}
	for _, c := range []struct {
		name  string
		extra []string
		world float64
	}{{"one", nil, 1}, {"four", []string{"--nproc", "4"}, 4}} {
		out := filepath.Join(t.TempDir(), c.name)
		args := append([]string{"train", "--resume", filepath.Join(two, "last.pt"), "--out", out, "--epochs", "2",
			"--dist-timeout", "60s"}, c.extra...)
		_, errOut, code := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("resume on %v rank(s) exited %d:\n%s", c.world, code, errOut)
		}
		if !strings.Contains(errOut, "written by 2 ranks") {
			t.Errorf("resume on %v rank(s): the log does not say the world size changed:\n%s", c.world, errOut)
		}
		cfg := readJSON(t, filepath.Join(out, "config.json"))
		if cfg["world_size"] != c.world || cfg["batch_size"] != 8.0 {
			t.Errorf("resume on %v rank(s): config.json world_size %v, batch_size %v", c.world, cfg["world_size"], cfg["batch_size"])
		}
		changed, _ := cfg["resume_changed"].([]any)
		found := false
		for _, ch := range changed {
			found = found || strings.HasPrefix(ch.(string), "world-size 2 -> ")
		}
		if !found {
			t.Errorf("resume on %v rank(s): resume_changed %v lacks the world size", c.world, changed)
		}
		if rows := readCSV(t, filepath.Join(out, "metrics.csv")); len(rows) != 3 {
			t.Errorf("resume on %v rank(s): metrics.csv has %d rows, want header + 2 epochs", c.world, len(rows))
		}
	}
}

// --resume auto starts afresh in a folder whose last attempt died before
// its first checkpoint (config.json, no last.pt), as a torchrun restart needs,
// and resumes when last.pt is there.
func TestResumeAutoAfterAnEarlyDeath(t *testing.T) {
	data := makeImageFolder(t, 8, 4)
	out := filepath.Join(t.TempDir(), "run")
	args := trainArgs(data, out, "--resume", "auto")
	_, errOut, code := runCLI(t, append(append([]string{}, args...), "--epochs", "1")...)
	if code != 0 {
		t.Fatalf("first --resume auto run exited %d:\n%s", code, errOut)
	}
	if err := os.Remove(filepath.Join(out, "last.pt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(out, "best.pt")); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runCLI(t, args...); code != 0 || strings.Contains(errOut, "resumed from") {
		t.Fatalf("--resume auto over an attempt without a checkpoint: exit %d:\n%s", code, errOut)
	}
	if _, errOut, code := runCLI(t, append(append([]string{}, args...), "--epochs", "2")...); code != 0 || !strings.Contains(errOut, "resumed from") {
		t.Fatalf("--resume auto with last.pt: exit %d:\n%s", code, errOut)
	}
}
