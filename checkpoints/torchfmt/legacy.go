package torchfmt

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"

	"github.com/gsrmt/gsrmt/internal/pickle"
)

// legacyMagic opens every file of PyTorch's legacy serialization.
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

const legacyProtocol = 1001

// countingReader counts the bytes read through it.
type countingReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

// readLegacy reads the format torch.save wrote before PyTorch 1.6: pickles
// of the magic number, the protocol version and sys_info, then the object
// (storages as persistent ids), then the list of storage keys, then each
// storage as an 8-byte element count and its raw bytes.
func readLegacy(r io.ReaderAt, size int64) (any, error) {
	cr := &countingReader{r: bufio.NewReader(io.NewSectionReader(r, 0, size))}
	dec := pickle.NewDecoder(cr)
	littleEndian, err := readLegacyHeader(dec)
	if err != nil {
		return nil, err
	}
	st := &legacyStorages{size: size, byKey: make(map[string]*legacyStorage)}
	dec.Globals, dec.Records = allowed, isRecordClass
	dec.PersistentLoad = st.load
	v, err := dec.Decode()
	if err != nil {
		return nil, fmt.Errorf("legacy format: %w", err)
	}
	dec.Globals, dec.Records, dec.PersistentLoad = nil, nil, nil
	if err := st.readData(dec, cr, littleEndian); err != nil {
		return nil, fmt.Errorf("legacy format: %w", err)
	}
	return convertDecoded(v)
}

// readLegacyHeader reads the magic number, the protocol version and
// sys_info, and returns sys_info's byte order.
func readLegacyHeader(dec *pickle.Decoder) (littleEndian bool, err error) {
	magic, err := dec.Decode()
	if err != nil {
		return false, fmt.Errorf("legacy format: magic number: %w", err)
	}
	if m, ok := magic.(*big.Int); !ok || m.Cmp(legacyMagic) != 0 {
		return false, fmt.Errorf("legacy format: bad magic number %v: %w", magic, ErrFormat)
	}
	proto, err := dec.Decode()
	if err != nil {
		return false, fmt.Errorf("legacy format: protocol version: %w", err)
	}
	if proto != int64(legacyProtocol) {
		return false, fmt.Errorf("legacy format: unsupported protocol version %v", proto)
	}
	info, err := dec.Decode()
	if err != nil {
		return false, fmt.Errorf("legacy format: sys_info: %w", err)
	}
	d, ok := info.(*Dict)
	if !ok {
		return false, fmt.Errorf("legacy format: sys_info is a %T, not a dict", info)
	}
	le, ok := d.Get("little_endian")
	if !ok {
		return true, nil
	}
	if littleEndian, ok = le.(bool); !ok {
		return false, fmt.Errorf("legacy format: sys_info little_endian is a %T", le)
	}
	return littleEndian, nil
}

// legacyStorages collects the storages the object's pickle names, whose
// data follows it.
type legacyStorages struct {
	size  int64 // of the file
	byKey map[string]*legacyStorage
}

type legacyStorage struct {
	s     *Storage
	numel int64
}

// load is the pickle's PersistentLoad: a storage, or a view of one.
func (l *legacyStorages) load(pid any) (any, error) {
	key, dtype, n, view, err := parseStoragePID(pid, 6)
	if err != nil {
		return nil, err
	}
	if n > l.size/int64(dtype.Size()) {
		return nil, fmt.Errorf("storage %s of %d %v elements is larger than the file", key, n, dtype)
	}
	p, ok := l.byKey[key]
	if !ok {
		p = &legacyStorage{s: &Storage{Key: key, DType: dtype}, numel: n}
		l.byKey[key] = p
	} else if p.s.DType != dtype || p.numel != n {
		return nil, fmt.Errorf("storage %s is described twice differently", key)
	}
	ref := storageRef{s: p.s}
	if view != nil {
		// (view_key, offset, view_size): a view of the root storage.
		vt, ok := view.(Tuple)
		if !ok || len(vt) != 3 {
			return nil, fmt.Errorf("storage %s: bad view metadata %v", key, view)
		}
		off, ok1 := vt[1].(int64)
		vsize, ok2 := vt[2].(int64)
		if !ok1 || !ok2 || off < 0 || vsize < 0 || off > n || vsize > n-off {
			return nil, fmt.Errorf("storage %s: view metadata %v out of range", key, view)
		}
		ref.offset = off
	}
	return ref, nil
}

// readData reads the list of storage keys, then each storage's element
// count and bytes.
func (l *legacyStorages) readData(dec *pickle.Decoder, cr *countingReader, littleEndian bool) error {
	keysV, err := dec.Decode()
	if err != nil {
		return fmt.Errorf("storage keys: %w", err)
	}
	keys, ok := keysV.([]any)
	if !ok {
		return fmt.Errorf("storage keys are a %T, not a list", keysV)
	}
	for _, k := range keys {
		key, ok := pythonString(k)
		if !ok {
			return fmt.Errorf("storage key %v is not a string", k)
		}
		p, ok := l.byKey[key]
		if !ok {
			return fmt.Errorf("storage %s is not used by any tensor", key)
		}
		if p.s.Data != nil {
			return fmt.Errorf("storage %s listed twice", key)
		}
		if err := l.readStorage(cr, key, p, littleEndian); err != nil {
			return err
		}
	}
	for key, p := range l.byKey {
		if p.s.Data == nil {
			if p.numel != 0 {
				return fmt.Errorf("storage %s has no data", key)
			}
			p.s.Data = []byte{}
		}
	}
	return nil
}

// readStorage reads one storage: its element count, which must agree with
// its tensors', and its bytes.
func (l *legacyStorages) readStorage(cr *countingReader, key string, p *legacyStorage, littleEndian bool) error {
	var hdr [8]byte
	if _, err := io.ReadFull(cr, hdr[:]); err != nil {
		return fmt.Errorf("storage %s: %w", key, noEOF(err))
	}
	n := int64(binary.LittleEndian.Uint64(hdr[:]))
	if !littleEndian {
		n = int64(binary.BigEndian.Uint64(hdr[:]))
	}
	if n != p.numel {
		return fmt.Errorf("storage %s holds %d elements, its tensors say %d", key, n, p.numel)
	}
	nbytes := n * int64(p.s.DType.Size())
	if left := l.size - cr.n; nbytes > left {
		return fmt.Errorf("storage %s needs %d bytes, %d left: %w", key, nbytes, left, io.ErrUnexpectedEOF)
	}
	data := make([]byte, nbytes)
	if _, err := io.ReadFull(cr, data); err != nil {
		return fmt.Errorf("storage %s: %w", key, noEOF(err))
	}
	if !littleEndian {
		swapBytes(data, p.s.DType.Size())
	}
	p.s.Data = data
	return nil
}
