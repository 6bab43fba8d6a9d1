package torchfmt

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gsrmt/gsrmt/internal/pickle"
)

// Load reads a checkpoint written by torch.save (or Save): the zip format of
// PyTorch 1.6 and later, or the legacy format of earlier versions
// (_use_new_zipfile_serialization=False). Tensors come back as *Tensor over
// shared *Storage, dicts as *Dict, lists as []any, tuples as Tuple, numbers
// as int64, *big.Int or float64, instances of other classes as inert
// *Object records (see the package documentation). Only the globals that
// plain data, numpy arrays and tensors need may be called; anything else is
// an error naming the class, and nothing in the file is executed.
func Load(path string) (any, error) {
	f, size, err := openSized(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	v, err := read(f, size)
	if err != nil {
		return nil, fmt.Errorf("torchfmt: load %s: %w", path, err)
	}
	return v, nil
}

// Read reads a checkpoint of size bytes from r, as Load does.
func Read(r io.ReaderAt, size int64) (any, error) {
	v, err := read(r, size)
	if err != nil {
		return nil, fmt.Errorf("torchfmt: %w", err)
	}
	return v, nil
}

// openSized opens path for reading and returns its size.
func openSized(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("torchfmt: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("torchfmt: %w", err)
	}
	return f, fi.Size(), nil
}

// read tells the zip format from the legacy one by the first bytes.
func read(r io.ReaderAt, size int64) (any, error) {
	var magic [4]byte
	n, err := r.ReadAt(magic[:], 0)
	if n < 2 {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read header: %w", err)
	}
	switch {
	case n == 4 && string(magic[:]) == "PK\x03\x04":
		return readZip(r, size)
	case magic[0] == 0x80 && magic[1] >= 2 && magic[1] <= pickle.HighestProtocol:
		return readLegacy(r, size)
	}
	return nil, fmt.Errorf("%w: starts with %q, want a zip archive or a pickle", ErrFormat, magic[:n])
}

// parseStoragePID checks a storage persistent id, ('storage', storage_type,
// key, location, numel) in the zip format and ('storage', storage_type, key,
// location, numel, view_metadata) in the legacy one, and returns its parts.
func parseStoragePID(pid any, n int) (key string, dtype DType, numel int64, view any, err error) {
	t, ok := pid.(Tuple)
	if !ok || len(t) == 0 {
		return "", 0, 0, nil, fmt.Errorf("persistent id %v is not a storage", pid)
	}
	kind, _ := pythonString(t[0])
	if kind != "storage" {
		return "", 0, 0, nil, fmt.Errorf("persistent id of kind %q is not supported, only storages", kind)
	}
	if len(t) != n {
		return "", 0, 0, nil, fmt.Errorf("storage persistent id has %d items, want %d", len(t), n)
	}
	st, ok := t[1].(pickle.TorchStorageType)
	if !ok {
		return "", 0, 0, nil, fmt.Errorf("storage type is a %T", t[1])
	}
	dtype, ok = dtypeOfStorage(st.Name)
	if !ok {
		return "", 0, 0, nil, fmt.Errorf("unsupported storage type torch.%s", st.Name)
	}
	if key, ok = pythonString(t[2]); !ok || key == "" || strings.ContainsAny(key, "/\\") || key == "." || key == ".." {
		return "", 0, 0, nil, fmt.Errorf("bad storage key %v", t[2])
	}
	if _, ok := pythonString(t[3]); !ok {
		return "", 0, 0, nil, fmt.Errorf("bad storage location %v", t[3])
	}
	if numel, ok = t[4].(int64); !ok || numel < 0 {
		return "", 0, 0, nil, fmt.Errorf("bad storage size %v", t[4])
	}
	if n == 6 {
		view = t[5]
	}
	return key, dtype, numel, view, nil
}

// pythonString returns a str, or bytes as Python 2 pickles may hold them.
func pythonString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case []byte:
		return string(v), true
	}
	return "", false
}

// readFullAt fills p from r at off; reaching the end of r early is
// io.ErrUnexpectedEOF.
func readFullAt(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// noEOF turns the end of a stream met inside a record into
// io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
