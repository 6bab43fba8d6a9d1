package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/train"
)

// recordedOptions are the options a run's last.pt recorded, as JSON (the
// form in which --resume compares them).
func recordedOptions(t *testing.T, dir string) map[string]any {
	t.Helper()
	o, err := train.ReadOptions(filepath.Join(dir, "last.pt"))
	if err != nil || o == nil {
		t.Fatalf("%s/last.pt: options %v, %v", dir, o, err)
	}
	b, _ := json.Marshal(o)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// --config with a run's config.json starts a run with the same recorded
// options; a flag given on the command line wins over the file's value; a
// YAML file of flag names works as well; an unknown key and a bad value
// are refused (exit 2) naming the key and the file.
func TestCLIConfigFile(t *testing.T) {
	data := makeImageFolder(t, 4, 2)
	root := t.TempDir()
	a := filepath.Join(root, "a")
	args := trainArgs(data, a, "--weight-decay", "0.02", "--seed", "5", "--label-smoothing", "0.2", "--window", "4",
		"--drop-path", "0.05", "--gate", "headwise", "--batch-size", "4", "--save-every-steps", "2", "--keep-checkpoints", "1",
		"--crop-padding", "2", "--limit-eval", "4")
	if _, errOut, code := runCLI(t, args...); code != 0 {
		t.Fatalf("run a exited %d:\n%s", code, errOut)
	}
	want := recordedOptions(t, a)
	cfg := filepath.Join(a, "config.json")

	b := filepath.Join(root, "b")
	if _, errOut, code := runCLI(t, "train", "--config", cfg, "--out", b); code != 0 {
		t.Fatalf("--config %s exited %d:\n%s", cfg, code, errOut)
	}
	got := recordedOptions(t, b)
	for k, v := range want {
		if !sameJSON(got[k], v) {
			t.Errorf("--config: option %s = %v, the original run's %v", k, got[k], v)
		}
	}

	c := filepath.Join(root, "c")
	if _, errOut, code := runCLI(t, "train", "--config", cfg, "--out", c, "--lr", "3e-3", "--threads", "1"); code != 0 {
		t.Fatalf("--config with --lr exited %d:\n%s", code, errOut)
	}
	got = recordedOptions(t, c)
	for k, v := range want {
		if k == "lr" {
			v = 3e-3
		}
		if !sameJSON(got[k], v) {
			t.Errorf("--config --lr 3e-3: option %s = %v, want %v", k, got[k], v)
		}
	}

	yml := filepath.Join(root, "run.yaml")
	writeText(t, yml, "dataset: imagefolder\ndata-dir: "+data+"\nimg_size: 32\npreset: nano\nepochs: 1\nbatch-size: 4\n"+
		"lr: 0.002\nwarmup-epochs: 0\nmixup: 0\ncutmix: 0\nseed: 9\nwindow: 4\nthreads: 1\nworkers: 1\nlimit_eval: 4\ntensorboard: true\n")
	d := filepath.Join(root, "d")
	if _, errOut, code := runCLI(t, "train", "--config", yml, "--out", d); code != 0 {
		t.Fatalf("--config %s exited %d:\n%s", yml, code, errOut)
	}
	got = recordedOptions(t, d)
	model, _ := got["model"].(map[string]any)
	if got["seed"] != 9.0 || got["batch-size"] != 4.0 || got["lr"] != 0.002 || got["limit-eval"] != 4.0 || model["window_size"] != 4.0 {
		t.Errorf("YAML config: recorded %v", got)
	}
	if files, _ := filepath.Glob(filepath.Join(d, "tensorboard", "events.out.tfevents.*")); len(files) != 1 || got["tensorboard"] != filepath.Join(d, "tensorboard") {
		t.Errorf("tensorboard: true wrote event files %v; recorded %v", files, got["tensorboard"])
	}

	for _, bad := range []struct{ text, want string }{
		{"dataset: imagefolder\nlearning-rate: 0.1\n", `unknown key "learning-rate"`},
		{"dataset: imagefolder\nepochs: ten\n", `key "epochs": value "ten"`},
		{"lr: [1, 2]\n", `key "lr": want a single value`},
		{"nproc: 2\n", `key "nproc": give --nproc on the command line`},
	} {
		writeText(t, yml, bad.text)
		e := filepath.Join(root, "e")
		_, errOut, code := runCLI(t, "train", "--config", yml, "--data-dir", data, "--out", e)
		if code != 2 || !strings.Contains(errOut, "--config "+yml) || !strings.Contains(errOut, bad.want) {
			t.Errorf("config %q: exit %d, stderr:\n%s\nwant exit 2 naming the file and %s", bad.text, code, errOut, bad.want)
		}
		if _, err := os.Stat(e); err == nil {
			t.Errorf("config %q: the refused run made its folder", bad.text)
		}
	}
}

func writeText(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
