package checkpoints

import (
	"bytes"
	"encoding/binary"
	"math"
	"runtime"
	"slices"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Every dtype crosses the bridge both ways with its bytes intact, and
// libtorch reads the values we meant.
func TestTorchBridgeDTypes(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	floats := []float32{1.5, -2.25, 0, 3e-3, 65504, -0.1}
	ints := []int64{0, 1, -1, 7, 100, -100}
	for d := Float32; d <= Bool; d++ {
		var ct *Tensor
		var err error
		want := make([]float64, 6)
		if d.IsFloat() {
			ct, err = FromFloat32(d, []int64{2, 3}, floats)
			dec, _ := ct.Float32s()
			for i, v := range dec {
				want[i] = float64(v)
			}
		} else {
			vals := append([]int64(nil), ints...)
			for i := range vals {
				switch d {
				case Uint8:
					vals[i] = (vals[i] + 256) % 256
				case Bool:
					vals[i] = vals[i] & 1
				}
			}
			ct, err = FromInt64(d, []int64{2, 3}, vals)
			for i, v := range vals {
				want[i] = float64(v)
			}
		}
		if err != nil {
			t.Fatalf("%v: %v", d, err)
		}
		x, err := ToTorchTensor(ct, gotch.CPU)
		if err != nil {
			t.Fatalf("%v: ToTorchTensor: %v", d, err)
		}
		if got := x.MustSize(); !slices.Equal(got, []int64{2, 3}) {
			t.Errorf("%v: torch shape %v", d, got)
		}
		gd, _ := gotchDType(d)
		if x.DType() != gd {
			t.Errorf("%v: torch dtype %v, want %v", d, x.DType(), gd)
		}
		dbl := x.MustTotype(gotch.Double, false)
		got := dbl.Vals().([]float64)
		dbl.MustDrop()
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%v: element %d: torch reads %v, want %v", d, i, got[i], want[i])
			}
		}
		back, err := FromTorchTensor(x)
		x.MustDrop()
		if err != nil {
			t.Fatalf("%v: FromTorchTensor: %v", d, err)
		}
		a, _ := ct.Bytes()
		b, _ := back.Bytes()
		if back.DType() != d || !slices.Equal(back.Shape, ct.Shape) || !bytes.Equal(a, b) || back.RequiresGrad {
			t.Errorf("%v: round trip gives %v %v %x, want %v %v %x", d, back.DType(), back.Shape, b, d, ct.Shape, a)
		}
	}
}

// Strided views and storage offsets are honoured; 0-dim and empty tensors
// keep their shape; non-contiguous and requires-grad libtorch tensors copy
// their logical elements.
func TestTorchBridgeShapes(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// Storage 0..11; view: offset 1, shape (3, 2), stride (1, 4): the
	// transpose of rows [1 2 3], [5 6 7].
	vals := make([]float32, 12)
	for i := range vals {
		vals[i] = float32(i)
	}
	base, _ := FromFloat32(Float32, []int64{12}, vals)
	view := &Tensor{Storage: base.Storage, StorageOffset: 1, Shape: []int64{3, 2}, Stride: []int64{1, 4}}
	x, err := ToTorchTensor(view, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	got := x.Vals().([]float32)
	want := []float32{1, 5, 2, 6, 3, 7}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("strided view in torch: %v, want %v", got, want)
		}
	}
	// The other way: a transposed (non-contiguous) torch tensor.
	tr := x.MustT(false)
	x.MustDrop()
	back, err := FromTorchTensor(tr)
	tr.MustDrop()
	if err != nil {
		t.Fatal(err)
	}
	bv, _ := back.Float32s()
	if !slices.Equal(back.Shape, []int64{2, 3}) || !back.IsContiguous() ||
		bv[0] != 1 || bv[1] != 2 || bv[2] != 3 || bv[3] != 5 || bv[4] != 6 || bv[5] != 7 {
		t.Errorf("transposed torch tensor: shape %v values %v", back.Shape, bv)
	}

	// 0-dim.
	scalar, _ := FromInt64(Int64, nil, []int64{42})
	s, err := ToTorchTensor(scalar, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	if s.Dim() != 0 || s.Int64Values()[0] != 42 {
		t.Errorf("0-dim: dim %d values %v", s.Dim(), s.Int64Values())
	}
	sb, err := FromTorchTensor(s)
	s.MustDrop()
	if err != nil {
		t.Fatal(err)
	}
	if len(sb.Shape) != 0 || len(sb.Stride) != 0 {
		t.Errorf("0-dim came back with shape %v stride %v", sb.Shape, sb.Stride)
	}
	if v, _ := sb.Int64s(); len(v) != 1 || v[0] != 42 {
		t.Errorf("0-dim value %v", v)
	}

	// Empty.
	empty, _ := NewTensor(Float16, []int64{0, 3}, nil)
	e, err := ToTorchTensor(empty, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.MustSize(); !slices.Equal(got, []int64{0, 3}) || e.DType() != gotch.Half {
		t.Errorf("empty: %v %v", got, e.DType())
	}
	eb, err := FromTorchTensor(e)
	e.MustDrop()
	if err != nil || !slices.Equal(eb.Shape, []int64{0, 3}) || eb.DType() != Float16 {
		t.Errorf("empty back: %v %v", eb, err)
	}

	// A parameter that requires grad.
	p := ts.MustOnes([]int64{4}, gotch.Float, gotch.CPU).MustSetRequiresGrad(true, true)
	pb, err := FromTorchTensor(p)
	p.MustDrop()
	if err != nil {
		t.Fatal(err)
	}
	if pv, _ := pb.Float32s(); len(pv) != 4 || pv[3] != 1 || pb.RequiresGrad {
		t.Errorf("requires-grad tensor: %v", pv)
	}

	// A bfloat16 bit pattern survives exactly (no float32 round trip).
	raw := make([]byte, 4)
	binary.LittleEndian.PutUint16(raw, 0x7f81) // a signalling NaN pattern
	binary.LittleEndian.PutUint16(raw[2:], uint16(math.Float32bits(1.0)>>16))
	bf, _ := NewTensor(BFloat16, []int64{2}, raw)
	bx, err := ToTorchTensor(bf, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := FromTorchTensor(bx)
	bx.MustDrop()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := bb.Bytes(); !bytes.Equal(got, raw) {
		t.Errorf("bfloat16 bits %x, want %x", got, raw)
	}

	if _, err := ToTorchTensor(&Tensor{Storage: base.Storage, Shape: []int64{13}, Stride: []int64{1}}, gotch.CPU); err == nil {
		t.Error("a view past its storage was accepted")
	}
}

func TestTorchTensorsHelpers(t *testing.T) {
	a := ts.MustOnes([]int64{2}, gotch.Float, gotch.CPU)
	b := ts.MustZeros([]int64{3}, gotch.Int64, gotch.CPU)
	defer a.MustDrop()
	defer b.MustDrop()
	d, err := FromTorchTensors([]string{"a", "b"}, []*ts.Tensor{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if k := d.Keys(); len(k) != 2 || k[0] != "a" || k[1] != "b" || !d.Ordered {
		t.Errorf("keys %v ordered %v", k, d.Ordered)
	}
	if _, err := FromTorchTensors([]string{"a", "a"}, []*ts.Tensor{a, b}); err == nil {
		t.Error("duplicate names accepted")
	}
	m, err := ToTorchTensors(d, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m["b"].DType() != gotch.Int64 || m["a"].MustSize()[0] != 2 {
		t.Errorf("ToTorchTensors: %v", m)
	}
	for _, x := range m {
		x.MustDrop()
	}
}
