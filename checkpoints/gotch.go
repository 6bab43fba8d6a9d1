package checkpoints

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/gsrmt/gsrmt/checkpoints/torchfmt"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"
)

// The bridge between checkpoint tensors and libtorch tensors (gotch). Data
// moves as raw little-endian bytes, so every dtype round-trips exactly:
// float16 and bfloat16 keep their bits, bool stays one byte per element.

// ErrOutOfMemory is matched (errors.Is) by errors of libtorch's allocators
// ("DefaultCPUAllocator: can't allocate memory", "CUDA out of memory") that
// this package reports: internal/torch's ErrOutOfMemory.
var ErrOutOfMemory = torch.ErrOutOfMemory

// gotchDType maps a checkpoint dtype to gotch's.
func gotchDType(d DType) (gotch.DType, error) {
	switch d {
	case Float32:
		return gotch.Float, nil
	case Float64:
		return gotch.Double, nil
	case Float16:
		return gotch.Half, nil
	case BFloat16:
		return gotch.BFloat16, nil
	case Int64:
		return gotch.Int64, nil
	case Int32:
		return gotch.Int, nil
	case Int16:
		return gotch.Int16, nil
	case Int8:
		return gotch.Int8, nil
	case Uint8:
		return gotch.Uint8, nil
	case Bool:
		return gotch.Bool, nil
	}
	return gotch.Invalid, fmt.Errorf("dtype %v has no libtorch equivalent", d)
}

// dtypeOfGotch maps gotch's dtype to the checkpoint dtype.
func dtypeOfGotch(d gotch.DType) (DType, error) {
	switch d {
	case gotch.Float:
		return Float32, nil
	case gotch.Double:
		return Float64, nil
	case gotch.Half:
		return Float16, nil
	case gotch.BFloat16:
		return BFloat16, nil
	case gotch.Int64:
		return Int64, nil
	case gotch.Int:
		return Int32, nil
	case gotch.Int16:
		return Int16, nil
	case gotch.Int8:
		return Int8, nil
	case gotch.Uint8:
		return Uint8, nil
	case gotch.Bool:
		return Bool, nil
	}
	return 0, fmt.Errorf("libtorch dtype %v cannot be stored in a checkpoint (want float32/64, float16, bfloat16, int64/32/16/8, uint8 or bool)", d)
}

// FromTorchTensor copies a libtorch tensor, on any device, into a new
// contiguous checkpoint Tensor with its own Storage: same dtype, same shape
// (0-dim tensors stay 0-dim), RequiresGrad false (as in a state_dict). The
// source is not modified and stays the caller's to drop.
func FromTorchTensor(t *ts.Tensor) (out *Tensor, err error) {
	if t == nil {
		return nil, fmt.Errorf("checkpoints: FromTorchTensor: nil tensor")
	}
	// gotch keeps libtorch's last error per OS thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer torch.Catch(&err, "checkpoints: FromTorchTensor")
	defined, err := t.Defined()
	if err != nil {
		return nil, fmt.Errorf("checkpoints: FromTorchTensor: %w", torch.Error(err))
	}
	if !defined {
		return nil, fmt.Errorf("checkpoints: FromTorchTensor: undefined tensor")
	}
	dt, err := dtypeOfGotch(t.DType())
	if err != nil {
		return nil, fmt.Errorf("checkpoints: FromTorchTensor: %w", err)
	}
	shape, err := t.Size()
	if err != nil {
		return nil, fmt.Errorf("checkpoints: FromTorchTensor: %w", torch.Error(err))
	}
	n, err := torchfmt.ShapeNumel(shape)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: FromTorchTensor: %w", err)
	}
	data := make([]byte, n*int64(dt.Size()))
	if n > 0 {
		// at_copy_data moves the tensor to the CPU and makes it contiguous
		// when needed, then copies numel elements of the given size.
		lib.AtCopyData(lib.Ctensor(t.Ctensor()), unsafe.Pointer(&data[0]), uint(n), uint(dt.Size()))
		if err := ts.TorchErr(); err != nil {
			return nil, fmt.Errorf("checkpoints: FromTorchTensor: %w", torch.Error(err))
		}
	}
	return NewTensor(dt, shape, data)
}

// ToTorchTensor copies t into a new libtorch tensor on device, of t's dtype
// and shape, contiguous (strides and storage offset of t are honoured by
// gathering its elements first). The result is the caller's to drop.
func ToTorchTensor(t *Tensor, device gotch.Device) (out *ts.Tensor, err error) {
	if t == nil {
		return nil, fmt.Errorf("checkpoints: ToTorchTensor: nil tensor")
	}
	gdt, err := gotchDType(t.DType())
	if err != nil {
		return nil, fmt.Errorf("checkpoints: ToTorchTensor: %w", err)
	}
	data, err := t.Bytes() // validates, gathers a strided view
	if err != nil {
		return nil, fmt.Errorf("checkpoints: ToTorchTensor: %w", err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer torch.Catch(&err, "checkpoints: ToTorchTensor")
	// at_tensor_of_data needs at least one dimension: build 0-dim tensors
	// as shape [1] and squeeze.
	shape := append([]int64(nil), t.Shape...)
	scalar := len(shape) == 0
	if scalar {
		shape = []int64{1}
	}
	buf := data
	if len(buf) == 0 {
		buf = make([]byte, 1) // a valid pointer; nothing is copied
	}
	ct := lib.AtTensorOfData(unsafe.Pointer(&buf[0]), shape, uint(len(shape)), uint(t.DType().Size()), int(gdt.CKind()))
	if err := ts.TorchErr(); err != nil {
		return nil, fmt.Errorf("checkpoints: ToTorchTensor: %w", torch.Error(err))
	}
	runtime.KeepAlive(buf)
	x := ts.New(ct)
	if scalar {
		if x, err = x.Squeeze(true); err != nil {
			return nil, fmt.Errorf("checkpoints: ToTorchTensor: %w", torch.Error(err))
		}
	}
	if device.Name != gotch.CPU.Name {
		if x, err = x.To(device, true); err != nil {
			return nil, fmt.Errorf("checkpoints: ToTorchTensor: to %v: %w", device, torch.Error(err))
		}
	}
	return x, nil
}

// FromTorchTensors copies named libtorch tensors into an OrderedDict of
// checkpoint tensors (a state_dict), in the given order; names must be
// distinct.
func FromTorchTensors(names []string, tensors []*ts.Tensor) (*Dict, error) {
	if len(names) != len(tensors) {
		return nil, fmt.Errorf("checkpoints: FromTorchTensors: %d names for %d tensors", len(names), len(tensors))
	}
	d := NewOrderedDict()
	for i, name := range names {
		if _, dup := d.Get(name); dup {
			return nil, fmt.Errorf("checkpoints: FromTorchTensors: name %q appears twice", name)
		}
		t, err := FromTorchTensor(tensors[i])
		if err != nil {
			return nil, fmt.Errorf("%w (entry %q)", err, name)
		}
		d.Set(name, t) // cannot fail: strings are hashable
	}
	return d, nil
}

// ToTorchTensors copies every tensor of a flat dict (such as a state_dict)
// to libtorch tensors on device, by name. On error nothing is returned and
// the tensors made so far are dropped; on success they are the caller's to
// drop.
func ToTorchTensors(d *Dict, device gotch.Device) (map[string]*ts.Tensor, error) {
	named, err := torchfmt.NamedTensors(d)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*ts.Tensor, len(named))
	for _, nt := range named {
		x, err := ToTorchTensor(nt.Tensor, device)
		if err != nil {
			for _, y := range out {
				y.MustDrop()
			}
			return nil, fmt.Errorf("%w (entry %q)", err, nt.Name)
		}
		out[nt.Name] = x
	}
	return out, nil
}
