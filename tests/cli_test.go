package tests

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gsrmt/gsrmt/internal/testutil"
	"github.com/gsrmt/gsrmt/internal/torch"
)

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// gsrmtCLI builds bin/gsrmt-cli once per test run into a temporary folder.
func gsrmtCLI(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gsrmt-cli-test")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "gsrmt-cli")
		cmd := exec.Command("go", "build", "-o", cliPath, "./cli/...")
		cmd.Dir = testutil.RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			cliErr = errors.New("go build ./cli/...: " + err.Error() + "\n" + string(out))
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

// runCLI runs the binary and returns stdout, stderr and the exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(gsrmtCLI(t), args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run gsrmt-cli %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

func TestCLIEnv(t *testing.T) {
	out, errOut, code := runCLI(t, "env", "--json")
	if code != 0 {
		t.Fatalf("env --json exited %d: %s", code, errOut)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("env --json printed invalid JSON: %v\n%s", err, out)
	}
	b := torch.Build()
	if r["libtorch_version"] != torch.Version() || r["gotch_version"] != "v0.9.1" || r["libtorch_root"] != b.LibtorchRoot {
		t.Errorf("env --json: %v", r)
	}
	if n, _ := r["stubbed_ops"].(float64); int(n) != len(b.StubbedOps) {
		t.Errorf("stubbed_ops %v, build has %d", r["stubbed_ops"], len(b.StubbedOps))
	}
	if s, _ := r["tensor_check"].(string); !strings.HasPrefix(s, "ok") {
		t.Errorf("tensor check: %q", s)
	}

	text, _, code := runCLI(t, "env")
	if code != 0 || !strings.Contains(text, "libtorch:") || !strings.Contains(text, "stubbed ops:") {
		t.Errorf("env exited %d and printed:\n%s", code, text)
	}
	help, _, code := runCLI(t, "--help")
	if code != 0 || !strings.Contains(help, "env ") {
		t.Errorf("--help exited %d, lists no env command:\n%s", code, help)
	}
	_, errOut, code = runCLI(t, "env", "--no-such-flag")
	if code != 2 || !strings.Contains(errOut, "no-such-flag") {
		t.Errorf("a bad flag exited %d (want 2) with %q", code, errOut)
	}
}

func TestCLIInfo(t *testing.T) {
	out, errOut, code := runCLI(t, "info", "--variant", "swat", "--preset", "nano", "--classes", "10", "--img-size", "224", "--json")
	if code != 0 {
		t.Fatalf("info exited %d: %s", code, errOut)
	}
	var in struct {
		Params int64 `json:"params"`
		FLOPs  int64 `json:"flops"`
		Stages []struct {
			Map    [2]int `json:"map"`
			Window int    `json:"window"`
			Global bool   `json:"global"`
		} `json:"stages"`
	}
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		t.Fatalf("info --json: %v\n%s", err, out)
	}
	// MODEL.md section 3: nano swat, 100 classes 1,588,980, minus 92,250 for 10.
	if in.Params != 1588980-92250 || len(in.Stages) != 4 || in.FLOPs <= 0 {
		t.Fatalf("info: %+v", in)
	}
	if in.Stages[0].Map != [2]int{56, 56} || in.Stages[0].Global || in.Stages[0].Window != 7 || !in.Stages[3].Global {
		t.Errorf("224 px plan: %+v", in.Stages)
	}
	text, _, code := runCLI(t, "info", "--variant", "rmt", "--preset", "tiny", "--img-size", "64")
	if code != 0 || !strings.Contains(text, "parameters:  13411716") || !strings.Contains(text, "full 2-D") {
		t.Errorf("info text (exit %d):\n%s", code, text)
	}
	for _, bad := range [][]string{
		{"--variant", "vit"}, {"--preset", "huge"}, {"--gate", "x"}, {"--swat-norm", "col"},
		{"--img-size", "0"}, {"--classes", "0"}, {"--window", "0"},
	} {
		_, errOut, code := runCLI(t, append([]string{"info"}, bad...)...)
		if code != 2 || !strings.Contains(errOut, bad[0]) {
			t.Errorf("info %v: exit %d, stderr %q; want 2 and a message naming %s", bad, code, errOut, bad[0])
		}
	}
}

func TestCLIBenchAndBenchData(t *testing.T) {
	out, errOut, code := runCLI(t, "bench", "--variant", "rmt", "--preset", "nano", "--img-size", "32", "--batch-size", "4",
		"--steps", "2", "--warmup", "1", "--threads", "1", "--json")
	if code != 0 {
		t.Fatalf("bench exited %d: %s", code, errOut)
	}
	var b map[string]any
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, out)
	}
	for _, k := range []string{"train_ms_per_step", "eval_ms_per_step", "train_images_per_s", "eval_images_per_s", "peak_rss_mb"} {
		if v, ok := b[k].(float64); !ok || v <= 0 {
			t.Errorf("bench --json: %s = %v", k, b[k])
		}
	}
	if _, errOut, code := runCLI(t, "bench", "--amp", "--device", "cpu"); code == 0 || !strings.Contains(errOut, "amp") {
		t.Errorf("bench --amp on the CPU: exit %d, %q", code, errOut)
	}
	// bench runs on random inputs: it reads no images, so it takes no
	// --workers (predict does: its workers decode the images).
	if _, errOut, code := runCLI(t, "bench", "--workers", "2"); code != 2 || !strings.Contains(errOut, "workers") {
		t.Errorf("bench --workers 2: exit %d, %q; want a usage error naming the flag", code, errOut)
	}
	dir := testutil.FashionMNISTDir(t)
	out, errOut, code = runCLI(t, "bench-data", "--dataset", "fashion-mnist", "--data-dir", dir, "--img-size", "28",
		"--batch-size", "64", "--workers", "2", "--batches", "3", "--json")
	if code != 0 {
		t.Fatalf("bench-data exited %d: %s", code, errOut)
	}
	var d struct {
		ImagesPerS float64 `json:"images_per_s"`
		Images     int     `json:"images"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil || d.Images != 3*64 || d.ImagesPerS <= 0 {
		t.Errorf("bench-data --json: %v %s", err, out)
	}
	if _, errOut, code := runCLI(t, "bench-data", "--workers", "0"); code != 2 || !strings.Contains(errOut, "--workers") {
		t.Errorf("bench-data --workers 0: exit %d, %q", code, errOut)
	}
}

// A training run through the binary keeps its resident memory flat: 400
// steps of nano at 32 px after 100 warm-up steps grow it by under 2 %
// (the 5,000-step version is in README.md: gsrmt-cli bench --steps 5000). The
// CSV output and the memory log carry the same numbers.
func TestCLIBenchMemoryStaysFlat(t *testing.T) {
	log := filepath.Join(t.TempDir(), "mem.csv")
	out, errOut, code := runCLI(t, "bench", "--variant", "retention", "--preset", "nano", "--img-size", "32", "--batch-size", "8",
		"--steps", "400", "--warmup", "100", "--threads", "2", "--memory-log", log, "--memory-every", "50", "--csv")
	if code != 0 {
		t.Fatalf("bench exited %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("bench --csv printed %d lines, want a header and a row:\n%s", len(lines), out)
	}
	header, row := strings.Split(lines[0], ","), strings.Split(lines[1], ",")
	if len(header) != len(row) {
		t.Fatalf("CSV header has %d fields, the row %d", len(header), len(row))
	}
	field := func(name string) float64 {
		for i, h := range header {
			if h == name {
				v, err := strconv.ParseFloat(row[i], 64)
				if err != nil {
					t.Fatalf("%s = %q: %v", name, row[i], err)
				}
				return v
			}
		}
		t.Fatalf("no CSV column %s in %v", name, header)
		return 0
	}
	warm, after, growth := field("rss_after_warmup_mb"), field("rss_after_train_mb"), field("train_rss_growth_pct")
	if math.Abs((after/warm-1)*100-growth) > 100*0.1/warm { // the MB columns are rounded to 0.1
		t.Errorf("train_rss_growth_pct %v disagrees with %v -> %v MB", growth, warm, after)
	}
	if growth > 2 {
		t.Errorf("resident memory grew %.2f %% over 400 training steps (%.1f -> %.1f MB)", growth, warm, after)
	}
	if heap := field("train_heap_growth_pct"); heap > 2 {
		t.Errorf("the C heap in use grew %.2f %% over 400 training steps (%.1f -> %.1f MB)", heap,
			field("heap_after_warmup_mb"), field("heap_after_train_mb"))
	}
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(string(data)), "\n")
	if rows[0] != "step,rss_mb" || len(rows) != 1+500/50 {
		t.Fatalf("memory log: %d rows, header %q; want step,rss_mb and one row per 50 of 500 steps", len(rows), rows[0])
	}
	rss := func(row string) float64 {
		_, v, _ := strings.Cut(row, ",")
		f, _ := strconv.ParseFloat(v, 64)
		return f
	}
	first, last := rss(rows[3]), rss(rows[len(rows)-1]) // step 150 (after the warm-up) and 500
	if first <= 0 || last > first*1.02 {
		t.Errorf("memory log: %v MB at step 150, %v MB at step 500 (over 2 %% growth)\n%s", first, last, data)
	}
}

// TestCLIVersion: --version and `version --json` name the libtorch and the
// commit (Go's VCS stamp, the Makefile's -ldflags, or "unknown").
func TestCLIVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, errOut, code := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v exited %d: %s", args, code, errOut)
		}
		if !strings.HasPrefix(out, "gsrmt-cli ") || !strings.Contains(out, "libtorch: "+torch.Version()+"\n") ||
			!strings.Contains(out, "gotch:    v0.9.1\n") {
			t.Errorf("%v printed:\n%s", args, out)
		}
		var commit string
		for _, line := range strings.Split(out, "\n") {
			if c, ok := strings.CutPrefix(line, "commit:   "); ok {
				commit = strings.Fields(c)[0]
			}
		}
		if !isCommit(commit) {
			t.Errorf("%v: commit %q, want a hex revision or unknown:\n%s", args, commit, out)
		}
	}
	out, errOut, code := runCLI(t, "version", "--json")
	if code != 0 {
		t.Fatalf("version --json exited %d: %s", code, errOut)
	}
	var v struct {
		Version         string `json:"version"`
		Commit          string `json:"commit"`
		CommitSource    string `json:"commit_source"`
		GoVersion       string `json:"go_version"`
		LibtorchVersion string `json:"libtorch_version"`
		GotchVersion    string `json:"gotch_version"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("version --json printed invalid JSON: %v\n%s", err, out)
	}
	if v.Version == "" || !isCommit(v.Commit) || (v.Commit == "unknown") != (v.CommitSource == "none") ||
		v.LibtorchVersion != torch.Version() || v.GotchVersion != "v0.9.1" || !strings.HasPrefix(v.GoVersion, "go") {
		t.Errorf("version --json: %+v", v)
	}
}

// isCommit reports whether s is a git revision (hex) or "unknown".
func isCommit(s string) bool {
	if s == "unknown" {
		return true
	}
	if len(s) < 7 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}

// TestCLICompletion: completion scripts for bash, zsh and fish, a usage error
// for other shells, and --generate-bash-completion listing a command's flags.
func TestCLICompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		out, errOut, code := runCLI(t, "completion", shell)
		if code != 0 || strings.TrimSpace(out) == "" || !strings.Contains(out, "gsrmt-cli") {
			t.Errorf("completion %s exited %d (%s) and printed:\n%s", shell, code, errOut, out)
		}
	}
	if _, errOut, code := runCLI(t, "completion", "powershell"); code != 2 || !strings.Contains(errOut, "powershell") {
		t.Errorf("completion powershell exited %d (want 2): %s", code, errOut)
	}
	if help, _, code := runCLI(t, "completion", "--help"); code != 0 || !strings.Contains(help, "~/.bashrc") ||
		!strings.Contains(help, "_gsrmt-cli") || !strings.Contains(help, "completions/gsrmt-cli.fish") {
		t.Errorf("completion --help exited %d and says nothing of installing:\n%s", code, help)
	}

	out, errOut, code := runCLI(t, "train", "--generate-bash-completion")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, want := range []string{"--epochs", "--batch-size", "--dataset", "--lr", "--help"} {
		if code != 0 || !hasLine(lines, want) {
			t.Errorf("train --generate-bash-completion exited %d (%s), no %s in:\n%s", code, errOut, want, out)
		}
	}
	if hasLine(lines, "--generate-bash-completion") {
		t.Errorf("the hidden completion flag is offered:\n%s", out)
	}
	out, _, _ = runCLI(t, "train", "--ep", "--generate-bash-completion")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); !hasLine(lines, "--epochs") || hasLine(lines, "--lr") {
		t.Errorf("train --ep completes to:\n%s", out)
	}
	out, _, _ = runCLI(t, "--generate-bash-completion")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); !hasLine(lines, "train") || !hasLine(lines, "completion") {
		t.Errorf("the commands complete to:\n%s", out)
	}

	// The bash script itself, without the bash-completion package: complete
	// "gsrmt-cli tr" and "gsrmt-cli train --ep" with the binary on PATH.
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	script, _, _ := runCLI(t, "completion", "bash")
	sh := script + `
COMP_WORDS=(gsrmt-cli tr); COMP_CWORD=1; _gsrmt_cli_bash_autocomplete; echo "${COMPREPLY[*]}"
COMP_WORDS=(gsrmt-cli train --ep); COMP_CWORD=2; _gsrmt_cli_bash_autocomplete; echo "${COMPREPLY[*]}"
`
	cmd := exec.Command(bash, "--norc", "--noprofile", "-c", sh)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(gsrmtCLI(t))+string(os.PathListSeparator)+os.Getenv("PATH"))
	got, err := cmd.CombinedOutput()
	if err != nil || string(got) != "train\n--epochs\n" {
		t.Errorf("bash completion: %v, completed to %q (want train, --epochs)", err, got)
	}
}

// hasLine reports whether list holds the line s.
func hasLine(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
