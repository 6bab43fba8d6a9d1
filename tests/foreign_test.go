package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/checkpoints"
	"github.com/gsrmt/gsrmt/internal/testutil"
)

// wrapScript wraps two state_dicts that Go wrote (the weights and an EMA)
// in the checkpoint layouts of timm's train.py (with a DataParallel
// "module." prefix) and Swin's save_checkpoint, with torch.save, and writes
// a timm checkpoint whose arguments would run a shell command in
// torch.load.
const wrapScript = `
import sys, os, argparse, torch
d = sys.argv[1]
sys.path.insert(0, d)
from yacs.config import CfgNode
sd, ema = torch.load(d + '/sd.pt'), torch.load(d + '/ema.pt')
args = argparse.Namespace(model='gsrmt_nano', lr=5e-4, opt_betas=None, input_size=32)
torch.save({'epoch': 3, 'arch': 'gsrmt', 'state_dict': {'module.' + k: v for k, v in sd.items()},
            'optimizer': {'state': {}, 'param_groups': []}, 'version': 2, 'args': args, 'metric': 42.0,
            'state_dict_ema': ema}, d + '/timm.pth.tar')
cfg = CfgNode({'MODEL': CfgNode({'TYPE': 'gsrmt', 'NUM_CLASSES': 10})})
torch.save({'model': sd, 'optimizer': {}, 'lr_scheduler': {}, 'max_accuracy': 0.0, 'scaler': {}, 'epoch': 3,
            'config': cfg}, d + '/swin.pth')
class Shell:
    def __reduce__(self):
        return (os.system, ('echo pwned',))
torch.save({'state_dict': sd, 'args': Shell()}, d + '/shell.pth')
`

// Checkpoints of timm's and Swin's scripts, written by torch.save, read
// through convert and predict: the weights of the right entry, byte for
// byte; the scripts' argument objects ignored; a file that would run code
// refused.
func TestForeignCheckpointsCLI(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	py := testutil.PythonTorch(t)
	dir := t.TempDir()
	sd, err := checkpoints.ModelStateDict(ckModel(t, "swat", 10, 21))
	if err != nil {
		t.Fatal(err)
	}
	ema, err := checkpoints.ModelStateDict(ckModel(t, "swat", 10, 22))
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]*checkpoints.Dict{"sd.pt": sd, "ema.pt": ema} {
		if err := checkpoints.Save(filepath.Join(dir, name), st); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WriteYacsStandIn(t, dir)
	script := filepath.Join(dir, "wrap.py")
	if err := os.WriteFile(script, []byte(wrapScript), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(py, script, dir).CombinedOutput(); err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	model := []string{"--variant", "swat", "--preset", "nano", "--classes", "10", "--img-size", "32"}

	t.Run("convert default entry", func(t *testing.T) {
		out := filepath.Join(dir, "sd-out.pt")
		js := convertJSON(t, append([]string{"convert", "--in", filepath.Join(dir, "timm.pth.tar"), "--out", out, "--to", "state-dict", "--json"}, model...)...)
		if js.Key != "state_dict" || js.Prefix != "module." || !slices.Contains(js.Ignored, "args (argparse.Namespace record)") {
			t.Errorf("convert --json %+v", js)
		}
		sameState(t, sd, stateOf(t, out))
	})
	t.Run("convert --key state_dict_ema", func(t *testing.T) {
		out := filepath.Join(dir, "ema.safetensors")
		js := convertJSON(t, append([]string{"convert", "--in", filepath.Join(dir, "timm.pth.tar"), "--key", "state_dict_ema", "--out", out, "--json"}, model...)...)
		if js.Key != "state_dict_ema" || js.Prefix != "" {
			t.Errorf("convert --json %+v", js)
		}
		sameState(t, ema, stateOf(t, out))
	})
	img := filepath.Join(makeClassFolder(t, 1, 0, 1), "test", "class0", "0.png")
	t.Run("predict a Swin checkpoint", func(t *testing.T) {
		_, errOut, code := runCLI(t, append([]string{"predict", "--checkpoint", filepath.Join(dir, "swin.pth"), "--image", img, "--json", "--threads", "2"}, model...)...)
		if code != 0 || !strings.Contains(errOut, `the weights are its "model" entry; ignored: optimizer (dict of 0), lr_scheduler (dict of 0), max_accuracy, scaler (dict of 0), epoch, config (yacs.config.CfgNode record)`) {
			t.Errorf("predict exited %d:\n%s", code, errOut)
		}
	})
	t.Run("code refused", func(t *testing.T) {
		_, errOut, code := runCLI(t, append([]string{"predict", "--checkpoint", filepath.Join(dir, "shell.pth"), "--image", img}, model...)...)
		if code != 1 || !strings.Contains(errOut, "class posix.system is not allowed") {
			t.Errorf("a file that runs os.system: exit %d:\n%s", code, errOut)
		}
	})
}

// convertResult is the part of convert --json the test reads.
type convertResult struct {
	Key     string   `json:"key"`
	Ignored []string `json:"ignored"`
	Prefix  string   `json:"prefix_removed"`
}

func convertJSON(t *testing.T, args ...string) convertResult {
	t.Helper()
	stdout, errOut, code := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("convert exited %d:\n%s", code, errOut)
	}
	var js convertResult
	if err := json.Unmarshal([]byte(stdout), &js); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	return js
}

// sameState checks that two state_dicts hold the same names and bytes.
func sameState(t *testing.T, want, got *checkpoints.Dict) {
	t.Helper()
	if want.Len() != got.Len() {
		t.Fatalf("%d tensors, want %d", got.Len(), want.Len())
	}
	for _, e := range want.Entries() {
		v, ok := got.Get(e.Key)
		if !ok {
			t.Fatalf("no %v", e.Key)
		}
		a, _ := e.Value.(*checkpoints.Tensor).Bytes()
		b, _ := v.(*checkpoints.Tensor).Bytes()
		if !slices.Equal(a, b) {
			t.Fatalf("%v differs", e.Key)
		}
	}
}
