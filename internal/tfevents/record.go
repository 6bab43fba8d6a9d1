// Package tfevents writes and reads TensorBoard event files: a TFRecord
// stream (each record a little-endian uint64 length, the masked CRC-32C of
// those 8 bytes, the data, and the masked CRC-32C of the data) whose records
// are serialized tensorflow.Event protocol buffers. Only the fields that
// scalar logging needs are encoded, by hand, so no protobuf library is
// involved: Event{wall_time = 1 (double), step = 2 (int64), file_version =
// 3 (string), summary = 5 (Summary{value = 1 (Value{tag = 1 (string),
// simple_value = 2 (float)})}), session_log = 6 (SessionLog{status = 1})}.
package tfevents

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskDelta is TFRecord's (and LevelDB's) CRC mask constant.
const maskDelta = 0xa282ead8

// MaskedCRC32C is the CRC-32C (Castagnoli) of data, masked as TFRecord
// masks it: rotated right by 15 bits plus 0xa282ead8.
func MaskedCRC32C(data []byte) uint32 {
	c := crc32.Checksum(data, castagnoli)
	return ((c >> 15) | (c << 17)) + maskDelta
}

// AppendRecord appends data to dst as one TFRecord.
func AppendRecord(dst, data []byte) []byte {
	var head [12]byte
	binary.LittleEndian.PutUint64(head[:8], uint64(len(data)))
	binary.LittleEndian.PutUint32(head[8:], MaskedCRC32C(head[:8]))
	dst = append(dst, head[:]...)
	dst = append(dst, data...)
	return binary.LittleEndian.AppendUint32(dst, MaskedCRC32C(data))
}

// ErrCorrupt is returned by ReadRecord for a record whose checksum does not
// match its content.
var ErrCorrupt = errors.New("corrupt TFRecord")

// maxRecord bounds the length ReadRecord accepts (an event file's records
// are small; a huge length is a corrupt header that passed its CRC).
const maxRecord = 1 << 30

// ReadRecord reads one TFRecord from r and checks both checksums. It
// returns io.EOF at a clean end of the stream and io.ErrUnexpectedEOF for a
// record cut short (a file still being written, or one cut by a crash).
func ReadRecord(r io.Reader) ([]byte, error) {
	var head [12]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	if got, want := MaskedCRC32C(head[:8]), binary.LittleEndian.Uint32(head[8:]); got != want {
		return nil, fmt.Errorf("%w: length checksum %#08x, want %#08x", ErrCorrupt, got, want)
	}
	n := binary.LittleEndian.Uint64(head[:8])
	if n > maxRecord {
		return nil, fmt.Errorf("%w: a record of %d bytes", ErrCorrupt, n)
	}
	buf := make([]byte, n+4)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	data := buf[:n]
	if got, want := MaskedCRC32C(data), binary.LittleEndian.Uint32(buf[n:]); got != want {
		return nil, fmt.Errorf("%w: data checksum %#08x, want %#08x", ErrCorrupt, got, want)
	}
	return data, nil
}
