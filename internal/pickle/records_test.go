package pickle

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/internal/testutil"
)

// recordsScript prints, per protocol, the hex of a pickle holding an
// argparse.Namespace and a nested CfgNode, as the training scripts of timm,
// DeiT/RMT and Swin save them.
const recordsScript = `
import sys, argparse, pickle
sys.path.insert(0, sys.argv[1])
from yacs.config import CfgNode
args = argparse.Namespace(lr=0.1, sched='cosine', betas=[0.9, 0.999], clip_grad=None)
cfg = CfgNode({'MODEL': CfgNode({'NAME': 'swin', 'DEPTHS': [2, 2]}), 'TRAIN': CfgNode({'BASE_LR': 1e-3})})
cfg.__dict__['__immutable__'] = True  # what freeze() sets
for p in (0, 2, 4, 5):
    print(p, pickle.dumps({'args': args, 'config': cfg, 'epoch': 3}, protocol=p).hex())
`

// acceptAll is a Records policy that accepts every class.
func acceptAll(Global) bool { return true }

func TestRecordsFromPython(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteYacsStandIn(t, dir)
	for _, line := range strings.Split(strings.TrimSpace(runPython(t, recordsScript, dir)), "\n") {
		proto, hx, _ := strings.Cut(line, " ")
		data, err := hex.DecodeString(hx)
		if err != nil {
			t.Fatal(err)
		}
		t.Run("protocol "+proto, func(t *testing.T) {
			if _, err := Unmarshal(data, allGlobals()); proto != "0" && !isForbidden(err, "argparse.Namespace") {
				t.Fatalf("without a Records policy: %v, want argparse.Namespace refused", err)
			}
			d := NewDecoder(bytes.NewReader(data))
			d.Globals, d.Records = allGlobals(), acceptAll
			v, err := d.Decode()
			if proto == "0" {
				// Protocol 0 rebuilds objects with copyreg._reconstructor,
				// a call: refused.
				if err == nil {
					t.Fatalf("protocol 0 decoded to %v, want an error", v)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkRecords(t, v.(*Dict))
		})
	}
}

func isForbidden(err error, class string) bool {
	var fe *ForbiddenError
	return errors.As(err, &fe) && fe.Global.String() == class
}

// checkRecords checks the decoded Namespace and CfgNode against the values
// recordsScript gave them.
func checkRecords(t *testing.T, top *Dict) {
	t.Helper()
	get := func(d *Dict, key string) any {
		v, ok := d.Get(key)
		if !ok {
			t.Fatalf("no %q in %v", key, d.Keys())
		}
		return v
	}
	args, ok := get(top, "args").(*Object)
	if !ok || args.Class != (Global{"argparse", "Namespace"}) {
		t.Fatalf("args decoded to %#v", get(top, "args"))
	}
	st := args.State.(*Dict)
	if get(st, "lr") != 0.1 || get(st, "sched") != "cosine" || get(st, "clip_grad") != nil {
		t.Errorf("Namespace state %v", st.Entries())
	}
	if b := get(st, "betas").([]any); len(b) != 2 || b[1] != 0.999 {
		t.Errorf("betas %v", b)
	}
	cfg, ok := get(top, "config").(*Object)
	if !ok || cfg.Class != (Global{"yacs.config", "CfgNode"}) || cfg.Items == nil {
		t.Fatalf("config decoded to %#v", get(top, "config"))
	}
	model := get(cfg.Items, "MODEL").(*Object)
	if get(model.Items, "NAME") != "swin" || len(get(model.Items, "DEPTHS").([]any)) != 2 {
		t.Errorf("MODEL items %v", model.Items.Entries())
	}
	if get(get(cfg.Items, "TRAIN").(*Object).Items, "BASE_LR") != 1e-3 {
		t.Error("TRAIN.BASE_LR lost")
	}
	flags := cfg.State.(*Dict)
	if get(flags, "__immutable__") != true || get(flags, "__new_allowed__") != false {
		t.Errorf("CfgNode state %v", flags.Entries())
	}
	if _, ok := get(flags, "__deprecated_keys__").(*Set); !ok {
		t.Errorf("__deprecated_keys__ is a %T", get(flags, "__deprecated_keys__"))
	}
	if get(top, "epoch") != int64(3) {
		t.Error("epoch lost")
	}
}

// A record class may be instantiated (NEWOBJ) but never called: REDUCE,
// INST and OBJ would run code in Python, and are refused whatever the
// policy accepts.
func TestRecordCallsRefused(t *testing.T) {
	tests := map[string]struct{ in, class string }{
		"REDUCE os.system":    {"\x80\x02cos\nsystem\nX\x04\x00\x00\x00echo\x85R.", "os.system"},
		"REDUCE builtins":     {"c__builtin__\neval\n(S'1'\ntR.", "__builtin__.eval"},
		"REDUCE posix":        {"\x80\x04\x8c\x05posix\x8c\x06system\x93\x8c\x04echo\x85R.", "posix.system"},
		"INST":                {"(S'echo'\nios\nsystem\n.", "os.system"},
		"OBJ":                 {"(cargparse\nNamespace\no.", "argparse.Namespace"},
		"REDUCE a record":     {"\x80\x02cargparse\nNamespace\n)R.", "argparse.Namespace"},
		"inside a dict value": {"\x80\x02}X\x01\x00\x00\x00acsubprocess\nPopen\nX\x02\x00\x00\x00ls\x85Rs.", "subprocess.Popen"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			d := NewDecoder(strings.NewReader(tt.in))
			d.Globals, d.Records = allGlobals(), acceptAll
			v, err := d.Decode()
			if !isForbidden(err, tt.class) {
				t.Fatalf("decoded %v, %v; want %s refused", v, err, tt.class)
			}
			if !strings.Contains(err.Error(), "would run its constructor") {
				t.Errorf("error %q does not say why", err)
			}
		})
	}
}

// The policy decides which classes are records; the others stay forbidden.
func TestRecordsPolicy(t *testing.T) {
	in := "\x80\x02cos\nsystem\n)\x81."
	d := NewDecoder(strings.NewReader(in))
	d.Globals = allGlobals()
	d.Records = func(g Global) bool { return g.Module != "os" }
	if v, err := d.Decode(); !isForbidden(err, "os.system") {
		t.Fatalf("decoded %v, %v", v, err)
	}
	// A list subclass gets APPENDS, and BUILD twice merges the state.
	in = "\x80\x02cmod\nL\n)\x81(K\x01K\x02e}X\x01\x00\x00\x00aK\x01sb}X\x01\x00\x00\x00bK\x02sb."
	d = NewDecoder(strings.NewReader(in))
	d.Globals, d.Records = allGlobals(), acceptAll
	v, err := d.Decode()
	if err != nil {
		t.Fatal(err)
	}
	o := v.(*Object)
	if len(o.List) != 2 || o.List[1] != int64(2) || o.State.(*Dict).Len() != 2 {
		t.Errorf("record %#v", o)
	}
}

// FuzzDecodeRecords is FuzzDecode with a Records policy that accepts every
// class: no input may panic or hang.
func FuzzDecodeRecords(f *testing.F) {
	for _, s := range []string{
		"\x80\x02}X\x04\x00\x00\x00argscargparse\nNamespace\n)\x81}X\x02\x00\x00\x00lrG?\xb9\x99\x99\x99\x99\x99\x9asbs.",
		"\x80\x02cyacs.config\nCfgNode\n)\x81X\x01\x00\x00\x00a]K\x01as}X\x0d\x00\x00\x00__immutable__\x88sb.",
		"\x80\x02cmod\nL\n)\x81(K\x01K\x02e}b.",
		"\x80\x02cargparse\nNamespace\n)R.",
		"cos\nsystem\n(S'echo'\ntR.",
	} {
		f.Add([]byte(s))
	}
	g := allGlobals()
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(bytes.NewReader(data))
		d.Globals, d.Records = g, acceptAll
		d.PersistentLoad = func(pid any) (any, error) { return pid, nil }
		if _, err := d.Decode(); err != nil {
			var fe *ForbiddenError
			if errors.As(err, &fe) && fe.Reason == "" {
				t.Fatalf("a policy that accepts every class refused %s without a reason", fe.Global)
			}
		}
	})
}
