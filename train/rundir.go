package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/gsrmt/gsrmt/internal/atomicfile"
)

// A run folder's contract (README.md, "What gsrmt promises about a run
// folder"): a folder that holds a run is never written over unless the user
// resumes into it or asks for --overwrite; one process writes it at a time
// (an flock on LockFile, released by the kernel when the holder dies); the
// temporaries of a killed checkpoint write are removed at the next start.

// LockFile is the name of the lock a training run holds in its folder.
const LockFile = ".gsrmt.lock"

// RunFiles are the files that make a folder hold a run.
var RunFiles = []string{"config.json", "metrics.csv", "last.pt", "best.pt"}

// runOutputs are every file a run writes: RunFiles, the curves and the step
// log; the TensorBoard folder (TensorBoardDir) is one too, removed whole.
var runOutputs = append(append([]string{}, RunFiles...), "curves.png", EventsFile)

// ErrRunExists is returned when --out already holds a run and the options
// neither resume it nor ask to overwrite it.
var ErrRunExists = errors.New("the run folder already holds a run")

// ErrRunLocked is returned when another process is writing the run folder.
var ErrRunLocked = errors.New("the run folder is in use by another process")

// runDir is an open run folder whose lock this process holds.
type runDir struct {
	path string
	lock *os.File
}

// openRunDir creates the run folder o.Out if needed, takes its lock and
// checks that the run may write there: the folder holds no run, or o.Resume
// is a file inside it, or o.Overwrite is set (then the old run's files are
// removed). Temporaries left by a killed checkpoint write are removed.
func openRunDir(o *Options) (*runDir, error) {
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("out: %w", err)
	}
	d := &runDir{path: o.Out}
	if err := d.acquire(); err != nil {
		return nil, err
	}
	if err := d.checkFree(o); err != nil {
		d.close()
		return nil, err
	}
	if err := d.removeTemporaries(); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// acquire takes an exclusive, non-blocking flock on the folder's lock file and
// writes this process's PID into it.
func (d *runDir) acquire() error {
	name := filepath.Join(d.path, LockFile)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("out: lock %s: %w", name, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := "another process"
		if b, rerr := os.ReadFile(name); rerr == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				if pid, perr := strconv.Atoi(f[0]); perr == nil {
					holder = fmt.Sprintf("process %d", pid)
				}
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("out %s: %w: %s holds %s; wait for it to finish or choose another --out", d.path, ErrRunLocked, holder, name)
		}
		return fmt.Errorf("out: lock %s: %w", name, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	d.lock = f
	return nil
}

// checkFree refuses a folder that holds a run the options would overwrite.
func (d *runDir) checkFree(o *Options) error {
	var found []string
	for _, name := range RunFiles {
		if _, err := os.Stat(filepath.Join(d.path, name)); err == nil {
			found = append(found, name)
		}
	}
	if len(found) == 0 || (o.Resume != "" && sameDir(filepath.Dir(o.Resume), d.path)) {
		return nil
	}
	if o.Overwrite {
		names, err := d.outputs()
		if err != nil {
			return err
		}
		for _, name := range names {
			if err := os.Remove(filepath.Join(d.path, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("out: --overwrite: %w", err)
			}
		}
		if err := os.RemoveAll(filepath.Join(d.path, TensorBoardDir)); err != nil {
			return fmt.Errorf("out: --overwrite: %w", err)
		}
		return nil
	}
	return fmt.Errorf("out %s: %w (%s): continue it with --resume %s, start over with --overwrite, or choose another --out",
		d.path, ErrRunExists, strings.Join(found, ", "), filepath.Join(d.path, "last.pt"))
}

// removeTemporaries deletes the temporaries that a process killed in the
// middle of an atomic write of a run file left behind. The lock guarantees
// that no live writer owns them.
func (d *runDir) removeTemporaries() error {
	names, err := d.outputs()
	if err != nil {
		return err
	}
	names = append(names, historyGlob) // a glob: any epoch's history checkpoint
	for _, name := range names {
		if err := atomicfile.RemoveTemporaries(d.path, name); err != nil {
			return fmt.Errorf("out: %w", err)
		}
	}
	return nil
}

// outputs lists the files a run writes that are in the folder: runOutputs
// and the history checkpoints (checkpoint-EPOCH.pt).
func (d *runDir) outputs() ([]string, error) {
	names := append([]string{}, runOutputs...)
	history, err := historyFiles(d.path)
	if err != nil {
		return nil, err
	}
	for _, path := range history {
		names = append(names, filepath.Base(path))
	}
	return names, nil
}

// close releases the lock. The lock file stays: removing it would let a
// process that opened it before the removal lock an orphaned inode.
func (d *runDir) close() {
	if d.lock != nil {
		_ = syscall.Flock(int(d.lock.Fd()), syscall.LOCK_UN)
		d.lock.Close()
		d.lock = nil
	}
}

// sameDir reports whether a and b name the same folder.
func sameDir(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
