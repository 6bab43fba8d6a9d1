package torchfmt

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/internal/testutil"
)

// torchScript generates checkpoints with torch.save ("gen") and describes
// checkpoints that Go wrote ("check"), printing JSON in the form of the Go
// describe function.
const torchScript = `
import sys, json, struct, collections
import torch

def storage_id(t, ids):
    try:
        key = t.untyped_storage()._cdata
    except AttributeError:
        key = t.storage()._cdata
    return ids.setdefault(key, len(ids))

def describe(v, ids):
    if v is None:
        return {'none': True}
    if isinstance(v, bool):
        return {'bool': v}
    if isinstance(v, int):
        return {'int': str(v)}
    if isinstance(v, float):
        return {'float': struct.pack('>d', v).hex()}
    if isinstance(v, str):
        return {'str': v}
    if isinstance(v, torch.Tensor):
        c = v.detach().contiguous()
        if c.dtype == torch.bfloat16:
            c = c.view(torch.int16)
        return {'tensor': {
            'dtype': str(v.dtype).replace('torch.', ''), 'shape': list(v.shape),
            'stride': list(v.stride()), 'offset': v.storage_offset(),
            'hex': c.numpy().tobytes().hex(), 'storage': storage_id(v, ids),
            'requires_grad': v.requires_grad}}
    if isinstance(v, dict):
        return {'dict': [[describe(k, ids), describe(x, ids)] for k, x in v.items()]}
    if isinstance(v, list):
        return {'list': [describe(x, ids) for x in v]}
    if isinstance(v, tuple):
        return {'tuple': [describe(x, ids) for x in v]}
    raise TypeError(type(v))

def samples():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    sd = model.state_dict()
    dtypes = collections.OrderedDict()
    for dt in [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
               torch.int16, torch.int8, torch.uint8, torch.bool]:
        x = torch.arange(-3, 5).reshape(2, 4) * 37
        dtypes[str(dt)] = (x % 2 == 0) if dt == torch.bool else (x.to(torch.uint8) if dt == torch.uint8 else x.to(dt))
    dtypes['half_frac'] = torch.tensor([0.1, -65504, 1e-6, float('inf')], dtype=torch.float16)
    dtypes['bf16_frac'] = torch.tensor([0.1, -3e38, 1e-30, float('-inf')], dtype=torch.bfloat16)
    base = torch.arange(20.).reshape(4, 5)
    shared = torch.arange(6, dtype=torch.int64)
    views = {
        'base': base, 'block': base[1:3, 1:4], 't': base.t(), 'flat_slice': base.view(-1)[7:12],
        'a': shared, 'b': shared.view(2, 3), 'c': shared[3:],
        'empty': torch.empty(0, 3), 'scalar': torch.tensor(2.5),
        'param': torch.nn.Parameter(torch.ones(2)),
        'half_view': torch.arange(8, dtype=torch.float16)[2:6:2],
    }
    nested = {
        'format': 'gsrmt-checkpoint-v1', 'model': sd, 'epoch': 3, 'step': 2**40, 'big': 2**70, 'neg': -5,
        'metrics': {'top1': 0.5, 'loss': 1.25e-3}, 'items': [1, 'a', None, True, (2, 3.5)],
        'optimizer': {'state': {0: {'step': 7, 'exp_avg': base}}, 'param_groups': [{'lr': 1e-3, 'params': [0, 1]}]},
    }
    return {'state_dict': sd, 'nested': nested, 'dtypes': dtypes, 'views': views}

mode, folder = sys.argv[1], sys.argv[2]
out = {}
if mode == 'gen':
    for name, obj in samples().items():
        torch.save(obj, f'{folder}/{name}.pt')
        torch.save(obj, f'{folder}/legacy_{name}.pt', _use_new_zipfile_serialization=False)
        out[name] = describe(obj, {})
        out['legacy_' + name] = out[name]
    # float32 -> float16 / bfloat16 rounding as PyTorch does it: random
    # bit patterns, scaled normals, and every midpoint between neighbours.
    import numpy as np
    rng = np.random.default_rng(1)
    parts = [rng.integers(0, 2**32, 50000, dtype=np.uint64).astype(np.uint32).view(np.float32),
             (rng.standard_normal(50000) * 10.0 ** rng.integers(-9, 6, 50000)).astype(np.float32)]
    for dt in (torch.float16, torch.bfloat16):
        bits = torch.arange(0, 2**16, dtype=torch.int32).to(torch.int16).view(dt).float()
        v = bits[torch.isfinite(bits)].sort().values.numpy()
        parts.append(((v[:-1].astype(np.float64) + v[1:]) / 2).astype(np.float32))
    x = torch.from_numpy(np.concatenate(parts))
    x = x[~torch.isnan(x)]
    out['_rounding'] = {'in': x.numpy().tobytes().hex(), 'f16': x.half().numpy().tobytes().hex(),
                        'bf16': x.bfloat16().view(torch.int16).numpy().tobytes().hex()}
else:
    major = int(torch.__version__.split('.')[0])
    for name in sys.argv[3:]:
        path = f'{folder}/{name}'
        if name.endswith('.safetensors'):
            raw = open(path, 'rb').read()
            n = struct.unpack('<Q', raw[:8])[0]
            header = json.loads(raw[8:8 + n])
            header.pop('__metadata__', None)
            names = {'F32': torch.float32, 'F64': torch.float64, 'F16': torch.float16, 'BF16': torch.bfloat16,
                     'I64': torch.int64, 'I32': torch.int32, 'I16': torch.int16, 'I8': torch.int8,
                     'U8': torch.uint8, 'BOOL': torch.bool}
            obj = collections.OrderedDict()
            for key, info in sorted(header.items(), key=lambda kv: kv[1]['data_offsets']):
                b, e = info['data_offsets']
                buf = bytearray(raw[8 + n + b:8 + n + e])
                t = torch.frombuffer(buf, dtype=names[info['dtype']]) if buf else torch.empty(0, dtype=names[info['dtype']])
                obj[key] = t.reshape(info['shape'])
        elif name.startswith('wo_') or major >= 2:
            obj = torch.load(path, weights_only=True)
        else:
            obj = torch.load(path)
        out[name] = describe(obj, {})
print(json.dumps(out))
`

func runTorch(t *testing.T, args ...string) map[string]any {
	t.Helper()
	py := testutil.PythonTorch(t)
	script := filepath.Join(t.TempDir(), "torch_interop.py")
	if err := os.WriteFile(script, []byte(torchScript), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, append([]string{script}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python %v: %v\n%s", args, err, stderr.String())
	}
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("python output: %v\n%s", err, out)
	}
	return res
}

// normalize passes a description through JSON so that it compares with
// reflect.DeepEqual to one decoded from Python's JSON.
func normalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func compareDescriptions(t *testing.T, name string, got, want any) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	g, _ := json.MarshalIndent(got, "", " ")
	w, _ := json.MarshalIndent(want, "", " ")
	gl, wl := strings.Split(string(g), "\n"), strings.Split(string(w), "\n")
	for i := range min(len(gl), len(wl)) {
		if gl[i] != wl[i] {
			t.Errorf("%s differs at line %d:\n got %s\nwant %s", name, i+1, gl[i], wl[i])
			return
		}
	}
	t.Errorf("%s differs in length: got %d lines, want %d", name, len(gl), len(wl))
}

// Files written by torch.save, in the zip and the legacy format, read in Go
// with the values, views and storage sharing PyTorch has.
func TestTorchSaveGoLoad(t *testing.T) {
	dir := t.TempDir()
	want := runTorch(t, "gen", dir)
	rounding, _ := want["_rounding"].(map[string]any)
	delete(want, "_rounding")
	if len(want) != 8 {
		t.Fatalf("python described %d files, want 8", len(want))
	}
	checkRounding(t, rounding)
	for name, w := range want {
		v, err := Load(filepath.Join(dir, name+".pt"))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		compareDescriptions(t, name, normalize(t, describe(v, map[*Storage]int{})), w)
		if strings.HasSuffix(name, "state_dict") {
			if sd, ok := v.(*Dict); !ok || sd.State == nil {
				t.Errorf("%s: the state_dict's _metadata was lost", name)
			}
		}
	}
}

// checkRounding checks that FromFloat32 rounds to float16 and bfloat16
// exactly as PyTorch does.
func checkRounding(t *testing.T, r map[string]any) {
	t.Helper()
	unhex := func(key string) []byte {
		s, _ := r[key].(string)
		b, err := hex.DecodeString(s)
		if err != nil || len(b) == 0 {
			t.Fatalf("rounding data %q: %v", key, err)
		}
		return b
	}
	in := unhex("in")
	vals := make([]float32, len(in)/4)
	for i := range vals {
		vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(in[4*i:]))
	}
	for _, c := range []struct {
		dt  DType
		key string
	}{{Float16, "f16"}, {BFloat16, "bf16"}} {
		want := unhex(c.key)
		x, err := FromFloat32(c.dt, []int64{int64(len(vals))}, vals)
		if err != nil {
			t.Fatal(err)
		}
		bad := 0
		for i := range vals {
			g, w := binary.LittleEndian.Uint16(x.Storage.Data[2*i:]), binary.LittleEndian.Uint16(want[2*i:])
			if g != w {
				if bad < 5 {
					t.Errorf("%v(%g = %#08x) = %#04x, PyTorch gives %#04x", c.dt, vals[i], math.Float32bits(vals[i]), g, w)
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%v: %d of %d conversions differ from PyTorch", c.dt, bad, len(vals))
		}
		t.Logf("%v: %d conversions agree with PyTorch", c.dt, len(vals)-bad)
	}
}

// Files written by Go open with torch.load (weights_only=True where this
// PyTorch supports the values) with the values Go wrote.
func TestGoSaveTorchLoad(t *testing.T) {
	dir := t.TempDir()
	full := sampleTree(t)
	full.Set("names", []any{"a", "ü"})
	noFloats := sampleTree(t)
	noFloats.Set("names", []any{"a", "ü"})
	noFloats.Delete("metrics")
	noFloats.Delete("optimizer")
	files := map[string]any{
		"full.pt":        full,
		"wo_model.pt":    sampleTensors(t),
		"wo_nofloats.pt": noFloats,
		"wo_empty.pt":    NewDict(),
	}
	names := []string{}
	for name, v := range files {
		if err := Save(filepath.Join(dir, name), v); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	named, err := NamedTensors(sampleTensors(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveSafetensors(filepath.Join(dir, "model.safetensors"), named, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	names = append(names, "model.safetensors")
	got := runTorch(t, append([]string{"check", dir}, names...)...)
	for name, v := range files {
		compareDescriptions(t, name, got[name], normalize(t, describe(v, map[*Storage]int{})))
	}
	st, _, err := LoadSafetensors(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	compareDescriptions(t, "model.safetensors", got["model.safetensors"], normalize(t, describe(TensorDict(st), map[*Storage]int{})))
}
