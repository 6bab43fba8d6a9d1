package datasets

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrTooLarge is wrapped by the errors of every reader here that refuses a
// file or stream holding more bytes than its format can: a size limit is
// checked before a regular file is read and enforced while reading anything
// else (a gzip or tar member, a pipe, a device such as /dev/zero), so that a
// hostile or wrong file gives an error instead of exhausting memory.
var ErrTooLarge = errors.New("larger than its format allows")

// sizeLimit is the most bytes a file of some format may hold.
type sizeLimit struct {
	max  int64
	what string // what holds at most max bytes, for errors: "a CIFAR-10 binary batch"
	// head, when set, checks the first headLen bytes of a file (fewer when
	// it is shorter) before the rest is read, so that a file of another
	// kind (such as /dev/zero) is refused without reading up to max bytes.
	head func(first []byte) error
}

// headLen is how many bytes sizeLimit.head is given.
const headLen = 8

// tooLarge returns the error for name holding size bytes (size < 0: more
// than lim.max, the exact size being unknown).
func (lim sizeLimit) tooLarge(name string, size int64) error {
	found := fmt.Sprintf("more than %d bytes", lim.max)
	if size >= 0 {
		found = fmt.Sprintf("%d bytes", size)
	}
	return fmt.Errorf("%s: %s, but %s holds at most %d bytes (wrong or corrupt file?): %w",
		name, found, lim.what, lim.max, ErrTooLarge)
}

// checkFileSize stats f (named name in errors) and refuses a regular file
// larger than lim before anything is read. It returns the size of a regular
// file and -1 for anything else, whose size is only known once read.
func checkFileSize(f *os.File, name string, lim sizeLimit) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return -1, err
	}
	if !fi.Mode().IsRegular() {
		return -1, nil
	}
	if fi.Size() > lim.max {
		return fi.Size(), lim.tooLarge(name, fi.Size())
	}
	return fi.Size(), nil
}

// limitedReader reads at most lim.max bytes of r and fails with lim's
// ErrTooLarge error, naming name, when r holds more. Unlike io.LimitReader
// it tells a stream that ends at the limit from one that goes on.
type limitedReader struct {
	r    io.Reader
	name string
	lim  sizeLimit
	left int64
}

func newLimitedReader(r io.Reader, name string, lim sizeLimit) *limitedReader {
	return &limitedReader{r: r, name: name, lim: lim, left: lim.max}
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if l.left <= 0 {
		// At the limit: one more byte means the stream is too large.
		var one [1]byte
		n, err := io.ReadFull(l.r, one[:])
		if n > 0 {
			return 0, l.lim.tooLarge(l.name, -1)
		}
		return 0, err // io.EOF at the end
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// readAtMost reads r (named name in errors) to its end, appending to buf,
// and fails with an error wrapping ErrTooLarge when r holds more than
// lim.max bytes. The buffer grows as data arrives, so a stream that ends
// early costs no more memory than it held.
func readAtMost(r io.Reader, name string, lim sizeLimit, buf []byte) ([]byte, error) {
	lr := newLimitedReader(r, name, lim)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// readFileAtMost reads the whole file at path into buf (from its start,
// reusing its memory when large enough), refusing a regular file larger
// than lim before reading it and reading at most lim.max bytes of anything
// else. Errors name the file; a file too large wraps ErrTooLarge.
func readFileAtMost(path string, lim sizeLimit, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf[:0], err
	}
	defer f.Close()
	size, err := checkFileSize(f, path, lim)
	if err != nil {
		return buf[:0], err
	}
	var r io.Reader = f
	if lim.head != nil {
		var first [headLen]byte
		n, err := io.ReadFull(f, first[:])
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return buf[:0], fmt.Errorf("read %s: %w", path, err)
		}
		if err := lim.head(first[:n]); err != nil {
			return buf[:0], fmt.Errorf("%s: %w", path, err)
		}
		r = io.MultiReader(bytes.NewReader(first[:n]), f)
	}
	// Room for the whole file and the read that sees its end.
	if size >= 0 && int64(cap(buf)) < size+1 {
		buf = make([]byte, 0, size+1)
	}
	data, err := readAtMost(r, path, lim, buf[:0])
	if err != nil && !errors.Is(err, ErrTooLarge) {
		err = fmt.Errorf("read %s: %w", path, err)
	}
	return data, err
}
