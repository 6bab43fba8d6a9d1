package tfevents

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// realFile is an event file written by TensorFlow for
// tf.summary.scalar("accuracy", 0.99, step=77): its two records as the test
// of tensorboard's Rust data server lists them (test_success in
// tensorflow/tensorboard, tensorboard/data/server/tf_record.rs, "dumped via
// xxd"). The first is the file_version event, the second a tensor summary.
var realFile = [][]byte{
	[]byte("\x18\x00\x00\x00\x00\x00\x00\x00\xa3\x7f\x4b\x22" +
		"\x09\x00\x00\x80\x38\x99\xd6\xd7\x41\x1a\x0dbrain.Event:2" +
		"\x12\x4b\x36\xab"),
	[]byte("\x32\x00\x00\x00\x00\x00\x00\x00\x24\x19\x56\xec" +
		"\x09\xc4\x05\xb7\x3d\x99\xd6\xd7\x41\x10\x4d\x2a\x25\x0a\x23\x0a\x08accuracy" +
		"\x42\x0a\x08\x01\x12\x00\x22\x04\xa4\x70\x7d\x3f\x4a\x0b\x0a\x09\x0a\x07scalars" +
		"\xa5\x5b\x64\x33"),
}

// Masked checksums published by tensorboard (masked_crc.rs): one of a real
// record's data, and the length and data checksums of realFile's first record.
func TestMaskedCRC32CKnownValues(t *testing.T) {
	cases := []struct {
		data []byte
		want uint32
	}{
		{[]byte("\x1a\x11CRC test, one two"), 0x5794d08a},
		{[]byte("\x18\x00\x00\x00\x00\x00\x00\x00"), 0x224b7fa3},
		{[]byte("\x09\x00\x00\x80\x38\x99\xd6\xd7\x41\x1a\x0dbrain.Event:2"), 0xab364b12},
	}
	for _, c := range cases {
		if got := MaskedCRC32C(c.data); got != c.want {
			t.Errorf("MaskedCRC32C(%q) = %#08x, want %#08x", c.data, got, c.want)
		}
	}
}

// The writer reproduces TensorFlow's first record byte for byte.
func TestFileVersionRecordMatchesTensorFlow(t *testing.T) {
	wall := math.Float64frombits(binary.LittleEndian.Uint64([]byte("\x00\x00\x80\x38\x99\xd6\xd7\x41")))
	got := AppendRecord(nil, Event{WallTime: wall, FileVersion: FileVersion}.Marshal())
	if !bytes.Equal(got, realFile[0]) {
		t.Fatalf("record\n got % x\nwant % x", got, realFile[0])
	}
}

// The reader reads TensorFlow's file: both checksums hold, the step and
// wall time decode, and the tensor summary (no simple_value) is skipped.
func TestReadRealEventFile(t *testing.T) {
	r := bytes.NewReader(bytes.Join(realFile, nil))
	var events []Event
	for {
		data, err := ReadRecord(r)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		e, err := Unmarshal(data)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	if len(events) != 2 || events[0].FileVersion != "brain.Event:2" || events[1].Step != 77 || len(events[1].Scalars) != 0 {
		t.Fatalf("events %+v", events)
	}
	// 0x41d7d699... is a wall time in 2020 (1.6e9 s).
	if w := events[1].WallTime; w < 1.5e9 || w > 1.7e9 || events[0].WallTime > w {
		t.Errorf("wall times %v, %v", events[0].WallTime, w)
	}
}

// A scalar event against bytes encoded by hand from event.proto and
// summary.proto.
func TestScalarEventEncoding(t *testing.T) {
	e := Event{WallTime: 1.5, Step: 3, Scalars: []Scalar{{Tag: "loss", Value: 0.25}}}
	want := []byte("\x09\x00\x00\x00\x00\x00\x00\xf8\x3f" + // 1: wall_time, fixed64 1.5
		"\x10\x03" + // 2: step, varint 3
		"\x2a\x0d" + // 5: summary, 13 bytes
		"\x0a\x0b" + // Summary.value (1), 11 bytes
		"\x0a\x04loss" + // Value.tag (1)
		"\x15\x00\x00\x80\x3e") // Value.simple_value (2), fixed32 0.25
	if got := e.Marshal(); !bytes.Equal(got, want) {
		t.Fatalf("scalar event\n got % x\nwant % x", got, want)
	}
	back, err := Unmarshal(want)
	if err != nil || back.Step != 3 || back.WallTime != 1.5 || len(back.Scalars) != 1 || back.Scalars[0] != e.Scalars[0] {
		t.Fatalf("Unmarshal: %+v, %v", back, err)
	}
	// session_log (6) { status (1): START }, as torch's purge_step writes it.
	if got := (Event{Step: 5, SessionStatus: SessionStart}).Marshal(); !bytes.Equal(got, []byte("\x10\x05\x32\x02\x08\x01")) {
		t.Errorf("session log event % x", got)
	}
}

// A flipped byte fails the data checksum; a record cut short reads as
// io.ErrUnexpectedEOF.
func TestReadRecordErrors(t *testing.T) {
	bad := append([]byte{}, realFile[0]...)
	bad[15] ^= 1
	if _, err := ReadRecord(bytes.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "data checksum") {
		t.Errorf("flipped data byte: %v", err)
	}
	if _, err := ReadRecord(bytes.NewReader(realFile[0][:20])); err != io.ErrUnexpectedEOF {
		t.Errorf("cut record: %v", err)
	}
}

// Create names the file as torch.utils.tensorboard does and writes the
// file_version event first; ReadFile reads back what Write appended.
func TestWriterRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tb")
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if base := filepath.Base(w.Path()); !strings.HasPrefix(base, FilePrefix) || !strings.Contains(base, "."+host+".") {
		t.Errorf("file name %s", base)
	}
	in := []Event{{WallTime: 2, Step: 1, Scalars: []Scalar{{"a", 1}, {"b", -2.5}}}, {Step: 9, SessionStatus: SessionStart}}
	if err := w.Write(in...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := Files(dir)
	if err != nil || len(files) != 1 {
		t.Fatalf("Files: %v, %v", files, err)
	}
	got, err := ReadFile(files[0])
	if err != nil || len(got) != 3 || got[0].FileVersion != FileVersion || got[1].Scalars[1] != in[0].Scalars[1] || got[2].SessionStatus != SessionStart {
		t.Fatalf("ReadFile: %+v, %v", got, err)
	}
}
