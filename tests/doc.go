// Package tests holds gsrmt's integration tests: gotch on the prepared
// libtorch, the model against the PyTorch reference in tests/reference,
// checkpoints against torch.save/torch.load, and the gsrmt-cli binary.
package tests
