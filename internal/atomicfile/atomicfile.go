// Package atomicfile writes files so that a reader, or a process that starts
// after a crash, sees either the old content or the complete new content,
// never a part: the content goes to a temporary file in the same folder
// (".NAME.tmp-*"), is synced, renamed over the target, and the folder is
// synced so that the rename survives a power loss.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// TempPattern is the pattern of the temporary files Write creates for the
// file base (a file name without folder), as filepath.Glob reads it.
func TempPattern(base string) string { return "." + base + ".tmp-*" }

// testHookWriter, when set by tests, wraps the temporary file's writer, so
// that a test can make writing fail midway.
var testHookWriter func(io.Writer) io.Writer

// SetTestHook installs a function that wraps the temporary file's writer
// (nil removes it). Tests of packages that write through Write use it to
// make a write fail midway; it returns the previous hook.
func SetTestHook(h func(io.Writer) io.Writer) func(io.Writer) io.Writer {
	old := testHookWriter
	testHookWriter = h
	return old
}

// Write writes path through write. On failure the temporary file is removed
// and path is untouched.
func Write(path string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, TempPattern(filepath.Base(path)))
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

// RemoveTemporaries deletes the temporaries that a process killed in the
// middle of Write left for the file base in dir. Only call it while no other
// process may be writing that file.
func RemoveTemporaries(dir, base string) error {
	matches, err := filepath.Glob(filepath.Join(dir, TempPattern(base)))
	if err != nil {
		return err
	}
	for _, m := range matches {
		if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove the stale temporary %s: %w", m, err)
		}
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
