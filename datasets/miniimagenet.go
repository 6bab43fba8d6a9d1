package datasets

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ImageNet normalization constants (MODEL.md section 8), used for
// Mini-ImageNet and other RGB data sets.
var (
	ImageNetMean = [3]float32{0.485, 0.456, 0.406}
	ImageNetStd  = [3]float32{0.229, 0.224, 0.225}
)

// MiniImageNetLayout is one of the ways Mini-ImageNet circulates (DATA.md).
type MiniImageNetLayout int

// The Mini-ImageNet layouts.
const (
	LayoutAuto         MiniImageNetLayout = iota // detect from the folder
	LayoutSplitFolders                           // train/<class>/*, val/<class>/* (optional), test/<class>/*
	LayoutCSV                                    // images/*.jpg + train.csv, val.csv, test.csv (Ravi & Larochelle)
	LayoutClassFolders                           // <class>/* only
	LayoutPickle                                 // mini-imagenet-cache-{train,val,test}.pkl
)

// String returns the layout's name.
func (l MiniImageNetLayout) String() string {
	switch l {
	case LayoutAuto:
		return "auto"
	case LayoutSplitFolders:
		return "split-folders"
	case LayoutCSV:
		return "csv"
	case LayoutClassFolders:
		return "class-folders"
	case LayoutPickle:
		return "pickle"
	}
	return fmt.Sprintf("MiniImageNetLayout(%d)", int(l))
}

// Pooled reports whether the layout's images are pooled and split per class
// by PooledSplit (every layout but split folders).
func (l MiniImageNetLayout) Pooled() bool {
	return l == LayoutCSV || l == LayoutClassFolders || l == LayoutPickle
}

var miniCSVs = []string{"train.csv", "val.csv", "test.csv"}

// miniCSVLimit bounds a CSV file: a header and at most one line for each of
// Mini-ImageNet's 60,000 images, of up to 1 KiB (the official lines, a file
// name and a class, take 31 bytes).
var miniCSVLimit = sizeLimit{max: (miniImageNetImages + 1) << 10, what: "a Mini-ImageNet CSV file (a line for each of 60,000 images)"}

func miniPickleName(part string) string { return "mini-imagenet-cache-" + part + ".pkl" }

// DetectMiniImageNetLayout tells which layout dir holds: split folders when
// dir/train and dir/test are folders, the CSV layout when dir/images is a
// folder next to train.csv, the pickle caches when
// mini-imagenet-cache-train.pkl exists, and class folders when dir holds
// only folders.
func DetectMiniImageNetLayout(dir string) (MiniImageNetLayout, error) {
	if !dirExists(dir) {
		return LayoutAuto, fmt.Errorf("Mini-ImageNet: %s is not a folder", dir)
	}
	switch {
	case dirExists(filepath.Join(dir, "train")) && dirExists(filepath.Join(dir, "test")):
		return LayoutSplitFolders, nil
	case dirExists(filepath.Join(dir, "images")) && fileExists(filepath.Join(dir, "train.csv")):
		return LayoutCSV, nil
	case fileExists(filepath.Join(dir, miniPickleName("train"))):
		return LayoutPickle, nil
	}
	classes, err := listClassDirs(dir)
	if err != nil {
		return LayoutAuto, fmt.Errorf("Mini-ImageNet: %w", err)
	}
	if len(classes) > 0 {
		return LayoutClassFolders, nil
	}
	return LayoutAuto, fmt.Errorf("Mini-ImageNet: %s matches no known layout (train/ and test/ folders; images/ with train.csv; %s; or one folder per class)",
		dir, miniPickleName("train"))
}

// MiniImageNetOptions configures OpenMiniImageNet.
type MiniImageNetOptions struct {
	// Layout forces a layout; LayoutAuto detects it.
	Layout MiniImageNetLayout
	// Split is the pooled split rule of the pooled layouts.
	Split PooledSplitConfig
}

// OpenMiniImageNet opens a split of Mini-ImageNet in any of DATA.md's four
// layouts. Class indices are the class names sorted lexicographically. The
// pooled layouts (CSV, class folders, pickle caches) pool every image of a
// class and split it by PooledSplit with opts.Split; split folders are used
// as they are. Images are decoded on demand; the pickle caches are read
// into memory at their stored 84x84 size.
func OpenMiniImageNet(dir string, split Split, opts MiniImageNetOptions) (Dataset, error) {
	layout := opts.Layout
	if layout == LayoutAuto {
		var err error
		if layout, err = DetectMiniImageNetLayout(dir); err != nil {
			return nil, err
		}
	}
	if layout.Pooled() {
		if err := opts.Split.Validate(); err != nil {
			return nil, fmt.Errorf("Mini-ImageNet %s: %w", dir, err)
		}
	}
	switch layout {
	case LayoutSplitFolders:
		return OpenImageFolder(dir, split)
	case LayoutCSV:
		return openMiniCSV(dir, split, opts.Split)
	case LayoutClassFolders:
		return openMiniClassFolders(dir, split, opts.Split)
	case LayoutPickle:
		return openMiniPickle(dir, split, opts.Split)
	}
	return nil, fmt.Errorf("Mini-ImageNet %s: unknown layout %v", dir, layout)
}

// pooledFiles applies the pooled split to per-class sorted file lists.
func pooledFiles(name string, byClass map[string][]string, split Split, cfg PooledSplitConfig) (*FileDataset, error) {
	classes := make([]string, 0, len(byClass))
	for c := range byClass {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	var files []string
	var labels []int
	for label, c := range classes {
		paths := byClass[c]
		sort.Strings(paths)
		for _, k := range pooledPick(len(paths), c, split, cfg) {
			files = append(files, paths[k])
			labels = append(labels, label)
		}
	}
	return NewFileDataset(name, classes, files, labels)
}

// openMiniClassFolders handles layout 3: dir/<class>/*.
func openMiniClassFolders(dir string, split Split, cfg PooledSplitConfig) (*FileDataset, error) {
	classes, err := listClassDirs(dir)
	if err != nil {
		return nil, fmt.Errorf("Mini-ImageNet: %w", err)
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("Mini-ImageNet %s: no class folders", dir)
	}
	byClass := make(map[string][]string, len(classes))
	for _, c := range classes {
		cdir := filepath.Join(dir, c)
		names, err := listImages(cdir)
		if err != nil {
			return nil, fmt.Errorf("Mini-ImageNet class folder: %w", err)
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("Mini-ImageNet class folder %s holds no JPEG or PNG images", cdir)
		}
		paths := make([]string, len(names))
		for i, n := range names {
			paths[i] = filepath.Join(cdir, n)
		}
		byClass[c] = paths
	}
	return pooledFiles(fmt.Sprintf("Mini-ImageNet %s (class folders, %s)", dir, split), byClass, split, cfg)
}

// openMiniCSV handles layout 2: dir/images/* listed by train.csv, val.csv
// and test.csv (header filename,label), all rows pooled.
func openMiniCSV(dir string, split Split, cfg PooledSplitConfig) (*FileDataset, error) {
	imagesDir := filepath.Join(dir, "images")
	entries, err := os.ReadDir(imagesDir)
	if err != nil {
		return nil, fmt.Errorf("Mini-ImageNet: %w", err)
	}
	present := make(map[string]bool, len(entries))
	for _, e := range entries {
		present[e.Name()] = true
	}
	byClass := map[string][]string{}
	seen := map[string]string{} // file name -> where it was listed
	found := 0
	for _, csvName := range miniCSVs {
		p := filepath.Join(dir, csvName)
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) && csvName != "train.csv" {
			continue // a subset of the CSVs pools only the rows it has
		}
		if err != nil {
			return nil, fmt.Errorf("Mini-ImageNet: %w", err)
		}
		found++
		var rows []miniRow
		if _, err = checkFileSize(f, p, miniCSVLimit); err == nil {
			rows, err = readMiniCSV(p, newLimitedReader(f, p, miniCSVLimit))
		} else {
			err = fmt.Errorf("Mini-ImageNet CSV: %w", err)
		}
		f.Close()
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if !present[r.file] {
				return nil, fmt.Errorf("Mini-ImageNet %s line %d: file %s not found in %s", p, r.line, r.file, imagesDir)
			}
			where := fmt.Sprintf("%s line %d", p, r.line)
			if prev, dup := seen[r.file]; dup {
				return nil, fmt.Errorf("Mini-ImageNet %s: file %s is listed twice (first at %s)", where, r.file, prev)
			}
			seen[r.file] = where
			byClass[r.label] = append(byClass[r.label], filepath.Join(imagesDir, r.file))
		}
	}
	if len(byClass) == 0 {
		return nil, fmt.Errorf("Mini-ImageNet %s: the %d CSV files list no images", dir, found)
	}
	return pooledFiles(fmt.Sprintf("Mini-ImageNet %s (CSV, %s)", dir, split), byClass, split, cfg)
}

type miniRow struct {
	line        int
	file, label string
}

func readMiniCSV(name string, r io.Reader) ([]miniRow, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 2
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("Mini-ImageNet %s: empty file, want header filename,label", name)
	}
	if err != nil {
		return nil, fmt.Errorf("Mini-ImageNet %s: %w", name, err)
	}
	if strings.TrimSpace(header[0]) != "filename" || strings.TrimSpace(header[1]) != "label" {
		return nil, fmt.Errorf("Mini-ImageNet %s: header %q, want filename,label", name, strings.Join(header, ","))
	}
	var rows []miniRow
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("Mini-ImageNet %s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		file, label := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		if file == "" || label == "" || file != filepath.Base(file) || file == ".." {
			return nil, fmt.Errorf("Mini-ImageNet %s line %d: row %q, want a plain file name and a class label", name, line, strings.Join(rec, ","))
		}
		rows = append(rows, miniRow{line: line, file: file, label: label})
	}
}
