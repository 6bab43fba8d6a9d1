package tfevents

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// FilePrefix starts the name of every event file; TensorBoard reads the
// files of a folder whose names contain it.
const FilePrefix = "events.out.tfevents."

// fileSeq numbers the event files a process creates, as tensorboard's
// EventFileWriter does (its _global_uid).
var fileSeq atomic.Int64

// Writer appends events to a new event file.
type Writer struct {
	f    *os.File
	path string
	buf  []byte
}

// Create makes dir if needed and starts a new event file in it, named as
// torch.utils.tensorboard names its files
// (events.out.tfevents.<unix seconds, 10 digits>.<host>.<pid>.<sequence>),
// with the file_version event first.
func Create(dir string) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	now := time.Now()
	name := fmt.Sprintf("%s%010d.%s.%d.%d", FilePrefix, now.Unix(), host, os.Getpid(), fileSeq.Add(1)-1)
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	w := &Writer{f: f, path: path}
	if err := w.Write(Event{WallTime: WallTime(now), FileVersion: FileVersion}); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// WallTime is t in seconds since 1970, as events record it.
func WallTime(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// Path is the event file's path.
func (w *Writer) Path() string { return w.path }

// Write appends the events, each one record, in a single write.
func (w *Writer) Write(events ...Event) error {
	w.buf = w.buf[:0]
	for _, e := range events {
		w.buf = AppendRecord(w.buf, e.Marshal())
	}
	if _, err := w.f.Write(w.buf); err != nil {
		return fmt.Errorf("tensorboard: write %s: %w", w.path, err)
	}
	return nil
}

// Close closes the file.
func (w *Writer) Close() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("tensorboard: close %s: %w", w.path, err)
	}
	return nil
}

// ReadFile reads every event of an event file. A last record cut short (the
// file of a process that was killed mid-write) ends the list without error.
func ReadFile(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var events []Event
	for {
		data, err := ReadRecord(r)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return events, nil
		}
		if err != nil {
			return events, fmt.Errorf("%s: record %d: %w", path, len(events)+1, err)
		}
		e, err := Unmarshal(data)
		if err != nil {
			return events, fmt.Errorf("%s: record %d: %w", path, len(events)+1, err)
		}
		events = append(events, e)
	}
}

// Files lists the event files in dir, oldest first (their names start with
// the creation time, as TensorBoard orders them).
func Files(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasPrefix(e.Name(), FilePrefix) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out, nil
}
