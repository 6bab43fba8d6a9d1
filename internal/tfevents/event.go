package tfevents

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// FileVersion is the file_version of an event file's first event.
const FileVersion = "brain.Event:2"

// SessionStart is SessionLog.START, the status of a session_log event that
// tells TensorBoard to discard the events at and after its step that an
// earlier attempt wrote (torch.utils.tensorboard's purge_step).
const SessionStart = 1

// Scalar is one value of an event's summary.
type Scalar struct {
	Tag   string
	Value float32
}

// Event is the part of tensorflow.Event that this package writes and reads.
type Event struct {
	WallTime      float64 // seconds since 1970
	Step          int64
	FileVersion   string   // set on a file's first event only
	Scalars       []Scalar // summary.value[*] with a simple_value
	SessionStatus int      // session_log.status; 0: no session_log
}

// Protocol buffer wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

func appendTag(b []byte, field, wire int) []byte {
	return binary.AppendUvarint(b, uint64(field<<3|wire))
}

func appendBytes(b []byte, field int, v []byte) []byte {
	b = appendTag(b, field, wireBytes)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// Marshal encodes e as a serialized tensorflow.Event. Zero fields are left
// out, as proto3 does.
func (e Event) Marshal() []byte {
	var b []byte
	if e.WallTime != 0 {
		b = appendTag(b, 1, wireFixed64)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(e.WallTime))
	}
	if e.Step != 0 {
		b = appendTag(b, 2, wireVarint)
		b = binary.AppendUvarint(b, uint64(e.Step))
	}
	if e.FileVersion != "" {
		b = appendBytes(b, 3, []byte(e.FileVersion))
	}
	if len(e.Scalars) > 0 {
		var summary []byte
		for _, s := range e.Scalars {
			var v []byte
			v = appendBytes(v, 1, []byte(s.Tag))
			v = appendTag(v, 2, wireFixed32)
			v = binary.LittleEndian.AppendUint32(v, math.Float32bits(s.Value))
			summary = appendBytes(summary, 1, v)
		}
		b = appendBytes(b, 5, summary)
	}
	if e.SessionStatus != 0 {
		var sl []byte
		sl = appendTag(sl, 1, wireVarint)
		sl = binary.AppendUvarint(sl, uint64(e.SessionStatus))
		b = appendBytes(b, 6, sl)
	}
	return b
}

// errTruncated is the error of a message that ends inside a field.
var errTruncated = errors.New("truncated protocol buffer")

// field is one decoded protocol buffer field.
type field struct {
	num, wire int
	varint    uint64 // wireVarint, wireFixed64, wireFixed32
	bytes     []byte // wireBytes
}

// fields splits a serialized message into its fields.
func fields(b []byte) ([]field, error) {
	var out []field
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errTruncated
		}
		b = b[n:]
		f := field{num: int(key >> 3), wire: int(key & 7)}
		switch f.wire {
		case wireVarint:
			if f.varint, n = binary.Uvarint(b); n <= 0 {
				return nil, errTruncated
			}
			b = b[n:]
		case wireFixed64, wireFixed32:
			size := 8
			if f.wire == wireFixed32 {
				size = 4
			}
			if len(b) < size {
				return nil, errTruncated
			}
			if size == 8 {
				f.varint = binary.LittleEndian.Uint64(b)
			} else {
				f.varint = uint64(binary.LittleEndian.Uint32(b))
			}
			b = b[size:]
		case wireBytes:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return nil, errTruncated
			}
			f.bytes, b = b[n:n+int(l)], b[n+int(l):]
		default:
			return nil, fmt.Errorf("protocol buffer field %d: unsupported wire type %d", f.num, f.wire)
		}
		out = append(out, f)
	}
	return out, nil
}

// Unmarshal decodes a serialized tensorflow.Event. Fields this package does
// not know (graphs, tensor summaries, ...) are skipped; a summary value
// without a simple_value is left out of Scalars.
func Unmarshal(b []byte) (Event, error) {
	var e Event
	fs, err := fields(b)
	if err != nil {
		return e, err
	}
	for _, f := range fs {
		switch {
		case f.num == 1 && f.wire == wireFixed64:
			e.WallTime = math.Float64frombits(f.varint)
		case f.num == 2 && f.wire == wireVarint:
			e.Step = int64(f.varint)
		case f.num == 3 && f.wire == wireBytes:
			e.FileVersion = string(f.bytes)
		case f.num == 5 && f.wire == wireBytes:
			if e.Scalars, err = appendScalars(e.Scalars, f.bytes); err != nil {
				return e, fmt.Errorf("summary: %w", err)
			}
		case f.num == 6 && f.wire == wireBytes:
			sl, err := fields(f.bytes)
			if err != nil {
				return e, fmt.Errorf("session_log: %w", err)
			}
			for _, s := range sl {
				if s.num == 1 && s.wire == wireVarint {
					e.SessionStatus = int(s.varint)
				}
			}
		}
	}
	return e, nil
}

// appendScalars appends the simple values of a serialized Summary.
func appendScalars(dst []Scalar, summary []byte) ([]Scalar, error) {
	values, err := fields(summary)
	if err != nil {
		return dst, err
	}
	for _, v := range values {
		if v.num != 1 || v.wire != wireBytes {
			continue
		}
		vf, err := fields(v.bytes)
		if err != nil {
			return dst, err
		}
		var s Scalar
		simple := false
		for _, f := range vf {
			switch {
			case f.num == 1 && f.wire == wireBytes:
				s.Tag = string(f.bytes)
			case f.num == 2 && f.wire == wireFixed32:
				s.Value, simple = math.Float32frombits(uint32(f.varint)), true
			}
		}
		if simple {
			dst = append(dst, s)
		}
	}
	return dst, nil
}
