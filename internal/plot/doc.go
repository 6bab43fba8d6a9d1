// Package plot renders training diagnostics as PNG images: per-epoch
// loss and accuracy curves ([Curves]) and a row-normalised confusion
// matrix heat map ([ConfusionMatrix]).
//
// Rendering uses gonum.org/v1/plot with its embedded Liberation fonts, so
// no system fonts, cgo or display are needed. Every image is written
// atomically: it is rendered into a temporary file in the destination
// directory, which is then renamed over path, so a reader never sees a
// partially written PNG. All failures are returned as errors that name the
// destination file; the functions do not panic.
package plot
