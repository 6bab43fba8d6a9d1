package pickle

import (
	"fmt"
)

// TorchStorageType stands in for a PyTorch storage class such as
// torch.FloatStorage; it appears in the persistent ids of tensor storages.
type TorchStorageType struct {
	// Name is the class name, such as "FloatStorage" or "UntypedStorage".
	Name string
}

// TorchDType stands in for a PyTorch dtype such as torch.float32.
type TorchDType struct {
	// Name is the dtype's name, such as "float32".
	Name string
}

// TorchTensor is a PyTorch tensor rebuilt by torch._utils._rebuild_tensor_v2
// or its relatives: a strided view of a storage.
type TorchTensor struct {
	// Storage is what the Decoder's PersistentLoad returned for the
	// storage's persistent id.
	Storage any
	// StorageOffset is the offset of the first element, in elements.
	StorageOffset int64
	// Size and Stride give the view's shape and steps, in elements.
	Size, Stride []int64
	RequiresGrad bool
	// Parameter is true for a torch.nn.Parameter.
	Parameter bool
}

// torchClass stands in for the classes torch.Tensor and
// torch.nn.parameter.Parameter.
type torchClass string

const (
	tensorClass    torchClass = "torch.Tensor"
	parameterClass torchClass = "torch.nn.Parameter"
)

// Call creates a Parameter; creating a bare torch.Tensor is not supported.
func (c torchClass) Call(args Tuple) (any, error) {
	if c == parameterClass {
		return torchParameter(args)
	}
	return nil, fmt.Errorf("calling %s is not supported", string(c))
}

// torchStorageNames lists PyTorch's storage classes.
var torchStorageNames = []string{
	"DoubleStorage", "FloatStorage", "HalfStorage", "BFloat16Storage",
	"LongStorage", "IntStorage", "ShortStorage", "CharStorage", "ByteStorage",
	"BoolStorage", "ComplexFloatStorage", "ComplexDoubleStorage",
	"QUInt8Storage", "QInt8Storage", "QInt32Storage", "QUInt4x2Storage",
	"QUInt2x4Storage", "UntypedStorage",
}

// torchDTypeNames lists PyTorch's dtypes.
var torchDTypeNames = []string{
	"float64", "float32", "float16", "bfloat16", "int64", "int32", "int16",
	"int8", "uint8", "bool", "complex32", "complex64", "complex128",
}

// TorchGlobals returns stand-ins for the globals that PyTorch's
// serialization names: the storage classes (torch.FloatStorage, ...,
// torch.cuda.FloatStorage for legacy GPU files), dtypes, torch.Size, and the
// rebuild functions torch._utils._rebuild_tensor, _rebuild_tensor_v2,
// _rebuild_parameter, _rebuild_parameter_with_state and
// torch._tensor._rebuild_from_type_v2. Tensors decode to *TorchTensor; the
// storage they view is left to the Decoder's PersistentLoad. It includes
// BasicGlobals' collections.OrderedDict, which PyTorch uses for backward
// hooks and state_dicts.
func TorchGlobals() Globals {
	g := Globals{
		{"collections", "OrderedDict"}:                    Func(newOrderedDict),
		{"torch", "Size"}:                                 Func(torchSize),
		{"torch", "Tensor"}:                               tensorClass,
		{"torch.nn.parameter", "Parameter"}:               parameterClass,
		{"torch._utils", "_rebuild_tensor"}:               Func(rebuildTensor),
		{"torch._utils", "_rebuild_tensor_v2"}:            Func(rebuildTensor),
		{"torch._utils", "_rebuild_parameter"}:            Func(rebuildParameter),
		{"torch._utils", "_rebuild_parameter_with_state"}: Func(rebuildParameter),
		{"torch._tensor", "_rebuild_from_type_v2"}:        Func(rebuildFromType),
	}
	for _, name := range torchStorageNames {
		g[Global{"torch", name}] = TorchStorageType{name}
		g[Global{"torch.cuda", name}] = TorchStorageType{name}
	}
	g[Global{"torch.storage", "UntypedStorage"}] = TorchStorageType{"UntypedStorage"}
	for _, name := range torchDTypeNames {
		g[Global{"torch", name}] = TorchDType{name}
	}
	return g
}

// rebuildTensor implements torch._utils._rebuild_tensor(storage,
// storage_offset, size, stride) and _rebuild_tensor_v2(storage,
// storage_offset, size, stride, requires_grad, backward_hooks[, metadata]).
func rebuildTensor(args Tuple) (any, error) {
	if len(args) != 4 && len(args) != 6 && len(args) != 7 {
		return nil, fmt.Errorf("_rebuild_tensor: got %d arguments, want 4, 6 or 7", len(args))
	}
	t := &TorchTensor{Storage: args[0]}
	var ok bool
	if t.StorageOffset, ok = toInt(args[1]); !ok || t.StorageOffset < 0 {
		return nil, fmt.Errorf("_rebuild_tensor: bad storage offset %v", args[1])
	}
	if t.Size, ok = toInts(args[2]); !ok {
		return nil, fmt.Errorf("_rebuild_tensor: size is a %s, not a tuple of ints", typeName(args[2]))
	}
	if t.Stride, ok = toInts(args[3]); !ok {
		return nil, fmt.Errorf("_rebuild_tensor: stride is a %s, not a tuple of ints", typeName(args[3]))
	}
	if len(t.Size) != len(t.Stride) {
		return nil, fmt.Errorf("_rebuild_tensor: size %v and stride %v differ in length", t.Size, t.Stride)
	}
	if len(args) > 4 {
		if t.RequiresGrad, ok = args[4].(bool); !ok {
			return nil, fmt.Errorf("_rebuild_tensor: requires_grad is a %s", typeName(args[4]))
		}
	}
	return t, nil
}

// rebuildParameter implements torch._utils._rebuild_parameter(data,
// requires_grad, backward_hooks) and _rebuild_parameter_with_state(data,
// requires_grad, backward_hooks, state).
func rebuildParameter(args Tuple) (any, error) {
	if len(args) != 3 && len(args) != 4 {
		return nil, fmt.Errorf("_rebuild_parameter: got %d arguments, want 3 or 4", len(args))
	}
	data, ok := args[0].(*TorchTensor)
	if !ok {
		return nil, fmt.Errorf("_rebuild_parameter: data is a %s, not a tensor", typeName(args[0]))
	}
	rg, ok := args[1].(bool)
	if !ok {
		return nil, fmt.Errorf("_rebuild_parameter: requires_grad is a %s", typeName(args[1]))
	}
	p := *data
	p.RequiresGrad = rg
	p.Parameter = true
	return &p, nil
}

// torchParameter implements torch.nn.Parameter(data, requires_grad=True).
func torchParameter(args Tuple) (any, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("Parameter without data is not supported")
	}
	rg := true
	if len(args) > 1 {
		var ok bool
		if rg, ok = args[1].(bool); !ok {
			return nil, fmt.Errorf("Parameter: requires_grad is a %s", typeName(args[1]))
		}
	}
	return rebuildParameter(Tuple{args[0], rg, nil})
}

// rebuildFromType implements torch._tensor._rebuild_from_type_v2(func,
// new_type, args, state) for plain tensors and parameters.
func rebuildFromType(args Tuple) (any, error) {
	if len(args) != 4 {
		return nil, fmt.Errorf("_rebuild_from_type_v2: got %d arguments, want 4", len(args))
	}
	f, ok := args[0].(Callable)
	if !ok {
		return nil, fmt.Errorf("_rebuild_from_type_v2: %s is not callable", typeName(args[0]))
	}
	fargs, ok := args[2].(Tuple)
	if !ok {
		return nil, fmt.Errorf("_rebuild_from_type_v2: arguments are a %s", typeName(args[2]))
	}
	v, err := f.Call(fargs)
	if err != nil {
		return nil, err
	}
	switch args[1] {
	case tensorClass:
		return v, nil
	case parameterClass:
		t, ok := v.(*TorchTensor)
		if !ok {
			return nil, fmt.Errorf("_rebuild_from_type_v2: Parameter of a %s", typeName(v))
		}
		return rebuildParameter(Tuple{t, t.RequiresGrad, nil})
	}
	return nil, fmt.Errorf("_rebuild_from_type_v2: unsupported tensor type %s", typeName(args[1]))
}

// torchSize implements torch.Size(sequence); the result is a Tuple.
func torchSize(args Tuple) (any, error) {
	if len(args) == 0 {
		return Tuple{}, nil
	}
	dims, ok := toInts(args[0])
	if len(args) != 1 || !ok {
		return nil, fmt.Errorf("torch.Size: unsupported arguments %s", describeArgs(args))
	}
	out := make(Tuple, len(dims))
	for i, d := range dims {
		out[i] = d
	}
	return out, nil
}
