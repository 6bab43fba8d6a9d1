package tests

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// bundle is the tensor bundle that tests/reference/make_parity.py writes:
// index.json plus data.bin with raw little-endian C-contiguous tensors.
type bundle struct {
	Meta    map[string]any
	entries map[string]bundleEntry
	order   []string
	data    []byte
}

type bundleEntry struct {
	Name   string  `json:"name"`
	DType  string  `json:"dtype"`
	Shape  []int64 `json:"shape"`
	Offset int64   `json:"offset"`
	NBytes int64   `json:"nbytes"`
}

func readBundle(dir string) (*bundle, error) {
	idx, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, err
	}
	var raw struct {
		Tensors []bundleEntry  `json:"tensors"`
		Meta    map[string]any `json:"meta"`
	}
	if err := json.Unmarshal(idx, &raw); err != nil {
		return nil, fmt.Errorf("%s/index.json: %w", dir, err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "data.bin"))
	if err != nil {
		return nil, err
	}
	b := &bundle{Meta: raw.Meta, entries: map[string]bundleEntry{}, data: data}
	for _, e := range raw.Tensors {
		if e.Offset < 0 || e.Offset+e.NBytes > int64(len(data)) {
			return nil, fmt.Errorf("%s: tensor %s lies outside data.bin", dir, e.Name)
		}
		b.entries[e.Name] = e
		b.order = append(b.order, e.Name)
	}
	return b, nil
}

func (b *bundle) float32s(name string) ([]float32, []int64, error) {
	e, ok := b.entries[name]
	if !ok || e.DType != "float32" {
		return nil, nil, fmt.Errorf("bundle has no float32 tensor %q", name)
	}
	raw := b.data[e.Offset : e.Offset+e.NBytes]
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out, e.Shape, nil
}

func (b *bundle) int64s(name string) ([]int64, []int64, error) {
	e, ok := b.entries[name]
	if !ok || e.DType != "int64" {
		return nil, nil, fmt.Errorf("bundle has no int64 tensor %q", name)
	}
	raw := b.data[e.Offset : e.Offset+e.NBytes]
	out := make([]int64, len(raw)/8)
	for i := range out {
		out[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
	}
	return out, e.Shape, nil
}
