package checkpoints

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/gsrmt/gsrmt/internal/pickle"
)

// Layout constants of PyTorch's zip serialization (caffe2/serialize).
const (
	zipLocalHeaderLen = 30 // fixed part of a zip local file header
	fieldAlignment    = 64 // PyTorch aligns every record's data to 64 bytes
	fileFormatVersion = "3\n"
	// defaultArchive is the record prefix torch.save uses when it writes
	// to a stream rather than a named file.
	defaultArchive = "archive"
)

// Save writes v to path in PyTorch's zip format, the one torch.save writes
// since PyTorch 1.6, so that torch.load(path, weights_only=True) opens it.
// v is a tree of *Dict, map[string]any (keys sorted), []any, Tuple, *Tensor,
// strings, integers, floats, bools and nil. Each storage is written once,
// however many tensors view it. The write is atomic: the data goes to a
// temporary file in path's folder, which is synced and renamed over path, so
// a failure leaves any previous file at path intact.
//
// Records are named <archive>/data.pkl, <archive>/byteorder,
// <archive>/data/<key> and <archive>/version, where <archive> is path's base
// name without its extension, as torch.save names them.
func Save(path string, v any) error {
	p, err := prepareZip(v)
	if err != nil {
		return fmt.Errorf("checkpoints: save %s: %w", path, err)
	}
	if err := writeFileAtomic(path, func(w io.Writer) error { return p.write(w, archiveName(path)) }); err != nil {
		return fmt.Errorf("checkpoints: save %s: %w", path, err)
	}
	return nil
}

// Write writes v to w in PyTorch's zip format, as Save does, with records
// under "archive/" as torch.save names them when it writes to a stream.
func Write(w io.Writer, v any) error {
	p, err := prepareZip(v)
	if err == nil {
		err = p.write(w, defaultArchive)
	}
	if err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	return nil
}

// archiveName returns the record prefix torch.save uses for a file: its base
// name without extension, or "archive" where torch would fall back to a
// stream (names that are not ASCII).
func archiveName(path string) string {
	base := filepath.Base(path)
	if i := strings.LastIndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	if base == "" {
		return defaultArchive
	}
	for i := 0; i < len(base); i++ {
		if base[i] >= utf8.RuneSelf || base[i] < ' ' {
			return defaultArchive
		}
	}
	return base
}

// preparedZip is a checkpoint ready to be written: its pickle, and the
// storages it names.
type preparedZip struct {
	pickle   []byte
	storages []*Storage
	keys     map[*Storage]string
}

func prepareZip(v any) (*preparedZip, error) {
	c := newToPickle()
	tree, err := c.convert(v, "", 0)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := pickle.NewEncoder(&buf)
	enc.PersistentID = c.persistentID
	if err := enc.Encode(tree); err != nil {
		return nil, err
	}
	// torch.save writes storages in the order of their keys, as strings.
	storages := append([]*Storage(nil), c.storages...)
	sort.Slice(storages, func(i, j int) bool { return c.keys[storages[i]] < c.keys[storages[j]] })
	return &preparedZip{pickle: buf.Bytes(), storages: storages, keys: c.keys}, nil
}

func (p *preparedZip) write(w io.Writer, archive string) error {
	zw := &alignedZipWriter{zw: zip.NewWriter(w)}
	if err := zw.add(archive+"/data.pkl", p.pickle); err != nil {
		return err
	}
	if err := zw.add(archive+"/byteorder", []byte("little")); err != nil {
		return err
	}
	for _, s := range p.storages {
		if err := zw.add(archive+"/data/"+p.keys[s], s.Data); err != nil {
			return err
		}
	}
	if err := zw.add(archive+"/version", []byte(fileFormatVersion)); err != nil {
		return err
	}
	if err := zw.zw.Close(); err != nil {
		return fmt.Errorf("write zip directory: %w", err)
	}
	return nil
}

// alignedZipWriter writes stored (uncompressed) zip records whose data
// starts at a multiple of 64 bytes, padding the local header's extra field
// with an "FB" record as PyTorch's writer does.
type alignedZipWriter struct {
	zw  *zip.Writer
	off int64 // bytes written so far
}

func (a *alignedZipWriter) add(name string, data []byte) error {
	start := a.off + zipLocalHeaderLen + int64(len(name)) + 4
	pad := (fieldAlignment - start%fieldAlignment) % fieldAlignment
	extra := make([]byte, 4+pad)
	extra[0], extra[1] = 'F', 'B'
	binary.LittleEndian.PutUint16(extra[2:], uint16(pad))
	for i := 4; i < len(extra); i++ {
		extra[i] = 'Z'
	}
	fh := &zip.FileHeader{
		Name:               name,
		Method:             zip.Store,
		CRC32:              crc32.ChecksumIEEE(data),
		CompressedSize64:   uint64(len(data)),
		UncompressedSize64: uint64(len(data)),
		Extra:              extra,
		CreatorVersion:     20,
		ReaderVersion:      20,
	}
	if !isASCII(name) {
		fh.Flags |= 0x800 // names are UTF-8
	}
	fw, err := a.zw.CreateRaw(fh)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := fw.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	a.off = start + pad + int64(len(data))
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Load reads a checkpoint written by torch.save (or Save): the zip format of
// PyTorch 1.6 and later, or the legacy format of earlier versions
// (_use_new_zipfile_serialization=False). Tensors come back as *Tensor over
// shared *Storage, dicts as *Dict, lists as []any, tuples as Tuple, numbers
// as int64, *big.Int or float64. Only the globals that plain data, numpy
// arrays and tensors need are allowed; anything else is an error naming the
// class, and nothing in the file is executed.
func Load(path string) (any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	v, err := read(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("checkpoints: load %s: %w", path, err)
	}
	return v, nil
}

// Read reads a checkpoint of size bytes from r, as Load does.
func Read(r io.ReaderAt, size int64) (any, error) {
	v, err := read(r, size)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	return v, nil
}

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
	return nil, fmt.Errorf("not a PyTorch checkpoint: starts with %q, want a zip archive or a pickle", magic[:n])
}

// ErrDuplicateRecord is returned (wrapped, with the record's name) for a zip
// checkpoint that holds two records of the same name: a forged or corrupt
// file, which torch.load and this package would read differently.
var ErrDuplicateRecord = errors.New("zip archive holds two records of the same name")

func readZip(r io.ReaderAt, size int64) (any, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("open zip: %w", err)
	}
	files := make(map[string]*zip.File, len(zr.File))
	prefix := ""
	for _, f := range zr.File {
		if _, dup := files[f.Name]; dup {
			// torch.load reads the first of two records with one name;
			// reading either would make the two disagree on the weights.
			return nil, fmt.Errorf("%w: %q", ErrDuplicateRecord, f.Name)
		}
		files[f.Name] = f
		// PyTorch's reader takes the archive name from the records; the
		// pickle is <archive>/data.pkl.
		if dir, base := splitRecord(f.Name); base == "data.pkl" && prefix == "" {
			prefix = dir
		}
	}
	if prefix == "" {
		return nil, errors.New("zip archive has no <archive>/data.pkl record: not a PyTorch checkpoint")
	}
	bigEndian := false
	if f, ok := files[prefix+"byteorder"]; ok {
		b, err := readRecord(f, -1, size, 16)
		if err != nil {
			return nil, err
		}
		switch string(b) {
		case "little":
		case "big":
			bigEndian = true
		default:
			return nil, fmt.Errorf("record %s: unknown byte order %q", f.Name, b)
		}
	}
	pkl, err := readRecord(files[prefix+"data.pkl"], -1, size, size)
	if err != nil {
		return nil, err
	}
	storages := make(map[string]*Storage)
	dec := pickle.NewDecoder(bytes.NewReader(pkl))
	dec.Globals = allowed
	dec.PersistentLoad = func(pid any) (any, error) {
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
		name := prefix + "data/" + key
		f, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("storage record %s is missing", name)
		}
		if n > (size+1)/int64(dtype.Size()) {
			return nil, fmt.Errorf("storage %s of %d %v elements is larger than the file", key, n, dtype)
		}
		data, err := readRecord(f, n*int64(dtype.Size()), size, size)
		if err != nil {
			return nil, err
		}
		if bigEndian {
			swapBytes(data, dtype.Size())
		}
		s := &Storage{Key: key, DType: dtype, Data: data}
		storages[key] = s
		return storageRef{s: s}, nil
	}
	v, err := dec.Decode()
	if err != nil {
		return nil, fmt.Errorf("record %sdata.pkl: %w", prefix, err)
	}
	return convertDecoded(v)
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
