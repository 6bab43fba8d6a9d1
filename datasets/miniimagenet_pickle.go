package datasets

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/gsrmt/gsrmt/internal/pickle"
)

// PickleImages is a split of the Mini-ImageNet pickle caches held in memory
// at their stored size (84x84 RGB).
type PickleImages struct {
	name    string
	classes []string
	pix     []byte
	labels  []int32
	width   int
	height  int
	sources []string // "file row N" of each sample, for errors and checks
}

// Mini-ImageNet's size: 100 classes of 600 images of 84x84 RGB.
const (
	miniImageNetImages = 100 * 600
	miniImageNetSide   = 84
)

// miniCacheLimit bounds a pickle cache: at most all 60,000 images of
// Mini-ImageNet (1,270,080,000 pixel bytes), twice over (a Python 3
// protocol 2 pickle stores bytes as a latin-1 string, up to 2 bytes of
// UTF-8 each), plus 64 bytes an image for class_dict's row numbers and the
// pickle framing: 2,544,000,000 bytes. The official caches take 1.3 GB
// together.
var miniCacheLimit = sizeLimit{
	max:  miniImageNetImages * (2*miniImageNetSide*miniImageNetSide*3 + 64),
	what: "a Mini-ImageNet pickle cache (60,000 images of 84x84x3 bytes, pickled)",
}

// miniCache is one decoded mini-imagenet-cache-*.pkl.
type miniCache struct {
	path    string
	images  *pickle.NDArray
	byClass map[string][]int
}

// readMiniCache decodes one pickle cache: a dict with image_data (uint8
// N x H x W x 3) and class_dict (class name -> list of row indices). A file
// larger than miniCacheLimit is refused before it is read, a stream read no
// further (errors wrap ErrTooLarge).
func readMiniCache(path string) (*miniCache, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("Mini-ImageNet: %w", err)
	}
	defer f.Close()
	if _, err := checkFileSize(f, path, miniCacheLimit); err != nil {
		return nil, fmt.Errorf("Mini-ImageNet pickle: %w", err)
	}
	dec := pickle.NewDecoder(bufio.NewReaderSize(newLimitedReader(f, path, miniCacheLimit), 1<<20))
	dec.Globals = pickleGlobals
	v, err := dec.Decode()
	if err != nil {
		return nil, fmt.Errorf("Mini-ImageNet pickle %s: %w", path, err)
	}
	d, ok := v.(*pickle.Dict)
	if !ok {
		return nil, fmt.Errorf("Mini-ImageNet pickle %s: holds a %T, want a dict", path, v)
	}
	return parseMiniCache(path, d)
}

// ParseMiniImageNetPickle checks a decoded Mini-ImageNet cache and returns
// the image array's shape (N, H, W, 3) and the rows of each class. name is
// used in errors only.
func ParseMiniImageNetPickle(name string, data []byte) (shape []int, byClass map[string][]int, err error) {
	d, err := pickleDict("Mini-ImageNet pickle", name, data)
	if err != nil {
		return nil, nil, err
	}
	c, err := parseMiniCache(name, d)
	if err != nil {
		return nil, nil, err
	}
	return c.images.Shape, c.byClass, nil
}

func parseMiniCache(path string, d *pickle.Dict) (*miniCache, error) {
	bad := func(format string, args ...any) (*miniCache, error) {
		return nil, fmt.Errorf("Mini-ImageNet pickle %s: %s", path, fmt.Sprintf(format, args...))
	}
	iv, ok := dictGet(d, "image_data")
	if !ok {
		return bad("no image_data key")
	}
	arr, err := uint8Array(iv, 4)
	if err != nil {
		return bad("image_data is %v", err)
	}
	if arr.Shape[3] != 3 || arr.Shape[1] == 0 || arr.Shape[2] == 0 {
		return bad("image_data has shape %v, want (N, H, W, 3)", arr.Shape)
	}
	cv, ok := dictGet(d, "class_dict")
	if !ok {
		return bad("no class_dict key")
	}
	cd, ok := cv.(*pickle.Dict)
	if !ok {
		return bad("class_dict is a %T, want a dict", cv)
	}
	n := arr.Shape[0]
	byClass := make(map[string][]int, cd.Len())
	for _, e := range cd.Entries() {
		var name string
		switch k := e.Key.(type) {
		case string:
			name = k
		case []byte:
			name = string(k)
		default:
			return bad("class_dict key is a %T, want a class name", e.Key)
		}
		rows, err := toInts(e.Value)
		if err != nil {
			return bad("class_dict[%q] is %v", name, err)
		}
		if len(rows) == 0 {
			return bad("class_dict[%q] lists no rows", name)
		}
		list := make([]int, len(rows))
		for i, r := range rows {
			if r < 0 || r >= int64(n) {
				return bad("class_dict[%q] item %d: row %d out of range [0, %d)", name, i, r, n)
			}
			list[i] = int(r)
		}
		byClass[name] = list
	}
	if len(byClass) == 0 {
		return bad("class_dict is empty")
	}
	return &miniCache{path: path, images: arr, byClass: byClass}, nil
}

// openMiniPickle handles layout 4: mini-imagenet-cache-{train,val,test}.pkl
// pooled per class. A class's images are ordered by cache file (train, val,
// test) and row index before the pooled split. All caches are decoded (about
// 1.3 GB for the full set) and only the split's rows are kept.
func openMiniPickle(dir string, split Split, cfg PooledSplitConfig) (Dataset, error) {
	type ref struct{ file, row int }
	var caches []*miniCache
	byClass := map[string][]ref{}
	for _, part := range []string{"train", "val", "test"} {
		p := filepath.Join(dir, miniPickleName(part))
		if part != "train" && !fileExists(p) {
			continue
		}
		c, err := readMiniCache(p)
		if err != nil {
			return nil, err
		}
		if len(caches) > 0 {
			s0, s := caches[0].images.Shape, c.images.Shape
			if s0[1] != s[1] || s0[2] != s[2] {
				return nil, fmt.Errorf("Mini-ImageNet pickle %s: images are %dx%d, %s has %dx%d", p, s[2], s[1], caches[0].path, s0[2], s0[1])
			}
		}
		for name, rows := range c.byClass {
			for _, r := range rows {
				byClass[name] = append(byClass[name], ref{len(caches), r})
			}
		}
		caches = append(caches, c)
	}
	classes := make([]string, 0, len(byClass))
	for c := range byClass {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	h, w := caches[0].images.Shape[1], caches[0].images.Shape[2]
	size := h * w * 3
	ds := &PickleImages{name: fmt.Sprintf("Mini-ImageNet %s (pickle caches, %s)", dir, split), classes: classes, width: w, height: h}
	picked := make([][]ref, len(classes))
	total := 0
	for label, name := range classes {
		refs := byClass[name]
		sort.Slice(refs, func(i, j int) bool {
			if refs[i].file != refs[j].file {
				return refs[i].file < refs[j].file
			}
			return refs[i].row < refs[j].row
		})
		for k := 1; k < len(refs); k++ {
			if refs[k] == refs[k-1] {
				return nil, fmt.Errorf("Mini-ImageNet pickle %s: class_dict[%q] lists row %d twice", caches[refs[k].file].path, name, refs[k].row)
			}
		}
		for _, k := range pooledPick(len(refs), name, split, cfg) {
			picked[label] = append(picked[label], refs[k])
		}
		total += len(picked[label])
	}
	ds.pix = make([]byte, 0, total*size)
	for label, refs := range picked {
		for _, r := range refs {
			ds.pix = append(ds.pix, caches[r.file].images.Data[r.row*size:(r.row+1)*size]...)
			ds.labels = append(ds.labels, int32(label))
			ds.sources = append(ds.sources, fmt.Sprintf("%s row %d", caches[r.file].path, r.row))
		}
	}
	return ds, nil
}

// Len returns the number of images.
func (ds *PickleImages) Len() int { return len(ds.labels) }

// Classes returns the class names, sorted.
func (ds *PickleImages) Classes() []string { return ds.classes }

// Label returns the label of image i.
func (ds *PickleImages) Label(i int) int { return int(ds.labels[i]) }

// Source returns the cache file and row image i came from.
func (ds *PickleImages) Source(i int) string { return ds.sources[i] }

// Load copies image i into dst as RGB.
func (ds *PickleImages) Load(i int, dst *Image) error {
	if err := checkIndex(ds.name, i, ds.Len()); err != nil {
		return err
	}
	size := ds.width * ds.height * 3
	dst.Resize(ds.width, ds.height, 3)
	copy(dst.Pix, ds.pix[i*size:(i+1)*size])
	return nil
}
