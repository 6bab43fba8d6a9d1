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

// CIFAR-10 geometry and file names.
const (
	CIFARSide       = 32
	cifarPixels     = 3 * CIFARSide * CIFARSide // 3072 bytes, channel-major
	CIFARRecordSize = 1 + cifarPixels           // label byte + pixels
	cifarClasses    = 10

	cifarBinDir    = "cifar-10-batches-bin"
	cifarPyDir     = "cifar-10-batches-py"
	cifarBinTarGz  = "cifar-10-binary.tar.gz"
	cifarPyTarGz   = "cifar-10-python.tar.gz"
	cifarBinMeta   = "batches.meta.txt"
	cifarPyMeta    = "batches.meta"
	cifarTrainBase = "data_batch_"
	cifarTestBase  = "test_batch"
	cifarNumTrain  = 5
)

// Size limits of the CIFAR-10 files, checked before a file or archive
// member is read (errors wrap ErrTooLarge).
const (
	// cifarBatchRecords is the number of images of each official batch
	// file; a batch may hold fewer, never more.
	cifarBatchRecords = 10000
	// cifarPickleOverhead is what a python batch may hold besides its
	// pixels: 10000 labels, 10000 file names (about 40 bytes each in the
	// official files), the batch label and the pickle framing.
	cifarPickleOverhead = 4 << 20
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
)

// CIFAR10Classes are the official class names in label order.
var CIFAR10Classes = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// CIFAR-10 normalization constants (MODEL.md section 8).
var (
	CIFAR10Mean = [3]float32{0.4914, 0.4822, 0.4465}
	CIFAR10Std  = [3]float32{0.2470, 0.2435, 0.2616}
)

// CIFARFormat is one of the two official CIFAR-10 distributions.
type CIFARFormat int

// The CIFAR-10 distributions.
const (
	CIFARBinary CIFARFormat = iota // cifar-10-batches-bin, cifar-10-binary.tar.gz
	CIFARPython                    // cifar-10-batches-py, cifar-10-python.tar.gz
)

// String returns "binary" or "python".
func (f CIFARFormat) String() string {
	if f == CIFARPython {
		return "python"
	}
	return "binary"
}

func (f CIFARFormat) dir() string {
	if f == CIFARPython {
		return cifarPyDir
	}
	return cifarBinDir
}

func (f CIFARFormat) archive() string {
	if f == CIFARPython {
		return cifarPyTarGz
	}
	return cifarBinTarGz
}

// batchFiles returns the batch file names of a split in read order.
func (f CIFARFormat) batchFiles(split Split) []string {
	ext := ""
	if f == CIFARBinary {
		ext = ".bin"
	}
	if split == Test {
		return []string{cifarTestBase + ext}
	}
	names := make([]string, cifarNumTrain)
	for i := range names {
		names[i] = fmt.Sprintf("%s%d%s", cifarTrainBase, i+1, ext)
	}
	return names
}

// batchLimit returns the size limit of the format's batch files.
func (f CIFARFormat) batchLimit() sizeLimit {
	if f == CIFARPython {
		return cifarPythonLimit
	}
	return cifarBinaryLimit
}

func (f CIFARFormat) metaFile() string {
	if f == CIFARPython {
		return cifarPyMeta
	}
	return cifarBinMeta
}

// CIFAR10 is one split of CIFAR-10 held in memory (about 150 MB for train)
// in the official channel-major layout.
type CIFAR10 struct {
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
func OpenCIFAR10(path string, split Split) (*CIFAR10, error) {
	if split != Train && split != Test {
		return nil, fmt.Errorf("CIFAR-10 at %s: no %s split (want train or test)", path, split)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("CIFAR-10: %w", err)
	}
	if !fi.IsDir() {
		return openCIFARArchive(path, split)
	}
	// An extracted batches folder itself.
	for _, f := range []CIFARFormat{CIFARBinary, CIFARPython} {
		if fileExists(filepath.Join(path, f.batchFiles(Test)[0])) {
			return openCIFARDir(path, f, split)
		}
	}
	for _, f := range []CIFARFormat{CIFARBinary, CIFARPython} {
		if dir := filepath.Join(path, f.dir()); dirExists(dir) {
			return openCIFARDir(dir, f, split)
		}
	}
	for _, f := range []CIFARFormat{CIFARBinary, CIFARPython} {
		if a := filepath.Join(path, f.archive()); fileExists(a) {
			return openCIFARArchive(a, split)
		}
	}
	return nil, &missingError{fmt.Sprintf("CIFAR-10: %s holds none of %s/, %s/, %s, %s (use --download, or extract the official archive there)",
		path, cifarBinDir, cifarPyDir, cifarBinTarGz, cifarPyTarGz)}
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

func openCIFARDir(dir string, format CIFARFormat, split Split) (*CIFAR10, error) {
	ds := &CIFAR10{source: dir, format: format, batches: len(format.batchFiles(split))}
	metaPath := filepath.Join(dir, format.metaFile())
	meta, err := readFileAtMost(metaPath, cifarMetaLimit, nil)
	switch {
	case err == nil:
		if ds.classes, err = parseCIFARMeta(format, metaPath, meta); err != nil {
			return nil, err
		}
	case errors.Is(err, fs.ErrNotExist):
		ds.classes = append([]string(nil), CIFAR10Classes...)
	default:
		return nil, err
	}
	for _, name := range format.batchFiles(split) {
		p := filepath.Join(dir, name)
		data, err := readFileAtMost(p, format.batchLimit(), nil)
		if err != nil {
			return nil, fmt.Errorf("CIFAR-10 %s batch: %w", format, err)
		}
		if err := ds.addBatch(p, data); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// openCIFARArchive reads a split straight from an official .tar.gz.
func openCIFARArchive(archive string, split Split) (*CIFAR10, error) {
	m, err := readCIFARArchive(archive, split)
	if err != nil {
		return nil, err
	}
	if !m.known {
		return nil, fmt.Errorf("CIFAR-10 archive %s: no %s/ or %s/ batch files inside", archive, cifarBinDir, cifarPyDir)
	}
	return m.dataset(archive, split)
}

// cifarMembers are the members of a CIFAR-10 archive that a split needs,
// in the first format (binary or python) found in it.
type cifarMembers struct {
	format  CIFARFormat
	known   bool              // a member of format was found
	meta    []byte            // the meta file, nil when absent
	batches map[string][]byte // batch files by base name
}

// readCIFARArchive reads the members of archive that split needs.
func readCIFARArchive(archive string, split Split) (*cifarMembers, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, fmt.Errorf("CIFAR-10: %w", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("CIFAR-10 archive %s: not a gzip file: %w", archive, err)
	}
	tr := tar.NewReader(gz)
	m := &cifarMembers{batches: map[string][]byte{}}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return m, nil
		}
		if err != nil {
			return nil, fmt.Errorf("CIFAR-10 archive %s: %w", archive, err)
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
	case cifarBinDir:
		format = CIFARBinary
	case cifarPyDir:
		format = CIFARPython
	default:
		return format, base, false
	}
	if m.known && format != m.format {
		return format, base, false
	}
	return format, base, base == format.metaFile() || slices.Contains(format.batchFiles(split), base)
}

// read reads the member hdr of archive from r, within its size limit, as
// the meta file or the batch file base of format.
func (m *cifarMembers) read(r io.Reader, archive string, hdr *tar.Header, format CIFARFormat, base string) error {
	m.format, m.known = format, true
	isMeta := base == format.metaFile()
	lim, entry := format.batchLimit(), archive+":"+hdr.Name
	if isMeta {
		lim = cifarMetaLimit
	}
	if hdr.Size > lim.max {
		// The member's header tells before it is inflated.
		return fmt.Errorf("CIFAR-10 archive: %w", lim.tooLarge(entry, hdr.Size))
	}
	data, err := readAtMost(r, entry, lim, make([]byte, 0, max(hdr.Size, 0)+1))
	if err != nil {
		return fmt.Errorf("CIFAR-10 archive %s: entry %s: %w", archive, hdr.Name, err)
	}
	if isMeta {
		m.meta = data
	} else {
		m.batches[base] = data
	}
	return nil
}

// dataset assembles split from the members read from archive: the class
// names of the meta file (CIFAR10Classes without one), then the batches
// in order.
func (m *cifarMembers) dataset(archive string, split Split) (*CIFAR10, error) {
	format := m.format
	ds := &CIFAR10{source: archive, format: format, batches: len(format.batchFiles(split))}
	if m.meta != nil {
		var err error
		ds.classes, err = parseCIFARMeta(format, archive+":"+format.dir()+"/"+format.metaFile(), m.meta)
		if err != nil {
			return nil, err
		}
	} else {
		ds.classes = append([]string(nil), CIFAR10Classes...)
	}
	for _, name := range format.batchFiles(split) {
		full := archive + ":" + format.dir() + "/" + name
		data, ok := m.batches[name]
		if !ok {
			return nil, fmt.Errorf("CIFAR-10 archive %s: missing %s/%s", archive, format.dir(), name)
		}
		if err := ds.addBatch(full, data); err != nil {
			return nil, err
		}
		delete(m.batches, name)
	}
	return ds, nil
}

func parseCIFARMeta(format CIFARFormat, name string, data []byte) ([]string, error) {
	var classes []string
	if format == CIFARPython {
		var err error
		if classes, err = parseCIFARPickleMeta(name, data); err != nil {
			return nil, err
		}
	} else {
		for _, line := range strings.Split(string(data), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				classes = append(classes, line)
			}
		}
	}
	if len(classes) != cifarClasses {
		return nil, fmt.Errorf("CIFAR-10 meta %s: %d class names, want %d", name, len(classes), cifarClasses)
	}
	return classes, nil
}

// addBatch parses one batch file and appends its samples.
func (ds *CIFAR10) addBatch(name string, data []byte) error {
	var pix, labels []byte
	var err error
	if ds.format == CIFARPython {
		pix, labels, err = ParseCIFARPickleBatch(name, data)
	} else {
		pix, labels, err = ParseCIFARBinary(name, data)
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
	if len(data) == 0 {
		return nil, nil, fmt.Errorf("CIFAR-10 binary batch %s: empty file, want records of %d bytes", name, CIFARRecordSize)
	}
	if len(data)%CIFARRecordSize != 0 {
		return nil, nil, fmt.Errorf("CIFAR-10 binary batch %s: %d bytes is not a whole number of %d-byte records (record %d is cut after %d bytes; truncated or not a CIFAR-10 batch)",
			name, len(data), CIFARRecordSize, len(data)/CIFARRecordSize, len(data)%CIFARRecordSize)
	}
	n := len(data) / CIFARRecordSize
	pix = make([]byte, n*cifarPixels)
	labels = make([]byte, n)
	for r := 0; r < n; r++ {
		rec := data[r*CIFARRecordSize : (r+1)*CIFARRecordSize]
		if rec[0] >= cifarClasses {
			return nil, nil, fmt.Errorf("CIFAR-10 binary batch %s: record %d (byte offset %d): label %d out of range [0, %d)",
				name, r, r*CIFARRecordSize, rec[0], cifarClasses)
		}
		labels[r] = rec[0]
		copy(pix[r*cifarPixels:], rec[1:])
	}
	return pix, labels, nil
}

// Len returns the number of images.
func (ds *CIFAR10) Len() int { return len(ds.labels) }

// Classes returns the class names from the batches' meta file.
func (ds *CIFAR10) Classes() []string { return ds.classes }

// Format reports which distribution the data came from.
func (ds *CIFAR10) Format() CIFARFormat { return ds.format }

// Label returns the label of image i.
func (ds *CIFAR10) Label(i int) int { return int(ds.labels[i]) }

// Load copies image i into dst as 32x32 RGB.
func (ds *CIFAR10) Load(i int, dst *Image) error {
	if err := checkIndex("CIFAR-10 "+ds.source, i, ds.Len()); err != nil {
		return err
	}
	dst.setFromCHW(ds.pix[i*cifarPixels:(i+1)*cifarPixels], CIFARSide, CIFARSide, 3)
	return nil
}

// CHW returns image i in the official channel-major layout (a view into
// the data set's memory: do not modify).
func (ds *CIFAR10) CHW(i int) []byte { return ds.pix[i*cifarPixels : (i+1)*cifarPixels] }

// Source returns the file a sample came from and its record number there.
func (ds *CIFAR10) Source(i int) (file string, record int) {
	for k := len(ds.files) - 1; k >= 0; k-- {
		if i >= ds.files[k].start {
			return ds.files[k].name, i - ds.files[k].start
		}
	}
	return ds.source, i
}
