package torch

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
)

// ErrOutOfMemory is matched (errors.Is) by errors of libtorch's allocators
// ("DefaultCPUAllocator: can't allocate memory", "CUDA out of memory") that
// went through Error or Catch.
var ErrOutOfMemory = errors.New("libtorch could not allocate memory")

// oneLineError is an error whose text is cut to one line; the full text
// (libtorch's C++ frames, gotch's Go stack) stays reachable by Unwrap.
type oneLineError struct {
	line string
	err  error
}

func (e *oneLineError) Error() string { return e.line }
func (e *oneLineError) Unwrap() error { return e.err }

// Is makes errors.Is(err, ErrOutOfMemory) true for allocation failures.
func (e *oneLineError) Is(target error) bool {
	if target != ErrOutOfMemory {
		return false
	}
	l := strings.ToLower(e.line)
	return strings.Contains(l, "can't allocate memory") || strings.Contains(l, "out of memory")
}

// Error cuts an error that carries libtorch's text (gotch appends the C++
// "Exception raised from ..." frames and a Go stack trace) to its first
// meaningful line, with "Libtorch API Error: " shortened to "libtorch: ".
// A nil or one-line error is returned as it is.
func Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if !strings.ContainsAny(msg, "\r\n") {
		return err
	}
	line := strings.TrimSpace(strings.SplitN(msg, "\n", 2)[0])
	for _, l := range strings.FieldsFunc(msg, func(r rune) bool { return r == '\n' || r == '\r' }) {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "Exception raised from") || strings.HasPrefix(l, "frame #") {
			continue
		}
		line = l
		break
	}
	line = strings.Replace(line, "Libtorch API Error: ", "libtorch: ", 1)
	return &oneLineError{line: line, err: err}
}

// Catch is the panic boundary between gotch and gsrmt's error values: gotch's
// Must* helpers panic with libtorch's error, and a function that calls them
// defers Catch(&err, "what it does") to return that panic as an error
// (cut to one line by Error, prefixed by what). Go's own runtime errors (a
// nil dereference, an index out of range) are bugs, not libtorch failures:
// Catch panics with them again.
//
// Catch must be deferred directly (defer torch.Catch(&err, ...)): recover
// only works in the deferred call itself.
func Catch(err *error, what string) {
	r := recover()
	if r == nil {
		return
	}
	if re, ok := r.(runtime.Error); ok {
		panic(re)
	}
	e, ok := r.(error)
	if !ok {
		e = fmt.Errorf("%v", r)
	}
	*err = fmt.Errorf("%s: %w", what, Error(e))
}
