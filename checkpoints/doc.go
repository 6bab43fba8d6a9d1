// Package checkpoints is gsrmt's checkpoint schema on top of the format
// layer in checkpoints/torchfmt (PyTorch's zip and legacy .pt files and
// safetensors, in pure Go): what gsrmt's files hold, and the bridge between
// their tensors and gsrmt models on libtorch.
//
// Reading: Open reads a weights file once, whatever its format (our
// training checkpoint, a bare state_dict, a dict holding one, safetensors),
// into a Checkpoint with the model config and the run's description when
// the file records them; Checkpoint.LoadInto and Checkpoint.BuildModel put
// its weights into a model (checked first by CheckModelState, so that a
// hostile config allocates nothing); LoadModelState does the same for any
// state_dict, strictly or not. LoadTraining reads a whole training state.
//
// Writing: Save writes any tree as torch.save does (a state_dict from
// ModelStateDict, for instance), SaveTraining a training checkpoint and
// SaveStateSafetensors or ExportSafetensors safetensors; every write is
// atomic.
//
// A training checkpoint (TrainingState) is assembled from typed sections
// that their components own: the model's state_dict and gsrmt.Config, the
// run's RunInfo (also config.json's), AdamW's OptimizerState, the
// schedule's SchedulerState, the EMA's state_dict, the training loop's
// Position and EpochRecord rows. Each is stored as plain dicts and lists of
// numbers and strings, which torch.load opens; files of the older layout,
// whose position and rows were JSON strings, still load.
//
// gotch.go converts between checkpoint tensors and libtorch's
// (FromTorchTensor, ToTorchTensor); format.go re-exports the format layer's
// types (Dict, Tensor, DType, ...) that this package's API uses.
package checkpoints
