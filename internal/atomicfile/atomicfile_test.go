package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

type failingWriter struct{ after int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.after {
		return 0, errors.New("disk full")
	}
	w.after -= len(p)
	return len(p), nil
}

func TestWriteReplacesOrKeeps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.txt")
	if err := Write(path, func(w io.Writer) error { _, err := w.Write([]byte("old")); return err }); err != nil {
		t.Fatal(err)
	}
	old := SetTestHook(func(io.Writer) io.Writer { return &failingWriter{after: 2} })
	err := Write(path, func(w io.Writer) error { _, err := w.Write([]byte("new content")); return err })
	SetTestHook(old)
	if err == nil {
		t.Fatal("a failing write reported success")
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("after a failed write the file holds %q, want the old content", b)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, TempPattern("f.txt"))); len(m) != 0 {
		t.Fatalf("a failed write left temporaries %v", m)
	}
	if err := Write(path, func(w io.Writer) error { _, err := w.Write([]byte("new")); return err }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Fatalf("file holds %q, want new", b)
	}
}

func TestRemoveTemporaries(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, ".last.pt.tmp-123")
	other := filepath.Join(dir, ".best.pt.tmp-9")
	for _, p := range []string{stale, other} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveTemporaries(dir, "last.pt"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale temporary still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("another file's temporary was removed: %v", err)
	}
}
