package datasets

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// IDX magic numbers: two zero bytes, the element type (0x08: unsigned
// byte) and the number of dimensions.
const (
	IDXImagesMagic = 0x00000803
	IDXLabelsMagic = 0x00000801
	idxTypeUint8   = 0x08
)

// DefaultFashionMNISTDir is where Debian's dataset-fashion-mnist package
// installs the Fashion-MNIST IDX files.
const DefaultFashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// FashionMNISTClasses are Fashion-MNIST's class names in label order.
var FashionMNISTClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// MNISTClasses are MNIST's class names ("0" to "9").
var MNISTClasses = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

// Fashion-MNIST normalization constants (MODEL.md section 8); the one
// grayscale channel is normalized with them and then replicated.
const (
	FashionMNISTMean = 0.2860
	FashionMNISTStd  = 0.3530
)

// MNIST normalization constants (the usual ones).
const (
	MNISTMean = 0.1307
	MNISTStd  = 0.3081
)

// IDXHeader is the parsed header of an IDX file of unsigned bytes.
type IDXHeader struct {
	Magic uint32
	Dims  []int
}

// Size returns the number of elements the header describes.
func (h IDXHeader) Size() int {
	n := 1
	for _, d := range h.Dims {
		n *= d
	}
	return n
}

// HeaderLen returns the header's length in bytes.
func (h IDXHeader) HeaderLen() int { return 4 + 4*len(h.Dims) }

// maxIDXElements bounds the element count a header may claim (4 GiB).
const maxIDXElements = 1 << 32

// maxIDXDims is the most dimensions an IDX header can declare (its fourth
// byte), and so maxIDXHeaderLen the longest header.
const (
	maxIDXDims      = 255
	maxIDXHeaderLen = 4 + 4*maxIDXDims
)

// ParseIDXHeader parses the header of an IDX file of unsigned bytes: the
// magic (0x0000 08 nd) and nd big-endian uint32 dimensions. It checks that
// data holds exactly the elements the header claims. name is used in errors.
func ParseIDXHeader(name string, data []byte) (IDXHeader, error) {
	h, total, err := parseIDXHeaderPrefix(name, data)
	if err != nil {
		return IDXHeader{}, err
	}
	if got := uint64(len(data) - h.HeaderLen()); got != total {
		return IDXHeader{}, idxSizeError(name, h, int64(got))
	}
	return h, nil
}

// parseIDXHeaderPrefix parses the IDX header at the start of data (which
// may hold anything after it) and returns it with the number of data bytes
// it declares.
func parseIDXHeaderPrefix(name string, data []byte) (IDXHeader, uint64, error) {
	if len(data) < 4 {
		return IDXHeader{}, 0, fmt.Errorf("IDX file %s: %d bytes, too short for the 4-byte magic", name, len(data))
	}
	magic := binary.BigEndian.Uint32(data)
	if data[0] != 0 || data[1] != 0 {
		return IDXHeader{}, 0, fmt.Errorf("IDX file %s: magic 0x%08x does not start with two zero bytes (want 0x%08x or 0x%08x)",
			name, magic, IDXImagesMagic, IDXLabelsMagic)
	}
	if data[2] != idxTypeUint8 {
		return IDXHeader{}, 0, fmt.Errorf("IDX file %s: element type 0x%02x, want 0x08 (unsigned byte)", name, data[2])
	}
	nd := int(data[3])
	if nd == 0 {
		return IDXHeader{}, 0, fmt.Errorf("IDX file %s: magic 0x%08x declares no dimensions", name, magic)
	}
	h := IDXHeader{Magic: magic, Dims: make([]int, nd)}
	if len(data) < h.HeaderLen() {
		return IDXHeader{}, 0, fmt.Errorf("IDX file %s: %d bytes, too short for a header of %d dimensions (%d bytes)",
			name, len(data), nd, h.HeaderLen())
	}
	total := uint64(1)
	for i := range h.Dims {
		d := binary.BigEndian.Uint32(data[4+4*i:])
		h.Dims[i] = int(d)
		total *= uint64(d)
		if total > maxIDXElements {
			return IDXHeader{}, 0, fmt.Errorf("IDX file %s: dimensions %v claim more than %d elements", name, h.Dims[:i+1], uint64(maxIDXElements))
		}
	}
	return h, total, nil
}

// idxSizeError is the error for an IDX file whose header h is followed by
// got data bytes (got < 0: more than it declares) instead of those its
// dimensions declare. More bytes than declared wrap ErrTooLarge.
func idxSizeError(name string, h IDXHeader, got int64) error {
	want := int64(h.Size())
	if got >= 0 && got < want {
		return fmt.Errorf("IDX file %s: dimensions %v need %d data bytes after the %d-byte header, file has %d (truncated or wrong file)",
			name, h.Dims, want, h.HeaderLen(), got)
	}
	found := "more"
	if got >= 0 {
		found = fmt.Sprint(got)
	}
	return fmt.Errorf("IDX file %s: dimensions %v need %d data bytes after the %d-byte header, file has %s (extra data or wrong file): %w",
		name, h.Dims, want, h.HeaderLen(), found, ErrTooLarge)
}

// gzipMagic starts every gzip stream.
var gzipMagic = []byte{0x1f, 0x8b}

// readIDXFile reads the IDX file at path, or at path+".gz" when path does
// not exist, gunzipping data that starts with the gzip signature. It
// returns the header, the data after it and the name it read. The header is
// read first, and then no more data than its dimensions declare: a regular
// uncompressed file of another size is refused before its data is read, and
// a gzip stream that inflates to more is read no further.
func readIDXFile(path string) (IDXHeader, []byte, string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		if gz, gzErr := os.Open(path + ".gz"); gzErr == nil {
			f, err, path = gz, nil, path+".gz"
		}
	}
	if err != nil {
		return IDXHeader{}, nil, path, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return IDXHeader{}, nil, path, err
	}
	size := int64(-1)
	if fi.Mode().IsRegular() {
		size = fi.Size()
	}
	h, data, err := readIDXStream(path, f, size)
	return h, data, path, err
}

// readIDXStream reads an IDX file, named name in errors, from r of size
// bytes (-1: unknown), gunzipping it when it starts with the gzip
// signature.
func readIDXStream(name string, r io.Reader, size int64) (IDXHeader, []byte, error) {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(len(gzipMagic)); bytes.Equal(magic, gzipMagic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return IDXHeader{}, nil, fmt.Errorf("gunzip %s: %w", name, err)
		}
		return readIDX(name, zr, -1, "gunzip")
	}
	return readIDX(name, br, size, "read")
}

// readIDX reads an IDX file of unsigned bytes, named name in errors, from
// r: its header, and then at most the data bytes its dimensions declare.
// size is r's size when known (a regular file), -1 otherwise; verb says
// what reading r does ("read", "gunzip") in errors of r's own.
func readIDX(name string, r io.Reader, size int64, verb string) (IDXHeader, []byte, error) {
	ioErr := func(err error) error {
		if err == io.ErrUnexpectedEOF {
			return fmt.Errorf("%s %s: %w (truncated file?)", verb, name, err)
		}
		return fmt.Errorf("%s %s: %w", verb, name, err)
	}
	head := make([]byte, 4, maxIDXHeaderLen)
	n, err := io.ReadFull(r, head)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return IDXHeader{}, nil, ioErr(err)
	}
	if n == len(head) {
		head = head[:4+4*int(head[3])]
		m, err := io.ReadFull(r, head[4:])
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return IDXHeader{}, nil, ioErr(err)
		}
		n += m
	}
	h, total, err := parseIDXHeaderPrefix(name, head[:n])
	if err != nil {
		return IDXHeader{}, nil, err
	}
	if size >= 0 && uint64(size-int64(n)) != total {
		// The file's size tells before reading it.
		return IDXHeader{}, nil, idxSizeError(name, h, size-int64(n))
	}
	var buf []byte
	if size >= 0 {
		buf = make([]byte, 0, total+1)
	}
	data, err := readAtMost(r, name, sizeLimit{max: int64(total), what: "the data its header declares"}, buf)
	if errors.Is(err, ErrTooLarge) {
		return IDXHeader{}, nil, idxSizeError(name, h, -1)
	}
	if err != nil {
		return IDXHeader{}, nil, ioErr(err)
	}
	if uint64(len(data)) != total {
		return IDXHeader{}, nil, idxSizeError(name, h, int64(len(data)))
	}
	return h, data, nil
}

// IDX is an IDX image/label pair held in memory: grayscale images
// (Channels 1) of one size.
type IDX struct {
	imagesFile string
	classes    []string
	pix        []byte
	labels     []byte
	width      int
	height     int
}

// OpenIDX reads an IDX images file (magic 0x803, dims N x rows x cols) and
// its labels file (magic 0x801, dims N), each plain or gzipped; when a path
// does not exist, path+".gz" is tried. Labels must be below len(classes).
// Each file's header is read first and then no more data than its
// dimensions declare: a file holding more is an error wrapping ErrTooLarge.
func OpenIDX(imagesPath, labelsPath string, classes []string) (*IDX, error) {
	ih, pix, imgName, err := readIDXFile(imagesPath)
	if err != nil {
		return nil, fmt.Errorf("IDX images: %w", err)
	}
	lh, labels, lblName, err := readIDXFile(labelsPath)
	if err != nil {
		return nil, fmt.Errorf("IDX labels: %w", err)
	}
	return newIDX(imgName, ih, pix, lblName, lh, labels, classes)
}

// newIDX checks a parsed images file (header ih, data pix) and labels file
// (lh, labels) against each other and classes.
func newIDX(imgName string, ih IDXHeader, pix []byte, lblName string, lh IDXHeader, labels []byte, classes []string) (*IDX, error) {
	if ih.Magic != IDXImagesMagic {
		return nil, fmt.Errorf("IDX images %s: magic 0x%08x, want 0x%08x (N x rows x cols unsigned bytes)", imgName, ih.Magic, IDXImagesMagic)
	}
	if lh.Magic != IDXLabelsMagic {
		return nil, fmt.Errorf("IDX labels %s: magic 0x%08x, want 0x%08x (N unsigned bytes)", lblName, lh.Magic, IDXLabelsMagic)
	}
	n := ih.Dims[0]
	if lh.Dims[0] != n {
		return nil, fmt.Errorf("IDX labels %s: %d labels for the %d images of %s", lblName, lh.Dims[0], n, imgName)
	}
	if n == 0 || ih.Dims[1] == 0 || ih.Dims[2] == 0 {
		return nil, fmt.Errorf("IDX images %s: dimensions %v, want non-empty N x rows x cols", imgName, ih.Dims)
	}
	for i, l := range labels {
		if int(l) >= len(classes) {
			return nil, fmt.Errorf("IDX labels %s: label %d of item %d out of range [0, %d)", lblName, l, i, len(classes))
		}
	}
	return &IDX{
		imagesFile: imgName,
		classes:    classes,
		pix:        pix,
		labels:     labels,
		height:     ih.Dims[1],
		width:      ih.Dims[2],
	}, nil
}

// idxFiles returns the images and labels base names of a split.
func idxFiles(split Split) (images, labels string, err error) {
	switch split {
	case Train:
		return "train-images-idx3-ubyte", "train-labels-idx1-ubyte", nil
	case Test:
		return "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", nil
	}
	return "", "", fmt.Errorf("no %s split in MNIST-style IDX files (want train or test)", split)
}

// OpenFashionMNIST opens a split of Fashion-MNIST from dir (holding
// train-images-idx3-ubyte[.gz] and friends); an empty dir means
// DefaultFashionMNISTDir.
func OpenFashionMNIST(dir string, split Split) (*IDX, error) {
	if dir == "" {
		dir = DefaultFashionMNISTDir
	}
	return openMNISTStyle(dir, split, FashionMNISTClasses)
}

// OpenMNIST opens a split of MNIST from dir (same file names as
// Fashion-MNIST).
func OpenMNIST(dir string, split Split) (*IDX, error) {
	return openMNISTStyle(dir, split, MNISTClasses)
}

func openMNISTStyle(dir string, split Split, classes []string) (*IDX, error) {
	images, labels, err := idxFiles(split)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return OpenIDX(filepath.Join(dir, images), filepath.Join(dir, labels), classes)
}

// Len returns the number of images.
func (ds *IDX) Len() int { return len(ds.labels) }

// Classes returns the class names.
func (ds *IDX) Classes() []string { return ds.classes }

// Label returns the label of image i.
func (ds *IDX) Label(i int) int { return int(ds.labels[i]) }

// Size returns the images' width and height.
func (ds *IDX) Size() (width, height int) { return ds.width, ds.height }

// Load copies image i into dst as a one-channel image.
func (ds *IDX) Load(i int, dst *Image) error {
	if err := checkIndex("IDX "+ds.imagesFile, i, ds.Len()); err != nil {
		return err
	}
	n := ds.width * ds.height
	dst.Resize(ds.width, ds.height, 1)
	copy(dst.Pix, ds.pix[i*n:(i+1)*n])
	return nil
}
