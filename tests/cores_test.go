package tests

import (
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// A CPU run whose CPUs other processes keep busy drops to the threads the
// CPUs they leave free allow (coreShare), and says so. (--fixed-threads,
// which keeps them, is train's TestCoreShareOff: beside busy CPUs it is
// the slow case this avoids.)
func TestCLITrainSharesCores(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs 2 CPUs: one for the run, the others kept busy")
	}
	data := makeImageFolder(t, 20, 2)
	// One spinning process per CPU: whatever the run gets, others hold most.
	for i := 0; i < runtime.NumCPU(); i++ {
		p := exec.Command("sh", "-c", "while :; do :; done")
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = p.Process.Kill(); _ = p.Wait() }()
	}
	_, errOut, code := runCLI(t, trainArgs(data, t.TempDir(), "--threads", "2", "--epochs", "3")...)
	if code != 0 || !strings.Contains(errOut, "libtorch threads (of 2) while they do") {
		t.Fatalf("train beside busy CPUs: exit %d, no message that it took fewer threads:\n%s", code, errOut)
	}
}
