package checkpoints

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// testHookWriter, when set by tests, wraps the temporary file's writer, so
// that a test can make writing fail midway.
var testHookWriter func(io.Writer) io.Writer

// writeFileAtomic writes path through write: into a temporary file in the
// same folder, synced and then renamed over path, with the folder synced
// after. On failure the temporary file is removed and path is untouched.
func writeFileAtomic(path string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	var w io.Writer = f
	if testHookWriter != nil {
		w = testHookWriter(w)
	}
	if err := write(w); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
