// Package checkpoints reads and writes model checkpoints in PyTorch's own
// formats. The file formats are handled in pure Go; gotch.go bridges to
// libtorch tensors (FromTorchTensor, ToTorchTensor), model.go to gsrmt
// models (ModelStateDict, LoadModelState, LoadWeights, ReadCheckpoint,
// CheckModelState, Checkpoint.BuildModel, ExportSafetensors) and
// training.go holds gsrmt's training checkpoint (SaveTraining,
// LoadTraining, ReadConfig; DATA.md, Checkpoints).
//
// Save and Write produce the zip serialization that torch.save writes since
// PyTorch 1.6 (records <archive>/data.pkl, <archive>/byteorder,
// <archive>/data/<key> and <archive>/version, stored uncompressed, each
// record's data aligned to 64 bytes as PyTorch aligns it), which PyTorch
// opens with torch.load(path, weights_only=True). Load and Read accept that
// format and the legacy one of earlier PyTorch versions, decoding the pickle
// with a safe unpickler that allows only plain data, numpy arrays and
// tensors. SaveSafetensors and LoadSafetensors handle the safetensors
// format.
//
// A Tensor is a strided view of a Storage of little-endian bytes, with the
// DTypes PyTorch checkpoints commonly hold: float32, float64, float16,
// bfloat16, int64, int32, int16, int8, uint8 and bool. Several tensors may
// view one storage; saving writes each storage once.
//
// Checkpoint trees are built from *Dict (ordered, with NewDict or
// NewOrderedDict), []any, Tuple, *Tensor, strings, integers, floats, bools
// and nil. PyTorch 1.13's weights_only loader does not support floats
// (BINFLOAT); PyTorch 2 does.
package checkpoints
