// Package torchfmt reads and writes tensor files in PyTorch's own formats,
// in pure Go: the zip serialization torch.save writes since PyTorch 1.6,
// the legacy one of earlier versions (read only), and safetensors. It knows
// nothing of any model: a file is a tree of plain values and tensors, as
// torch.load returns it, and a reusable library in the manner of
// archive/zip.
//
// The API is small. Load and Read decode a PyTorch checkpoint (a file, or
// size bytes of an io.ReaderAt); Save and Write encode one. LoadSafetensors,
// ReadSafetensors, SaveSafetensors and WriteSafetensors do the same for
// safetensors, and IsSafetensors tells the formats apart. Save and
// SaveSafetensors write atomically (internal/atomicfile): a failure leaves
// any previous file at the path intact.
//
// Save and Write produce what torch.save writes (records <archive>/data.pkl,
// <archive>/byteorder, <archive>/data/<key> and <archive>/version, stored
// uncompressed, each record's data aligned to 64 bytes), which PyTorch opens
// with torch.load(path, weights_only=True). Load and Read decode the pickle
// with a safe unpickler that allows only plain data, numpy arrays and
// tensors, and execute nothing in the file. Instances of other classes that
// a pickle rebuilds without calling anything (NEWOBJ and BUILD), such as
// the argparse.Namespace and yacs CfgNode objects that timm's, DeiT's and
// Swin's training scripts save next to the weights, come back as inert
// *Object records; a pickle that calls a class or function outside the
// allow-list (REDUCE, INST, OBJ), or names one of the modules that reach
// the system (os, subprocess, builtins, ...), is refused.
//
// A Tensor is a strided view of a Storage of little-endian bytes, with the
// DTypes PyTorch checkpoints commonly hold: float32, float64, float16,
// bfloat16, int64, int32, int16, int8, uint8 and bool. Several tensors may
// view one storage; saving writes each storage once.
//
// Trees are built from *Dict (ordered, with NewDict or NewOrderedDict),
// []any, Tuple, *Tensor, strings, integers, floats, bools and nil. PyTorch
// 1.13's weights_only loader does not support floats (BINFLOAT); PyTorch 2
// does.
//
// Errors name the file where there is one. ErrFormat is wrapped by the
// errors of data that is no PyTorch checkpoint at all, ErrDuplicateRecord by
// those of a zip archive that names a record twice; a file cut short reads
// as io.ErrUnexpectedEOF.
package torchfmt
