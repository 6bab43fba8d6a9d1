package torchfmt

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/gsrmt/gsrmt/internal/atomicfile"
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
		return fmt.Errorf("torchfmt: save %s: %w", path, err)
	}
	if err := atomicfile.Write(path, func(w io.Writer) error { return p.write(w, archiveName(path)) }); err != nil {
		return fmt.Errorf("torchfmt: save %s: %w", path, err)
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
		return fmt.Errorf("torchfmt: %w", err)
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
