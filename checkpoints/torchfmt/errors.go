package torchfmt

import "errors"

// ErrFormat is wrapped by the errors of data that is not a PyTorch
// checkpoint: neither a zip archive nor a pickle, a zip archive without an
// <archive>/data.pkl record, or a legacy file with another magic number.
var ErrFormat = errors.New("not a PyTorch checkpoint")

// ErrDuplicateRecord is wrapped (with the record's name) by the error for a
// zip checkpoint that holds two records of the same name: a forged or
// corrupt file, which torch.load and this package would read differently.
var ErrDuplicateRecord = errors.New("zip archive holds two records of the same name")
