package torchfmt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strings"
)

// LoadSafetensors reads a safetensors file: its tensors in the order of
// their data, each over a storage of its own, and its metadata (nil when
// the file has none).
func LoadSafetensors(path string) ([]NamedTensor, map[string]string, error) {
	f, size, err := openSized(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	ts, md, err := readSafetensors(f, size)
	if err != nil {
		return nil, nil, fmt.Errorf("torchfmt: load %s: %w", path, err)
	}
	return ts, md, nil
}

// ReadSafetensors reads safetensors data of size bytes from r, as
// LoadSafetensors does.
func ReadSafetensors(r io.ReaderAt, size int64) ([]NamedTensor, map[string]string, error) {
	ts, md, err := readSafetensors(r, size)
	if err != nil {
		return nil, nil, fmt.Errorf("torchfmt: safetensors: %w", err)
	}
	return ts, md, nil
}

// IsSafetensors reports whether the data of r, read from a file named name,
// is safetensors rather than a PyTorch checkpoint: by name's extension
// (".safetensors"), or else by the first bytes, a little-endian header
// length then '{', where a PyTorch checkpoint starts with "PK" (zip) or
// 0x80 (pickle). Data too short for either format is not safetensors.
func IsSafetensors(name string, r io.ReaderAt) bool {
	if strings.EqualFold(filepath.Ext(name), ".safetensors") {
		return true
	}
	var head [9]byte
	if n, _ := r.ReadAt(head[:], 0); n < len(head) {
		return false // too short for either format; the reader says why
	}
	if bytes.HasPrefix(head[:], []byte("PK")) || head[0] == 0x80 {
		return false
	}
	return head[8] == '{'
}

// safetensorsEntry is a tensor of the header, as JSON gives it.
type safetensorsEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// safetensorsTensor is a checked header entry.
type safetensorsTensor struct {
	name string
	safetensorsEntry
	dtype DType
}

func readSafetensors(r io.ReaderAt, size int64) ([]NamedTensor, map[string]string, error) {
	raw, metadata, dataStart, err := readSafetensorsHeader(r, size)
	if err != nil {
		return nil, nil, err
	}
	entries := make([]safetensorsTensor, 0, len(raw))
	for name, msg := range raw {
		e, err := parseSafetensorsEntry(name, msg, size-dataStart)
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool {
		a, b := entries[i].DataOffsets, entries[j].DataOffsets
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		if a[1] != b[1] {
			return a[1] < b[1]
		}
		return entries[i].name < entries[j].name
	})
	out := make([]NamedTensor, len(entries))
	var prevEnd int64
	for i, e := range entries {
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if begin < prevEnd {
			return nil, nil, fmt.Errorf("tensor %q overlaps the tensor before it", e.name)
		}
		prevEnd = end
		data := make([]byte, end-begin)
		if err := readFullAt(r, data, dataStart+begin); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", e.name, err)
		}
		shape := e.Shape
		if shape == nil {
			shape = []int64{}
		}
		out[i] = NamedTensor{e.name, &Tensor{
			Storage: &Storage{Key: e.name, DType: e.dtype, Data: data},
			Shape:   shape,
			Stride:  ContiguousStrides(shape),
		}}
	}
	return out, metadata, nil
}

// readSafetensorsHeader reads the JSON header: the tensors' entries by
// name, the metadata, and where the data starts.
func readSafetensorsHeader(r io.ReaderAt, size int64) (map[string]json.RawMessage, map[string]string, int64, error) {
	var hdr [8]byte
	if err := readFullAt(r, hdr[:], 0); err != nil {
		return nil, nil, 0, fmt.Errorf("read header length: %w", err)
	}
	hlen := binary.LittleEndian.Uint64(hdr[:])
	if hlen > maxSafetensorsHeader || hlen > uint64(size-8) {
		return nil, nil, 0, fmt.Errorf("header length %d is larger than the file or the format's limit", hlen)
	}
	header := make([]byte, hlen)
	if err := readFullAt(r, header, 8); err != nil {
		return nil, nil, 0, fmt.Errorf("read header: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(header, &raw); err != nil {
		return nil, nil, 0, fmt.Errorf("header: %w", err)
	}
	var metadata map[string]string
	if m, ok := raw[safetensorsMetadataKey]; ok {
		if err := json.Unmarshal(m, &metadata); err != nil {
			return nil, nil, 0, fmt.Errorf("header: __metadata__ must map strings to strings: %w", err)
		}
		delete(raw, safetensorsMetadataKey)
	}
	return raw, metadata, 8 + int64(hlen), nil
}

// parseSafetensorsEntry checks a header entry against the dataLen bytes of
// data: a known dtype, a valid shape, and offsets inside the data that hold
// exactly the shape's bytes.
func parseSafetensorsEntry(name string, msg json.RawMessage, dataLen int64) (safetensorsTensor, error) {
	e := safetensorsTensor{name: name}
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e.safetensorsEntry); err != nil {
		return e, fmt.Errorf("tensor %q: %w", name, err)
	}
	var ok bool
	if e.dtype, ok = dtypeOfSafetensors(e.DType); !ok {
		return e, fmt.Errorf("tensor %q: unsupported dtype %q", name, e.DType)
	}
	n, err := ShapeNumel(e.Shape)
	if err != nil {
		return e, fmt.Errorf("tensor %q: %w", name, err)
	}
	begin, end := e.DataOffsets[0], e.DataOffsets[1]
	if begin < 0 || end < begin || end > dataLen {
		return e, fmt.Errorf("tensor %q: data offsets [%d, %d] outside the %d bytes of data", name, begin, end, dataLen)
	}
	if n > math.MaxInt64/int64(e.dtype.Size()) || n*int64(e.dtype.Size()) != end-begin {
		return e, fmt.Errorf("tensor %q: %s of shape %v does not take %d bytes", name, e.dtype, e.Shape, end-begin)
	}
	return e, nil
}
