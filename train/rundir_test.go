package train

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRunDirRefusesAnExistingRun(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, "last.pt", "metrics.csv")
	_, err := openRunDir(&Options{Out: dir})
	if !errors.Is(err, ErrRunExists) || !strings.Contains(err.Error(), "metrics.csv, last.pt") || !strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("openRunDir on a run folder: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "last.pt")); string(b) != "last.pt" {
		t.Error("the refused run changed last.pt")
	}
	// Resuming from a file in the folder continues it.
	d, err := openRunDir(&Options{Out: dir, Resume: filepath.Join(dir, "last.pt")})
	if err != nil {
		t.Fatalf("resume into the folder: %v", err)
	}
	d.close()
	// Resuming from another folder's file does not make this one free.
	other := t.TempDir()
	if _, err := openRunDir(&Options{Out: dir, Resume: filepath.Join(other, "last.pt")}); !errors.Is(err, ErrRunExists) {
		t.Fatalf("resume from elsewhere into a run folder: %v", err)
	}
	// --overwrite removes the old run's files.
	d, err = openRunDir(&Options{Out: dir, Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	d.close()
	for _, n := range []string{"last.pt", "metrics.csv"} {
		if _, err := os.Stat(filepath.Join(dir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("--overwrite left %s", n)
		}
	}
}

func TestRunDirLock(t *testing.T) {
	dir := t.TempDir()
	a, err := openRunDir(&Options{Out: dir})
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to open files: a second open in this process conflicts too.
	_, err = openRunDir(&Options{Out: dir})
	if !errors.Is(err, ErrRunLocked) || !strings.Contains(err.Error(), "process "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second openRunDir while locked: %v", err)
	}
	a.close()
	b, err := openRunDir(&Options{Out: dir})
	if err != nil {
		t.Fatalf("openRunDir after the holder closed: %v", err)
	}
	b.close()
}

func TestRunDirRemovesStaleTemporaries(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, ".last.pt.tmp-1", ".best.pt.tmp-22", ".config.json.tmp-3", "notes.txt")
	d, err := openRunDir(&Options{Out: dir})
	if err != nil {
		t.Fatal(err)
	}
	d.close()
	hidden, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	if len(hidden) != 0 {
		t.Errorf("after start the temporaries %v are still there", hidden)
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Errorf("a file that is not a run's temporary was removed: %v", err)
	}
}
