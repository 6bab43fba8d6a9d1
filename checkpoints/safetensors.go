package checkpoints

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
)

// NamedTensor is a tensor with its name, such as a state_dict entry.
type NamedTensor struct {
	Name   string
	Tensor *Tensor
}

// maxSafetensorsHeader is the largest header the safetensors format allows.
const maxSafetensorsHeader = 100_000_000

const safetensorsMetadataKey = "__metadata__"

// NamedTensors returns the entries of a flat dict of tensors, such as a
// state_dict, in order; keys must be strings and values tensors.
func NamedTensors(d *Dict) ([]NamedTensor, error) {
	out := make([]NamedTensor, 0, d.Len())
	for _, e := range d.Entries() {
		name, ok := e.Key.(string)
		if !ok {
			return nil, fmt.Errorf("checkpoints: key %v is a %T, not a string", e.Key, e.Key)
		}
		t, ok := e.Value.(*Tensor)
		if !ok {
			return nil, fmt.Errorf("checkpoints: entry %q is a %T, not a tensor", name, e.Value)
		}
		out = append(out, NamedTensor{name, t})
	}
	return out, nil
}

// TensorDict returns tensors as an OrderedDict from name to tensor, the
// shape of a state_dict.
func TensorDict(tensors []NamedTensor) *Dict {
	d := NewOrderedDict()
	for _, nt := range tensors {
		d.Set(nt.Name, nt.Tensor) // cannot fail: strings are hashable
	}
	return d
}

// SaveSafetensors writes tensors to path in the safetensors format, in the
// given order, with optional metadata; the write is atomic, as Save's is.
func SaveSafetensors(path string, tensors []NamedTensor, metadata map[string]string) error {
	header, err := safetensorsHeader(tensors, metadata)
	if err != nil {
		return fmt.Errorf("checkpoints: save %s: %w", path, err)
	}
	err = writeFileAtomic(path, func(w io.Writer) error { return writeSafetensors(w, header, tensors) })
	if err != nil {
		return fmt.Errorf("checkpoints: save %s: %w", path, err)
	}
	return nil
}

// WriteSafetensors writes tensors to w in the safetensors format: an 8-byte
// little-endian header length, a JSON header giving each tensor's dtype
// (F32, F16, BF16, I64, ...), shape and data_offsets, plus "__metadata__"
// when metadata is not empty, then the tensors' contiguous bytes in the
// given order.
func WriteSafetensors(w io.Writer, tensors []NamedTensor, metadata map[string]string) error {
	header, err := safetensorsHeader(tensors, metadata)
	if err == nil {
		err = writeSafetensors(w, header, tensors)
	}
	if err != nil {
		return fmt.Errorf("checkpoints: safetensors: %w", err)
	}
	return nil
}

func safetensorsHeader(tensors []NamedTensor, metadata map[string]string) ([]byte, error) {
	var h bytes.Buffer
	h.WriteByte('{')
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		h.WriteString(`"` + safetensorsMetadataKey + `":{`)
		for i, k := range keys {
			if i > 0 {
				h.WriteByte(',')
			}
			writeJSONString(&h, k)
			h.WriteByte(':')
			writeJSONString(&h, metadata[k])
		}
		h.WriteByte('}')
	}
	seen := make(map[string]bool, len(tensors))
	var off int64
	for i, nt := range tensors {
		if nt.Name == safetensorsMetadataKey || seen[nt.Name] {
			return nil, fmt.Errorf("tensor name %q is reserved or repeated", nt.Name)
		}
		seen[nt.Name] = true
		t := nt.Tensor
		if t == nil {
			return nil, fmt.Errorf("tensor %q is nil", nt.Name)
		}
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", nt.Name, err)
		}
		n := t.Numel() * int64(t.DType().Size())
		if i > 0 || len(metadata) > 0 {
			h.WriteByte(',')
		}
		writeJSONString(&h, nt.Name)
		h.WriteString(`:{"dtype":"` + dtypeInfo[t.DType()].safetensors + `","shape":[`)
		for j, d := range t.Shape {
			if j > 0 {
				h.WriteByte(',')
			}
			h.WriteString(strconv.FormatInt(d, 10))
		}
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, off, off+n)
		off += n
	}
	h.WriteByte('}')
	// The data starts 8-byte aligned, padded with spaces as safetensors does.
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	if h.Len() > maxSafetensorsHeader {
		return nil, fmt.Errorf("header of %d bytes exceeds the format's limit", h.Len())
	}
	return h.Bytes(), nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // a string always marshals
	b.Write(enc)
}

func writeSafetensors(w io.Writer, header []byte, tensors []NamedTensor) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(header)))
	bw.Write(n[:])
	bw.Write(header)
	var err error
	for _, nt := range tensors {
		nt.Tensor.eachRun(func(run []byte) {
			if err == nil {
				_, err = bw.Write(run)
			}
		})
		if err != nil {
			return err
		}
	}
	return bw.Flush()
}

// LoadSafetensors reads a safetensors file: its tensors in the order of
// their data, each over a storage of its own, and its metadata (nil when
// the file has none).
func LoadSafetensors(path string) ([]NamedTensor, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoints: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoints: %w", err)
	}
	ts, md, err := readSafetensors(f, fi.Size())
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoints: load %s: %w", path, err)
	}
	return ts, md, nil
}

// ReadSafetensors reads safetensors data of size bytes from r, as
// LoadSafetensors does.
func ReadSafetensors(r io.ReaderAt, size int64) ([]NamedTensor, map[string]string, error) {
	ts, md, err := readSafetensors(r, size)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoints: safetensors: %w", err)
	}
	return ts, md, nil
}

type safetensorsEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

func readSafetensors(r io.ReaderAt, size int64) ([]NamedTensor, map[string]string, error) {
	var hdr [8]byte
	if err := readFullAt(r, hdr[:], 0); err != nil {
		return nil, nil, fmt.Errorf("read header length: %w", err)
	}
	hlen := binary.LittleEndian.Uint64(hdr[:])
	if hlen > maxSafetensorsHeader || hlen > uint64(size-8) {
		return nil, nil, fmt.Errorf("header length %d is larger than the file or the format's limit", hlen)
	}
	header := make([]byte, hlen)
	if err := readFullAt(r, header, 8); err != nil {
		return nil, nil, fmt.Errorf("read header: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(header, &raw); err != nil {
		return nil, nil, fmt.Errorf("header: %w", err)
	}
	var metadata map[string]string
	if m, ok := raw[safetensorsMetadataKey]; ok {
		if err := json.Unmarshal(m, &metadata); err != nil {
			return nil, nil, fmt.Errorf("header: __metadata__ must map strings to strings: %w", err)
		}
		delete(raw, safetensorsMetadataKey)
	}
	dataStart := 8 + int64(hlen)
	dataLen := size - dataStart
	type entry struct {
		name string
		safetensorsEntry
		dtype DType
	}
	entries := make([]entry, 0, len(raw))
	for name, msg := range raw {
		e := entry{name: name}
		dec := json.NewDecoder(bytes.NewReader(msg))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e.safetensorsEntry); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		for d := Float32; d <= Bool; d++ {
			if dtypeInfo[d].safetensors == e.DType {
				e.dtype = d
			}
		}
		if e.dtype == 0 {
			return nil, nil, fmt.Errorf("tensor %q: unsupported dtype %q", name, e.DType)
		}
		n, err := numel(e.Shape)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if begin < 0 || end < begin || end > dataLen {
			return nil, nil, fmt.Errorf("tensor %q: data offsets [%d, %d] outside the %d bytes of data", name, begin, end, dataLen)
		}
		if n > math.MaxInt64/int64(e.dtype.Size()) || n*int64(e.dtype.Size()) != end-begin {
			return nil, nil, fmt.Errorf("tensor %q: %s of shape %v does not take %d bytes", name, e.dtype, e.Shape, end-begin)
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
		out[i] = NamedTensor{e.name, &Tensor{
			Storage: &Storage{Key: e.name, DType: e.dtype, Data: data},
			Shape:   e.Shape,
			Stride:  ContiguousStrides(e.Shape),
		}}
		if out[i].Tensor.Shape == nil {
			out[i].Tensor.Shape = []int64{}
		}
	}
	return out, metadata, nil
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
