package datasets

import (
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

// ParseIDXHeader parses the header of an IDX file of unsigned bytes: the
// magic (0x0000 08 nd) and nd big-endian uint32 dimensions. It checks that
// data holds exactly the elements the header claims. name is used in errors.
func ParseIDXHeader(name string, data []byte) (IDXHeader, error) {
	if len(data) < 4 {
		return IDXHeader{}, fmt.Errorf("IDX file %s: %d bytes, too short for the 4-byte magic", name, len(data))
	}
	magic := binary.BigEndian.Uint32(data)
	if data[0] != 0 || data[1] != 0 {
		return IDXHeader{}, fmt.Errorf("IDX file %s: magic 0x%08x does not start with two zero bytes (want 0x%08x or 0x%08x)",
			name, magic, IDXImagesMagic, IDXLabelsMagic)
	}
	if data[2] != idxTypeUint8 {
		return IDXHeader{}, fmt.Errorf("IDX file %s: element type 0x%02x, want 0x08 (unsigned byte)", name, data[2])
	}
	nd := int(data[3])
	if nd == 0 {
		return IDXHeader{}, fmt.Errorf("IDX file %s: magic 0x%08x declares no dimensions", name, magic)
	}
	h := IDXHeader{Magic: magic, Dims: make([]int, nd)}
	if len(data) < h.HeaderLen() {
		return IDXHeader{}, fmt.Errorf("IDX file %s: %d bytes, too short for a header of %d dimensions (%d bytes)",
			name, len(data), nd, h.HeaderLen())
	}
	total := uint64(1)
	for i := range h.Dims {
		d := binary.BigEndian.Uint32(data[4+4*i:])
		h.Dims[i] = int(d)
		total *= uint64(d)
		if total > maxIDXElements {
			return IDXHeader{}, fmt.Errorf("IDX file %s: dimensions %v claim more than %d elements", name, h.Dims[:i+1], uint64(maxIDXElements))
		}
	}
	if got, want := uint64(len(data)-h.HeaderLen()), total; got != want {
		return IDXHeader{}, fmt.Errorf("IDX file %s: dimensions %v need %d data bytes after the %d-byte header, file has %d (truncated or wrong file)",
			name, h.Dims, want, h.HeaderLen(), got)
	}
	return h, nil
}

// readMaybeGzip reads path, or path+".gz" when path does not exist, and
// gunzips data that starts with the gzip signature. It returns the name it
// read.
func readMaybeGzip(path string) ([]byte, string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if gzData, gzErr := os.ReadFile(path + ".gz"); gzErr == nil {
			data, err, path = gzData, nil, path+".gz"
		}
	}
	if err != nil {
		return nil, path, err
	}
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, path, fmt.Errorf("gunzip %s: %w", path, err)
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			return nil, path, fmt.Errorf("gunzip %s: %w (truncated archive?)", path, err)
		}
		return out, path, nil
	}
	return data, path, nil
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
func OpenIDX(imagesPath, labelsPath string, classes []string) (*IDX, error) {
	imgData, imgName, err := readMaybeGzip(imagesPath)
	if err != nil {
		return nil, fmt.Errorf("IDX images: %w", err)
	}
	lblData, lblName, err := readMaybeGzip(labelsPath)
	if err != nil {
		return nil, fmt.Errorf("IDX labels: %w", err)
	}
	ih, err := ParseIDXHeader(imgName, imgData)
	if err != nil {
		return nil, err
	}
	if ih.Magic != IDXImagesMagic {
		return nil, fmt.Errorf("IDX images %s: magic 0x%08x, want 0x%08x (N x rows x cols unsigned bytes)", imgName, ih.Magic, IDXImagesMagic)
	}
	lh, err := ParseIDXHeader(lblName, lblData)
	if err != nil {
		return nil, err
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
	labels := lblData[lh.HeaderLen():]
	for i, l := range labels {
		if int(l) >= len(classes) {
			return nil, fmt.Errorf("IDX labels %s: label %d of item %d out of range [0, %d)", lblName, l, i, len(classes))
		}
	}
	return &IDX{
		imagesFile: imgName,
		classes:    classes,
		pix:        imgData[ih.HeaderLen():],
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
