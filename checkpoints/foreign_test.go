package checkpoints

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/testutil"
)

// foreignScript writes, into the folder argv[1], checkpoints laid out as
// timm's train.py (CheckpointSaver), DeiT/RMT's main.py and Swin's
// save_checkpoint write them, and two that would run code in torch.load.
// The weights are a small state_dict whose first value is 0 ("model") or
// 100 (the EMA's).
const foreignScript = `
import sys, os, argparse, builtins, torch
sys.path.insert(0, sys.argv[1])
from yacs.config import CfgNode
out = sys.argv[1]
net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
with torch.no_grad():
    for p in net.parameters():
        p.copy_(torch.arange(p.numel(), dtype=torch.float32).reshape(p.shape))
opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
net(torch.randn(5, 3)).sum().backward()
opt.step()
sd = net.state_dict()
ema = {k: (v + 100 if v.is_floating_point() else v) for k, v in sd.items()}
args = argparse.Namespace(model='gsrmt', lr=5e-4, opt_betas=None, drop_path=0.1, input_size=224, output_dir='out')
sched = {'t_initial': 300, 'base_values': [5e-4], 'last_epoch': 3}
scaler = {'scale': 65536.0, 'growth_factor': 2.0, 'backoff_factor': 0.5, 'growth_interval': 2000, '_growth_tracker': 0}
timm = {'epoch': 3, 'arch': 'sequential', 'state_dict': sd, 'optimizer': opt.state_dict(), 'version': 2,
        'args': args, 'metric': 71.5, 'state_dict_ema': ema}
torch.save(timm, out + '/timm.pth')
torch.save(timm, out + '/timm-legacy.pth', _use_new_zipfile_serialization=False)
torch.save({'model': sd, 'optimizer': opt.state_dict(), 'lr_scheduler': sched, 'epoch': 3,
            'model_ema': {'module.' + k: v for k, v in ema.items()}, 'scaler': scaler, 'args': args,
            'max_accuracy': 70.25}, out + '/rmt.pth')
cfg = CfgNode({'MODEL': CfgNode({'TYPE': 'swin', 'NUM_CLASSES': 10}), 'TRAIN': CfgNode({'BASE_LR': 5e-4, 'EPOCHS': 300})})
torch.save({'model': sd, 'optimizer': opt.state_dict(), 'lr_scheduler': sched, 'max_accuracy': 70.25,
            'scaler': scaler, 'epoch': 3, 'config': cfg}, out + '/swin.pth')
class Shell:
    def __reduce__(self):
        return (os.system, ('echo pwned',))
class Eval:
    def __reduce__(self):
        return (builtins.eval, ('1+1',))
torch.save({'state_dict': sd, 'args': args, 'x': Shell()}, out + '/shell.pth')
torch.save({'state_dict': sd, 'x': [Eval()]}, out + '/eval.pth')
`

// foreignFiles writes foreignScript's checkpoints into a temporary folder
// and returns it.
func foreignFiles(t *testing.T) string {
	t.Helper()
	py := testutil.PythonTorch(t)
	dir := t.TempDir()
	testutil.WriteYacsStandIn(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "gen.py"), []byte(foreignScript), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(py, filepath.Join(dir, "gen.py"), dir).CombinedOutput(); err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	return dir
}

// firstWeight is the first value of the state's "0.weight" (after any
// prefix).
func firstWeight(t *testing.T, state *Dict) float32 {
	t.Helper()
	state, _ = StripPrefix(state)
	return mustFloats(t, mustGet(t, state, "0.weight"))[0]
}

// One set of files (Python starts once) for the tests of foreign
// checkpoints.
func TestForeignCheckpoints(t *testing.T) {
	dir := foreignFiles(t)
	t.Run("open", func(t *testing.T) { testOpenForeign(t, dir) })
	t.Run("key errors", func(t *testing.T) { testOpenKeyErrors(t, dir) })
	t.Run("code refused", func(t *testing.T) { testOpenRefusesCode(t, dir) })
}

func testOpenForeign(t *testing.T, dir string) {
	tests := []struct {
		file, key   string
		wantKey     string
		wantFirst   float32
		wantIgnored []string
	}{
		{"timm.pth", "", "state_dict", 0, []string{"epoch", "arch", "optimizer (dict of 2)", "version", "args (argparse.Namespace record)", "metric", "state_dict_ema (dict of 7)"}},
		{"timm-legacy.pth", "", "state_dict", 0, nil},
		{"timm.pth", "state_dict_ema", "state_dict_ema", 100, nil},
		{"rmt.pth", "", "model", 0, []string{"optimizer (dict of 2)", "lr_scheduler (dict of 3)", "epoch", "model_ema (dict of 7)", "scaler (dict of 5)", "args (argparse.Namespace record)", "max_accuracy"}},
		{"rmt.pth", "model_ema", "model_ema", 100, nil},
		{"swin.pth", "", "model", 0, []string{"optimizer (dict of 2)", "lr_scheduler (dict of 3)", "max_accuracy", "scaler (dict of 5)", "epoch", "config (yacs.config.CfgNode record)"}},
	}
	for _, tt := range tests {
		t.Run(tt.file+" "+tt.key, func(t *testing.T) {
			ck, err := OpenKey(filepath.Join(dir, tt.file), tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if ck.Kind != "dict" || ck.Key != tt.wantKey || ck.Config != nil {
				t.Errorf("kind %s, key %q, config %v; want a dict, key %q, no config", ck.Kind, ck.Key, ck.Config, tt.wantKey)
			}
			if got := firstWeight(t, ck.State); got != tt.wantFirst {
				t.Errorf("first weight %v, want %v", got, tt.wantFirst)
			}
			if tt.wantIgnored != nil && !slices.Equal(ck.Ignored, tt.wantIgnored) {
				t.Errorf("ignored %q\nwant    %q", ck.Ignored, tt.wantIgnored)
			}
		})
	}
	// The records' contents were decoded, inert.
	v, err := Load(filepath.Join(dir, "swin.pth"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := v.(*Dict).Get("config")
	model, _ := cfg.(*Record).Items.Get("MODEL")
	if n, _ := model.(*Record).Items.Get("NUM_CLASSES"); n != int64(10) {
		t.Errorf("config.MODEL.NUM_CLASSES = %v", n)
	}
}

func testOpenKeyErrors(t *testing.T, dir string) {
	timm := filepath.Join(dir, "timm.pth")
	_, err := OpenKey(timm, "model_ema")
	if !errors.Is(err, ErrNoKey) || !strings.Contains(err.Error(), "state_dict_ema (dict of 7)") || !strings.Contains(err.Error(), "args (argparse.Namespace record)") {
		t.Errorf("missing key: %v", err)
	}
	if _, err := OpenKey(timm, "args"); err == nil || !strings.Contains(err.Error(), `entry "args" is a argparse.Namespace record, not a state_dict`) {
		t.Errorf("key of a record: %v", err)
	}
	if _, err := OpenKey(timm, "epoch"); err == nil || !strings.Contains(err.Error(), "not a state_dict") {
		t.Errorf("key of an int: %v", err)
	}
}

// A checkpoint that would run code in torch.load is refused, naming what
// it calls; the records next to it do not make it readable.
func testOpenRefusesCode(t *testing.T, dir string) {
	for file, want := range map[string]string{"shell.pth": "class posix.system is not allowed", "eval.pth": "class __builtin__.eval is not allowed"} {
		ck, err := Open(filepath.Join(dir, file))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: opened %v, %v; want an error with %q", file, ck, err, want)
		}
	}
}

// A dict whose "config" is a gsrmt config uses it, and does not list it
// among the ignored entries; any other "config" is ignored.
func TestOpenDictConfigNotIgnored(t *testing.T) {
	cfg, err := gsrmt.PresetConfig("swat", "nano", 3)
	if err != nil {
		t.Fatal(err)
	}
	cfgDict, err := configDict(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sd := with(NewOrderedDict(), "w", f32(t, []int64{1}, 1))
	for _, tt := range []struct {
		config  any
		ignored string
	}{{cfgDict, "epoch"}, {"swin.yaml", "epoch,config"}} {
		path := filepath.Join(t.TempDir(), "ck.pt")
		if err := Save(path, with(NewDict(), "state_dict", sd, "epoch", int64(1), "config", tt.config)); err != nil {
			t.Fatal(err)
		}
		ck, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(ck.Ignored, ","); got != tt.ignored || (ck.Config != nil) != (tt.ignored == "epoch") {
			t.Errorf("config %T: ignored %q, config %v", tt.config, got, ck.Config)
		}
	}
}
