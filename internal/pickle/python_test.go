package pickle

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/internal/testutil"
)

// runPython runs script with the interpreter that has torch and numpy (or
// skips the test when there is none) and returns its standard output.
func runPython(t *testing.T, script string, args ...string) string {
	t.Helper()
	py := testutil.PythonTorch(t)
	path := filepath.Join(t.TempDir(), "script.py")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, append([]string{path}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

const pythonSample = `
import sys, pickle, collections

def sample():
    shared = {'k': 'v'}
    return {
        'none': None, 'bools': [True, False],
        'ints': [0, 1, 255, 256, 65535, 65536, -1, 2**31 - 1, -2**31, 2**31, 2**63 - 1, -2**63,
                 2**100, -2**100, 2**64, -129, 128],
        'floats': [0.0, -0.0, 1.5, 1e300, -2.5e-300, float('inf'), -float('inf')],
        'strs': ['', 'ascii', 'ünï ✓ 𝄞', 'new\nline \\ back\r\x00 \\u0041'],
        'bytes': [b'', b'\x00\xff\x80raw\n'], 'bytearray': bytearray(b'ba'),
        'tuples': [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)],
        'od': collections.OrderedDict([('b', 1), ('a', [1.5, None])]),
        'set': {1, 2, 3}, 'frozenset': frozenset({'x'}),
        'keys': {1: 'int', 'a': 'str', b'a': 'bytes', (1, 'x'): 'tuple', None: 'none', 2.5: 'float'},
        'shared': [shared, shared],
        'long': list(range(2500)),
        'nested': [[[{}]]],
    }

mode, folder = sys.argv[1], sys.argv[2]
obj = sample()
if mode == 'write':
    for p in range(6):
        with open(f'{folder}/p{p}.pkl', 'wb') as f:
            pickle.dump(obj, f, protocol=p)
else:
    for p in range(6):
        with open(f'{folder}/go{p}.pkl', 'rb') as f:
            got = pickle.load(f)
        assert got == obj, (p, got)
        assert list(got['od']) == ['b', 'a'] and type(got['od']) is collections.OrderedDict
        assert got['shared'][0] is got['shared'][1]
    print('ok')
`

// Pickles Python writes at protocols 0 to 5 decode in Go; Go's protocol 2
// pickles of the decoded values load in Python equal to the original.
func TestPythonInterop(t *testing.T) {
	dir := t.TempDir()
	runPython(t, pythonSample, "write", dir)
	for p := 0; p <= 5; p++ {
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("p%d.pkl", p)))
		if err != nil {
			t.Fatal(err)
		}
		v, err := Unmarshal(data, BasicGlobals())
		if err != nil {
			t.Fatalf("protocol %d: %v", p, err)
		}
		d := v.(*Dict)
		if od, _ := d.Get("od"); !od.(*Dict).Ordered {
			t.Errorf("protocol %d: OrderedDict decoded as a dict", p)
		}
		if sh, _ := d.Get("shared"); sh.([]any)[0] != sh.([]any)[1] {
			t.Errorf("protocol %d: shared dict decoded twice", p)
		}
		out, err := Marshal(v)
		if err != nil {
			t.Fatalf("protocol %d: re-encoding: %v", p, err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("go%d.pkl", p)), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out := runPython(t, pythonSample, "check", dir); strings.TrimSpace(out) != "ok" {
		t.Fatalf("python check: %q", out)
	}
}

const pythonNumpy = `
import sys, pickle, json, numpy as np
folder = sys.argv[1]
arrays = {
    'u8': np.arange(6, dtype=np.uint8).reshape(2, 3),
    'f32_fortran': np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
    'i32_big': np.array([1, -2, 3], dtype='>i4'),
    'f16': np.array([1.5, -2, 65504], dtype=np.float16),
    'f64': np.array([[0.25], [-1e300]]),
    'i64': np.array([-(2**62), 5], dtype=np.int64),
    'bool': np.array([True, False, True]),
    'empty': np.zeros((0, 3), dtype=np.int64),
    'scalar': np.float64(3.25),
    'int_scalar': np.int64(-7),
}
obj = dict(arrays)
obj['labels'] = [1, 2]
want = {}
for k, a in arrays.items():
    a = np.asarray(a)
    want[k] = {'dtype': a.dtype.str, 'shape': list(a.shape),
               'fortran': bool(a.flags.f_contiguous and not a.flags.c_contiguous),
               'data': a.tobytes(order='A').hex(), 'values': [float(x) for x in a.ravel(order='A')]}
for p in (2, 3, 4, 5):
    with open(f'{folder}/np{p}.pkl', 'wb') as f:
        pickle.dump(obj, f, protocol=p)
print(json.dumps(want))
`

func TestPythonNumpy(t *testing.T) {
	dir := t.TempDir()
	out := runPython(t, pythonNumpy, dir)
	var want map[string]struct {
		DType   string
		Shape   []int
		Fortran bool
		Data    string
		Values  []float64
	}
	if err := json.Unmarshal([]byte(out), &want); err != nil {
		t.Fatal(err)
	}
	for p := 2; p <= 5; p++ {
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("np%d.pkl", p)))
		if err != nil {
			t.Fatal(err)
		}
		v, err := Unmarshal(data, NumpyGlobals())
		if err != nil {
			t.Fatalf("protocol %d: %v", p, err)
		}
		d := v.(*Dict)
		for name, w := range want {
			got, _ := d.Get(name)
			a, ok := got.(*NDArray)
			if !ok {
				t.Errorf("protocol %d: %s decoded as %T", p, name, got)
				continue
			}
			if a.DType.String() != w.DType || fmt.Sprint(a.Shape) != fmt.Sprint(w.Shape) ||
				a.FortranOrder != w.Fortran || hex.EncodeToString(a.Data) != w.Data {
				t.Errorf("protocol %d: %s = %s %v fortran=%v %x, want %s %v fortran=%v %s",
					p, name, a.DType, a.Shape, a.FortranOrder, a.Data, w.DType, w.Shape, w.Fortran, w.Data)
			}
			vals, err := a.Float64s()
			if err != nil || fmt.Sprint(vals) != fmt.Sprint(w.Values) {
				t.Errorf("protocol %d: %s values %v (%v), want %v", p, name, vals, err, w.Values)
			}
		}
		if labels, _ := d.Get("labels"); !equal(labels, []any{int64(1), int64(2)}) {
			t.Errorf("protocol %d: labels %v", p, labels)
		}
	}
}

// A Python 2 style CIFAR-10 batch: str keys and numpy data pickled as a
// Python 2 str, with __builtin__ names.
func TestPython2NumpyBatch(t *testing.T) {
	raw := "\x00\x01\x02\x03\x04\xff"
	in := "\x80\x02}q\x01(U\x04dataq\x02cnumpy.core.multiarray\n_reconstruct\nq\x03cnumpy\nndarray\nq\x04K\x00\x85U\x01b\x87Rq\x05" +
		"(K\x01K\x02K\x03\x86cnumpy\ndtype\nq\x06U\x02u1K\x00K\x01\x87Rq\x07(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89U\x06" + raw + "tb" +
		"U\x06labelsq\x08]q\x09(K\x06K\x09eu."
	v, err := Unmarshal([]byte(in), NumpyGlobals())
	if err != nil {
		t.Fatal(err)
	}
	d := v.(*Dict)
	got, _ := d.Get("data")
	a := got.(*NDArray)
	if a.DType.String() != "|u1" || fmt.Sprint(a.Shape) != "[2 3]" || string(a.Data) != raw {
		t.Errorf("data = %s %v %x", a.DType, a.Shape, a.Data)
	}
	if labels, _ := d.Get("labels"); !equal(labels, []any{int64(6), int64(9)}) {
		t.Errorf("labels = %v", labels)
	}
}

// Object arrays and structured dtypes are refused.
func TestNumpyRefused(t *testing.T) {
	script := `
import sys, pickle, numpy as np
folder = sys.argv[1]
pickle.dump(np.array([1, 'a'], dtype=object), open(folder + '/obj.pkl', 'wb'), protocol=2)
pickle.dump(np.zeros(2, dtype=[('a', '<i4'), ('b', '<f4')]), open(folder + '/rec.pkl', 'wb'), protocol=2)
`
	dir := t.TempDir()
	runPython(t, script, dir)
	for _, name := range []string{"obj.pkl", "rec.pkl"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Unmarshal(data, NumpyGlobals())
		if err == nil {
			t.Errorf("%s decoded", name)
		}
		t.Logf("%s: %v", name, err)
	}
}
