// Package testutil holds helpers shared by gsrmt's tests: locating a Python
// interpreter with PyTorch for interop tests and the shared real data sets.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var (
	pythonOnce sync.Once
	pythonPath string
	pythonErr  string
)

// PythonTorch returns a Python interpreter that can import torch (Debian's
// python3-torch by default; override with GSRMT_PYTHON). When none is found
// the test is skipped with the reason, except under CI (CI set), where the
// interop tests are required and the test fails instead.
func PythonTorch(t testing.TB) string {
	t.Helper()
	pythonOnce.Do(func() {
		candidates := []string{os.Getenv("GSRMT_PYTHON"), "/usr/bin/python3", "python3"}
		for _, c := range candidates {
			if c == "" {
				continue
			}
			out, err := exec.Command(c, "-c", "import torch, numpy; print(torch.__version__)").CombinedOutput()
			if err == nil {
				pythonPath = c
				return
			}
			pythonErr += c + ": " + strings.TrimSpace(lastLine(string(out))) + "; "
		}
	})
	if pythonPath == "" {
		Missing(t, "no Python with torch and numpy (install python3-torch, or set GSRMT_PYTHON): "+pythonErr)
	}
	return pythonPath
}

// Missing reports that something a test needs is not installed: the test
// is skipped with msg, except under CI (CI set), where every dependency is
// installed by .ci/run and its absence fails the test.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// RepoRoot returns the repository's root folder (the one holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate testutil source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// SharedCIFAR10 returns ../shared/data/cifar10 next to the repository (the
// real CIFAR-10 JPEGs), or skips the test with a clear message when absent.
// GSRMT_CIFAR10_DIR overrides the location.
func SharedCIFAR10(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("GSRMT_CIFAR10_DIR")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "..", "shared", "data", "cifar10")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("real CIFAR-10 images not found at %s (set GSRMT_CIFAR10_DIR): %v", dir, err)
	}
	return dir
}

// FashionMNISTDir returns Debian's dataset-fashion-mnist folder, or skips the
// test when the package is not installed. GSRMT_FASHION_MNIST_DIR overrides it.
func FashionMNISTDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("GSRMT_FASHION_MNIST_DIR")
	if dir == "" {
		dir = "/usr/share/datasets/fashion-mnist"
	}
	if _, err := os.Stat(dir); err != nil {
		Missing(t, "Fashion-MNIST not found at "+dir+" (apt-get install dataset-fashion-mnist)")
	}
	return dir
}

// yacsStandIn pickles as yacs.config.CfgNode does (Swin's config object): a
// dict subclass whose __init__ fills __dict__ with its flags. Pickle names a
// class by module and name only, so scripts that import it from
// WriteYacsStandIn's folder write the pickles the real package writes.
const yacsStandIn = `
class CfgNode(dict):
    IMMUTABLE = "__immutable__"
    DEPRECATED_KEYS = "__deprecated_keys__"
    RENAMED_KEYS = "__renamed_keys__"
    NEW_ALLOWED = "__new_allowed__"

    def __init__(self, init_dict=None, key_list=None, new_allowed=False):
        super().__init__(init_dict or {})
        self.__dict__[CfgNode.IMMUTABLE] = False
        self.__dict__[CfgNode.DEPRECATED_KEYS] = set()
        self.__dict__[CfgNode.RENAMED_KEYS] = {}
        self.__dict__[CfgNode.NEW_ALLOWED] = new_allowed

    def __getattr__(self, name):
        if name in self:
            return self[name]
        raise AttributeError(name)
`

// WriteYacsStandIn writes a yacs package (yacs/config.py with the CfgNode
// stand-in) into dir, for Python scripts that put dir on sys.path.
func WriteYacsStandIn(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "yacs"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"__init__.py": "", "config.py": yacsStandIn} {
		if err := os.WriteFile(filepath.Join(dir, "yacs", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
