package datasets

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// CIFAR geometry, the same in CIFAR-10 and CIFAR-100.
const (
	CIFARSide   = 32
	cifarPixels = 3 * CIFARSide * CIFARSide // 3072 bytes, channel-major
	// CIFARRecordSize is the size of a CIFAR-10 binary record: the label
	// byte and the pixels.
	CIFARRecordSize = 1 + cifarPixels
	// CIFAR100RecordSize is the size of a CIFAR-100 binary record: the
	// coarse and the fine label bytes, then the pixels.
	CIFAR100RecordSize = 2 + cifarPixels

	cifarBinDir   = "cifar-10-batches-bin"
	cifarPyDir    = "cifar-10-batches-py"
	cifarBinTarGz = "cifar-10-binary.tar.gz"
	cifarPyTarGz  = "cifar-10-python.tar.gz"

	cifar100BinDir   = "cifar-100-binary"
	cifar100PyDir    = "cifar-100-python"
	cifar100BinTarGz = "cifar-100-binary.tar.gz"
	cifar100PyTarGz  = "cifar-100-python.tar.gz"
)

// Size limits of the CIFAR files, checked before a file or archive member
// is read (errors wrap ErrTooLarge).
const (
	// cifarBatchRecords is the number of images of each official CIFAR-10
	// batch file; a batch may hold fewer, never more.
	cifarBatchRecords = 10000
	// cifarPickleOverhead is what a CIFAR-10 python batch may hold besides
	// its pixels: 10000 labels, 10000 file names (about 40 bytes each in the
	// official files), the batch label and the pickle framing.
	cifarPickleOverhead = 4 << 20
	// cifar100TrainRecords is the number of images of CIFAR-100's train
	// file, the larger of its two; a file may hold fewer, never more.
	cifar100TrainRecords = 50000
	// cifar100PickleOverhead is what a CIFAR-100 python file may hold
	// besides its pixels: 50000 fine and 50000 coarse labels, 50000 file
	// names, the batch label and the pickle framing (5x CIFAR-10's).
	cifar100PickleOverhead = 20 << 20
)

var (
	// cifarBinaryLimit: 10000 records of 3073 bytes, 30,730,000 bytes.
	cifarBinaryLimit = sizeLimit{max: cifarBatchRecords * CIFARRecordSize, what: "a CIFAR-10 binary batch (10000 records of 3073 bytes)"}
	// cifarPythonLimit: the 10000 x 3072 pixel bytes twice over (a
	// Python 3 protocol 2 pickle stores bytes as a latin-1 string, up to
	// 2 bytes of UTF-8 each) plus cifarPickleOverhead: 65,634,304 bytes.
	cifarPythonLimit = sizeLimit{max: 2*cifarBatchRecords*cifarPixels + cifarPickleOverhead, what: "a CIFAR-10 python batch (10000 images of 3072 bytes, pickled)"}
	// cifarMetaLimit: ten class names; the official files are under 200
	// bytes.
	cifarMetaLimit = sizeLimit{max: 64 << 10, what: "a CIFAR-10 meta file (ten class names)"}

	// cifar100BinaryLimit: 50000 records of 3074 bytes, 153,700,000 bytes.
	cifar100BinaryLimit = sizeLimit{max: cifar100TrainRecords * CIFAR100RecordSize, what: "a CIFAR-100 binary file (50000 records of 3074 bytes)"}
	// cifar100PythonLimit: the 50000 x 3072 pixel bytes twice over (as
	// cifarPythonLimit) plus cifar100PickleOverhead: 328,171,520 bytes.
	cifar100PythonLimit = sizeLimit{max: 2*cifar100TrainRecords*cifarPixels + cifar100PickleOverhead, what: "a CIFAR-100 python file (50000 images of 3072 bytes, pickled)"}
	// cifar100MetaLimit: 100 fine and 20 coarse class names; the official
	// files are under 2 KB.
	cifar100MetaLimit = sizeLimit{max: 64 << 10, what: "a CIFAR-100 meta file (100 fine and 20 coarse class names)"}
)

// CIFAR10Classes are the official class names in label order.
var CIFAR10Classes = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// CIFAR100Classes are the official fine class names in label order (the
// meta files' fine_label_names: alphabetical).
var CIFAR100Classes = []string{
	"apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
	"bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
	"chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
	"dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
	"lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
	"mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
	"plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
	"rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
	"squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
	"train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
}

// CIFAR-10 normalization constants (MODEL.md section 8).
var (
	CIFAR10Mean = [3]float32{0.4914, 0.4822, 0.4465}
	CIFAR10Std  = [3]float32{0.2470, 0.2435, 0.2616}
)

// CIFAR-100 normalization constants: the mean and standard deviation of
// each channel over the 50,000 training images, as CIFAR10Mean/CIFAR10Std
// are CIFAR-10's (the values of the widely used pytorch-cifar100 recipe,
// weiaicunzai/pytorch-cifar100 conf/global_settings.py, rounded to 4
// places).
var (
	CIFAR100Mean = [3]float32{0.5071, 0.4865, 0.4409}
	CIFAR100Std  = [3]float32{0.2673, 0.2564, 0.2762}
)

// CIFARFormat is one of the two official CIFAR distributions.
type CIFARFormat int

// The CIFAR distributions.
const (
	CIFARBinary CIFARFormat = iota // cifar-10-batches-bin, cifar-100-binary and their .tar.gz
	CIFARPython                    // cifar-10-batches-py, cifar-100-python and their .tar.gz
)

// String returns "binary" or "python".
func (f CIFARFormat) String() string {
	if f == CIFARPython {
		return "python"
	}
	return "binary"
}

// cifarSet describes one of the CIFAR data sets: the names of its folders,
// archives and files, the layout of its binary records and python pickles,
// and the size limits of its files. CIFAR-10 and CIFAR-100 share every code
// path through it.
type cifarSet struct {
	name    string   // "CIFAR-10", in errors
	classes []string // class names in label order, used without a meta file
	// Per format (indexed by CIFARFormat): the extracted folder, the
	// archive, the class-name file and the size limit of a batch file.
	dirs, archives, metas [2]string
	batchLimits           [2]sizeLimit
	metaLimit             sizeLimit
	// trainFiles and testFile are the batch files' base names; binary ones
	// end in ".bin" besides.
	trainFiles []string
	testFile   string
	// labelBytes is the number of label bytes that start a binary record,
	// labelAt the one holding the class.
	labelBytes, labelAt int
	// pyLabels and pyNames are the keys of the labels in a python batch and
	// of the class names in the python meta file.
	pyLabels, pyNames string
	// md5 are the MD5 sums of the official archives.
	md5 map[CIFARFormat]string
}

// cifar10 is CIFAR-10 (DATA.md): five training batches and one test batch
// of 10000 records with one label byte.
var cifar10 = &cifarSet{
	name: "CIFAR-10", classes: CIFAR10Classes,
	dirs: [2]string{cifarBinDir, cifarPyDir}, archives: [2]string{cifarBinTarGz, cifarPyTarGz},
	metas:       [2]string{"batches.meta.txt", "batches.meta"},
	batchLimits: [2]sizeLimit{cifarBinaryLimit, cifarPythonLimit}, metaLimit: cifarMetaLimit,
	trainFiles: []string{"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"},
	testFile:   "test_batch",
	labelBytes: 1, labelAt: 0, pyLabels: "labels", pyNames: "label_names",
	md5: CIFAR10MD5,
}

// cifar100 is CIFAR-100 with its 100 fine labels: one training file of
// 50000 records and one test file of 10000, each record starting with a
// coarse and a fine label byte.
var cifar100 = &cifarSet{
	name: "CIFAR-100", classes: CIFAR100Classes,
	dirs: [2]string{cifar100BinDir, cifar100PyDir}, archives: [2]string{cifar100BinTarGz, cifar100PyTarGz},
	metas:       [2]string{"fine_label_names.txt", "meta"},
	batchLimits: [2]sizeLimit{cifar100BinaryLimit, cifar100PythonLimit}, metaLimit: cifar100MetaLimit,
	trainFiles: []string{"train"}, testFile: "test",
	labelBytes: 2, labelAt: 1, pyLabels: "fine_labels", pyNames: "fine_label_names",
	md5: CIFAR100MD5,
}

// recordSize is the size of one binary record.
func (s *cifarSet) recordSize() int { return s.labelBytes + cifarPixels }

// batchFiles returns the batch file names of a split in read order.
func (s *cifarSet) batchFiles(f CIFARFormat, split Split) []string {
	names := []string{s.testFile}
	if split != Test {
		names = slices.Clone(s.trainFiles)
	}
	if f == CIFARBinary {
		for i := range names {
			names[i] += ".bin"
		}
	}
	return names
}

// CIFAR is one split of CIFAR-10 or CIFAR-100 held in memory (about 150 MB
// for train) in the official channel-major layout.
type CIFAR struct {
	set     *cifarSet
	source  string
	format  CIFARFormat
	classes []string
	pix     []byte // n records of cifarPixels bytes, CHW
	labels  []uint8
	files   []cifarSpan
	batches int // number of batch files of the split, to size pix once
}

// cifarSpan maps a run of samples back to the file they came from.
type cifarSpan struct {
	name  string
	start int // first sample index
}

// OpenCIFAR10 reads the train or test split of CIFAR-10. path may be
//
//   - an extracted folder (cifar-10-batches-bin or cifar-10-batches-py),
//   - a folder holding one of those folders or the official archives
//     (cifar-10-binary.tar.gz, cifar-10-python.tar.gz), or
//   - one of those .tar.gz archives, read without extracting it.
//
// The binary distribution is preferred when both are present. CIFAR-10 has
// no validation split; asking for Val is an error.
//
// An error about data that is not there (no such path, none of the folders
// or archives above, a batch file missing from an extracted folder) wraps
// fs.ErrNotExist; an error about a file that is there but corrupt or too
// large (ErrTooLarge) does not, so that a caller can suggest downloading
// only where that can help.
func OpenCIFAR10(path string, split Split) (*CIFAR, error) { return openCIFAR(cifar10, path, split) }

// OpenCIFAR100 reads the train or test split of CIFAR-100 with its 100 fine
// labels, as torchvision's CIFAR100 does, from the same kinds of path as
// OpenCIFAR10: an extracted cifar-100-binary (train.bin, test.bin,
// fine_label_names.txt) or cifar-100-python (train, test, meta) folder, a
// folder holding one of them or the official archives
// (cifar-100-binary.tar.gz, cifar-100-python.tar.gz), or one of those
// archives. Errors follow OpenCIFAR10's rules.
func OpenCIFAR100(path string, split Split) (*CIFAR, error) {
	return openCIFAR(cifar100, path, split)
}

func openCIFAR(set *cifarSet, path string, split Split) (*CIFAR, error) {
	if split != Train && split != Test {
		return nil, fmt.Errorf("%s at %s: no %s split (want train or test)", set.name, path, split)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", set.name, err)
	}
	if !fi.IsDir() {
		return openCIFARArchive(set, path, split)
	}
	formats := []CIFARFormat{CIFARBinary, CIFARPython}
	// An extracted batches folder itself.
	for _, f := range formats {
		if fileExists(filepath.Join(path, set.batchFiles(f, Test)[0])) {
			return openCIFARDir(set, path, f, split)
		}
	}
	for _, f := range formats {
		if dir := filepath.Join(path, set.dirs[f]); dirExists(dir) {
			return openCIFARDir(set, dir, f, split)
		}
	}
	for _, f := range formats {
		if a := filepath.Join(path, set.archives[f]); fileExists(a) {
			return openCIFARArchive(set, a, split)
		}
	}
	return nil, &missingError{fmt.Sprintf("%s: %s holds none of %s/, %s/, %s, %s (use --download, or extract the official archive there)",
		set.name, path, set.dirs[CIFARBinary], set.dirs[CIFARPython], set.archives[CIFARBinary], set.archives[CIFARPython])}
}

// missingError is an error about data that is not where it was looked for.
// It wraps fs.ErrNotExist, telling it apart from a file that is there but
// corrupt.
type missingError struct{ msg string }

func (e *missingError) Error() string { return e.msg }
func (e *missingError) Unwrap() error { return fs.ErrNotExist }

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func openCIFARDir(set *cifarSet, dir string, format CIFARFormat, split Split) (*CIFAR, error) {
	ds := &CIFAR{set: set, source: dir, format: format, batches: len(set.batchFiles(format, split))}
	metaPath := filepath.Join(dir, set.metas[format])
	meta, err := readFileAtMost(metaPath, set.metaLimit, nil)
	switch {
	case err == nil:
		if ds.classes, err = set.parseMeta(format, metaPath, meta); err != nil {
			return nil, err
		}
	case errors.Is(err, fs.ErrNotExist):
		ds.classes = slices.Clone(set.classes)
	default:
		return nil, err
	}
	for _, name := range set.batchFiles(format, split) {
		p := filepath.Join(dir, name)
		data, err := readFileAtMost(p, set.batchLimits[format], nil)
		if err != nil {
			return nil, fmt.Errorf("%s %s batch: %w", set.name, format, err)
		}
		if err := ds.addBatch(p, data); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// openCIFARArchive reads a split straight from an official .tar.gz.
func openCIFARArchive(set *cifarSet, archive string, split Split) (*CIFAR, error) {
	m, err := readCIFARArchive(set, archive, split)
	if err != nil {
		return nil, err
	}
	if !m.known {
		return nil, fmt.Errorf("%s archive %s: no %s/ or %s/ batch files inside", set.name, archive, set.dirs[CIFARBinary], set.dirs[CIFARPython])
	}
	return m.dataset(archive, split)
}

// cifarMembers are the members of a CIFAR archive that a split needs, in
// the first format (binary or python) found in it.
type cifarMembers struct {
	set     *cifarSet
	format  CIFARFormat
	known   bool              // a member of format was found
	meta    []byte            // the meta file, nil when absent
	batches map[string][]byte // batch files by base name
}

// readCIFARArchive reads the members of archive that split needs.
func readCIFARArchive(set *cifarSet, archive string, split Split) (*cifarMembers, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", set.name, err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s archive %s: not a gzip file: %w", set.name, archive, err)
	}
	tr := tar.NewReader(gz)
	m := &cifarMembers{set: set, batches: map[string][]byte{}}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return m, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s archive %s: %w", set.name, archive, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if format, base, ok := m.wants(hdr.Name, split); ok {
			if err := m.read(tr, archive, hdr, format, base); err != nil {
				return nil, err
			}
		}
	}
}

// wants reports whether the archive member name is the meta file or a
// batch file of split, in the format of the members read so far, and
// returns that format and the member's base name.
func (m *cifarMembers) wants(name string, split Split) (format CIFARFormat, base string, ok bool) {
	dir, base := path.Split(path.Clean(strings.TrimPrefix(name, "./")))
	switch strings.TrimSuffix(dir, "/") {
	case m.set.dirs[CIFARBinary]:
		format = CIFARBinary
	case m.set.dirs[CIFARPython]:
		format = CIFARPython
	default:
		return format, base, false
	}
	if m.known && format != m.format {
		return format, base, false
	}
	return format, base, base == m.set.metas[format] || slices.Contains(m.set.batchFiles(format, split), base)
}

// read reads the member hdr of archive from r, within its size limit, as
// the meta file or the batch file base of format.
func (m *cifarMembers) read(r io.Reader, archive string, hdr *tar.Header, format CIFARFormat, base string) error {
	m.format, m.known = format, true
	isMeta := base == m.set.metas[format]
	lim, entry := m.set.batchLimits[format], archive+":"+hdr.Name
	if isMeta {
		lim = m.set.metaLimit
	}
	if hdr.Size > lim.max {
		// The member's header tells before it is inflated.
		return fmt.Errorf("%s archive: %w", m.set.name, lim.tooLarge(entry, hdr.Size))
	}
	data, err := readAtMost(r, entry, lim, make([]byte, 0, max(hdr.Size, 0)+1))
	if err != nil {
		return fmt.Errorf("%s archive %s: entry %s: %w", m.set.name, archive, hdr.Name, err)
	}
	if isMeta {
		m.meta = data
	} else {
		m.batches[base] = data
	}
	return nil
}

// dataset assembles split from the members read from archive: the class
// names of the meta file (the set's default names without one), then the
// batches in order.
func (m *cifarMembers) dataset(archive string, split Split) (*CIFAR, error) {
	set, format := m.set, m.format
	ds := &CIFAR{set: set, source: archive, format: format, batches: len(set.batchFiles(format, split))}
	if m.meta != nil {
		var err error
		ds.classes, err = set.parseMeta(format, archive+":"+set.dirs[format]+"/"+set.metas[format], m.meta)
		if err != nil {
			return nil, err
		}
	} else {
		ds.classes = slices.Clone(set.classes)
	}
	for _, name := range set.batchFiles(format, split) {
		full := archive + ":" + set.dirs[format] + "/" + name
		data, ok := m.batches[name]
		if !ok {
			return nil, fmt.Errorf("%s archive %s: missing %s/%s", set.name, archive, set.dirs[format], name)
		}
		if err := ds.addBatch(full, data); err != nil {
			return nil, err
		}
		delete(m.batches, name)
	}
	return ds, nil
}

// parseMeta reads the class names of a meta file: one a line in the binary
// distribution, a pickled list in the python one.
func (s *cifarSet) parseMeta(format CIFARFormat, name string, data []byte) ([]string, error) {
	var classes []string
	if format == CIFARPython {
		var err error
		if classes, err = s.parsePickleMeta(name, data); err != nil {
			return nil, err
		}
	} else {
		for _, line := range strings.Split(string(data), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				classes = append(classes, line)
			}
		}
	}
	if len(classes) != len(s.classes) {
		return nil, fmt.Errorf("%s meta %s: %d class names, want %d", s.name, name, len(classes), len(s.classes))
	}
	return classes, nil
}

// addBatch parses one batch file and appends its samples.
func (ds *CIFAR) addBatch(name string, data []byte) error {
	var pix, labels []byte
	var err error
	if ds.format == CIFARPython {
		pix, labels, err = ds.set.parsePickleBatch(name, data)
	} else {
		pix, labels, err = ds.set.parseBinary(name, data)
	}
	if err != nil {
		return err
	}
	ds.files = append(ds.files, cifarSpan{name: name, start: len(ds.labels)})
	if ds.pix == nil {
		ds.pix = make([]byte, 0, len(pix)*max(ds.batches, 1))
	}
	ds.pix = append(ds.pix, pix...)
	ds.labels = append(ds.labels, labels...)
	return nil
}

// ParseCIFARBinary splits a CIFAR-10 binary batch (records of 1 label byte
// and 3072 channel-major pixel bytes) into its pixels and labels. name is
// used in errors only. A size that is not a whole number of records, an empty
// file and a label outside 0-9 are errors naming the file and record.
func ParseCIFARBinary(name string, data []byte) (pix, labels []byte, err error) {
	return cifar10.parseBinary(name, data)
}

// ParseCIFAR100Binary splits a CIFAR-100 binary file (records of a coarse
// and a fine label byte and 3072 channel-major pixel bytes) into its pixels
// and fine labels, with ParseCIFARBinary's errors (a fine label outside
// 0-99).
func ParseCIFAR100Binary(name string, data []byte) (pix, labels []byte, err error) {
	return cifar100.parseBinary(name, data)
}

// parseBinary splits a binary batch of the set into its pixels and labels.
func (s *cifarSet) parseBinary(name string, data []byte) (pix, labels []byte, err error) {
	size := s.recordSize()
	if len(data) == 0 {
		return nil, nil, fmt.Errorf("%s binary batch %s: empty file, want records of %d bytes", s.name, name, size)
	}
	if len(data)%size != 0 {
		return nil, nil, fmt.Errorf("%s binary batch %s: %d bytes is not a whole number of %d-byte records (record %d is cut after %d bytes; truncated or not a %s file)",
			s.name, name, len(data), size, len(data)/size, len(data)%size, s.name)
	}
	n := len(data) / size
	pix = make([]byte, n*cifarPixels)
	labels = make([]byte, n)
	for r := 0; r < n; r++ {
		rec := data[r*size : (r+1)*size]
		if l := int(rec[s.labelAt]); l >= len(s.classes) {
			return nil, nil, fmt.Errorf("%s binary batch %s: record %d (byte offset %d): label %d out of range [0, %d)",
				s.name, name, r, r*size, l, len(s.classes))
		}
		labels[r] = rec[s.labelAt]
		copy(pix[r*cifarPixels:], rec[s.labelBytes:])
	}
	return pix, labels, nil
}

// Len returns the number of images.
func (ds *CIFAR) Len() int { return len(ds.labels) }

// Classes returns the class names from the batches' meta file.
func (ds *CIFAR) Classes() []string { return ds.classes }

// Format reports which distribution the data came from.
func (ds *CIFAR) Format() CIFARFormat { return ds.format }

// Label returns the label of image i.
func (ds *CIFAR) Label(i int) int { return int(ds.labels[i]) }

// Load copies image i into dst as 32x32 RGB.
func (ds *CIFAR) Load(i int, dst *Image) error {
	if err := checkIndex(ds.set.name+" "+ds.source, i, ds.Len()); err != nil {
		return err
	}
	dst.setFromCHW(ds.pix[i*cifarPixels:(i+1)*cifarPixels], CIFARSide, CIFARSide, 3)
	return nil
}

// CHW returns image i in the official channel-major layout (a view into
// the data set's memory: do not modify).
func (ds *CIFAR) CHW(i int) []byte { return ds.pix[i*cifarPixels : (i+1)*cifarPixels] }

// Source returns the file a sample came from and its record number there.
func (ds *CIFAR) Source(i int) (file string, record int) {
	for k := len(ds.files) - 1; k >= 0; k-- {
		if i >= ds.files[k].start {
			return ds.files[k].name, i - ds.files[k].start
		}
	}
	return ds.source, i
}
