package torchfmt

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/gsrmt/gsrmt/internal/atomicfile"
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
			return nil, fmt.Errorf("torchfmt: key %v is a %T, not a string", e.Key, e.Key)
		}
		t, ok := e.Value.(*Tensor)
		if !ok {
			return nil, fmt.Errorf("torchfmt: entry %q is a %T, not a tensor", name, e.Value)
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
		return fmt.Errorf("torchfmt: save %s: %w", path, err)
	}
	err = atomicfile.Write(path, func(w io.Writer) error { return writeSafetensors(w, header, tensors) })
	if err != nil {
		return fmt.Errorf("torchfmt: save %s: %w", path, err)
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
		return fmt.Errorf("torchfmt: safetensors: %w", err)
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
