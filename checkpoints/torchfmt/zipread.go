package torchfmt

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gsrmt/gsrmt/internal/pickle"
)

// zipArchive is an opened zip checkpoint: its records by name, and the
// archive folder ("<archive>/") that holds data.pkl.
type zipArchive struct {
	files     map[string]*zip.File
	prefix    string
	size      int64 // bytes of the whole archive
	bigEndian bool
}

func readZip(r io.ReaderAt, size int64) (any, error) {
	a, err := openZip(r, size)
	if err != nil {
		return nil, err
	}
	pkl, err := readRecord(a.files[a.prefix+"data.pkl"], -1, size, size)
	if err != nil {
		return nil, err
	}
	storages := make(map[string]*Storage)
	dec := pickle.NewDecoder(bytes.NewReader(pkl))
	dec.Globals, dec.Records = allowed, isRecordClass
	dec.PersistentLoad = func(pid any) (any, error) { return a.loadStorage(pid, storages) }
	v, err := dec.Decode()
	if err != nil {
		return nil, fmt.Errorf("record %sdata.pkl: %w", a.prefix, err)
	}
	return convertDecoded(v)
}

// openZip indexes the records of a zip checkpoint, refusing duplicate
// names, and reads its byte order.
func openZip(r io.ReaderAt, size int64) (*zipArchive, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("open zip: %w", err)
	}
	a := &zipArchive{files: make(map[string]*zip.File, len(zr.File)), size: size}
	for _, f := range zr.File {
		if _, dup := a.files[f.Name]; dup {
			// torch.load reads the first of two records with one name;
			// reading either would make the two disagree on the weights.
			return nil, fmt.Errorf("%w: %q", ErrDuplicateRecord, f.Name)
		}
		a.files[f.Name] = f
		// PyTorch's reader takes the archive name from the records; the
		// pickle is <archive>/data.pkl.
		if dir, base := splitRecord(f.Name); base == "data.pkl" && a.prefix == "" {
			a.prefix = dir
		}
	}
	if a.prefix == "" {
		return nil, fmt.Errorf("zip archive has no <archive>/data.pkl record: %w", ErrFormat)
	}
	if f, ok := a.files[a.prefix+"byteorder"]; ok {
		b, err := readRecord(f, -1, size, 16)
		if err != nil {
			return nil, err
		}
		switch string(b) {
		case "little":
		case "big":
			a.bigEndian = true
		default:
			return nil, fmt.Errorf("record %s: unknown byte order %q", f.Name, b)
		}
	}
	return a, nil
}

// loadStorage is the pickle's PersistentLoad: it reads the record
// data/<key> a storage persistent id names, once per key.
func (a *zipArchive) loadStorage(pid any, storages map[string]*Storage) (any, error) {
	key, dtype, n, _, err := parseStoragePID(pid, 5)
	if err != nil {
		return nil, err
	}
	if s, ok := storages[key]; ok {
		if s.DType != dtype {
			return nil, fmt.Errorf("storage %s is read both as %v and %v", key, s.DType, dtype)
		}
		return storageRef{s: s}, nil
	}
	name := a.prefix + "data/" + key
	f, ok := a.files[name]
	if !ok {
		return nil, fmt.Errorf("storage record %s is missing", name)
	}
	if n > (a.size+1)/int64(dtype.Size()) {
		return nil, fmt.Errorf("storage %s of %d %v elements is larger than the file", key, n, dtype)
	}
	data, err := readRecord(f, n*int64(dtype.Size()), a.size, a.size)
	if err != nil {
		return nil, err
	}
	if a.bigEndian {
		swapBytes(data, dtype.Size())
	}
	s := &Storage{Key: key, DType: dtype, Data: data}
	storages[key] = s
	return storageRef{s: s}, nil
}

// splitRecord splits a record name into its archive folder (with the slash)
// and the rest, for names of the form <archive>/<rest>.
func splitRecord(name string) (dir, rest string) {
	i := strings.IndexByte(name, '/')
	if i <= 0 {
		return "", name
	}
	return name[:i+1], name[i+1:]
}

// readRecord reads the zip record f, which must hold exactly want bytes (any
// number when want < 0, up to limit). archiveSize bounds the memory a
// corrupt size field can claim.
func readRecord(f *zip.File, want, archiveSize, limit int64) ([]byte, error) {
	n := f.UncompressedSize64
	if want >= 0 && n != uint64(want) {
		return nil, fmt.Errorf("record %s holds %d bytes, want %d", f.Name, n, want)
	}
	if n > uint64(limit) {
		return nil, fmt.Errorf("record %s of %d bytes is larger than expected (at most %d)", f.Name, n, limit)
	}
	// A stored record cannot be larger than the archive; deflate expands
	// at most about 1032 times.
	bound := uint64(archiveSize)
	if f.Method != zip.Store {
		bound *= 1032
	}
	if n > bound || (f.Method == zip.Store && f.CompressedSize64 != n) {
		return nil, fmt.Errorf("record %s: corrupt size %d", f.Name, n)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", f.Name, err)
	}
	defer rc.Close()
	data := make([]byte, n)
	if _, err := io.ReadFull(rc, data); err != nil {
		return nil, fmt.Errorf("record %s: %w", f.Name, err)
	}
	// Reading to the end makes archive/zip check the CRC-32.
	if m, err := rc.Read(make([]byte, 1)); m != 0 || err != io.EOF {
		if err == nil || err == io.EOF {
			err = errors.New("longer than its size")
		}
		return nil, fmt.Errorf("record %s: %w", f.Name, err)
	}
	return data, nil
}
