package datasets

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// FileDataset is a list of image files (JPEG or PNG) with labels, decoded
// on demand. ImageFolder trees and the file-based Mini-ImageNet layouts are
// FileDatasets.
type FileDataset struct {
	name    string
	classes []string
	files   []string
	labels  []int32
}

// NewFileDataset returns a data set over files with the given labels (which
// must be in [0, len(classes))). name describes the data set in errors.
func NewFileDataset(name string, classes, files []string, labels []int) (*FileDataset, error) {
	if len(files) != len(labels) {
		return nil, fmt.Errorf("%s: %d files but %d labels", name, len(files), len(labels))
	}
	ds := &FileDataset{name: name, classes: classes, files: files, labels: make([]int32, len(labels))}
	for i, l := range labels {
		if l < 0 || l >= len(classes) {
			return nil, fmt.Errorf("%s: %s: label %d out of range [0, %d)", name, files[i], l, len(classes))
		}
		ds.labels[i] = int32(l)
	}
	return ds, nil
}

// Len returns the number of images.
func (ds *FileDataset) Len() int { return len(ds.files) }

// Classes returns the class names.
func (ds *FileDataset) Classes() []string { return ds.classes }

// Label returns the label of image i.
func (ds *FileDataset) Label(i int) int { return int(ds.labels[i]) }

// File returns the path of image i.
func (ds *FileDataset) File(i int) string { return ds.files[i] }

// Load reads and decodes image i as RGB.
func (ds *FileDataset) Load(i int, dst *Image) error {
	if err := checkIndex(ds.name, i, ds.Len()); err != nil {
		return err
	}
	if err := DecodeImageFile(ds.files[i], dst); err != nil {
		return fmt.Errorf("%s sample %d: %w", ds.name, i, err)
	}
	return nil
}

// loadRegion is Load for a caller that needs only part of the image (see
// decodeImageRegion), reading the file into *file, a buffer reused from
// call to call. Errors are those of Load.
func (ds *FileDataset) loadRegion(i int, dst *Image, file *[]byte, plan func(w, h int) (x, y, cw, ch int)) (offX, offY int, err error) {
	if err := checkIndex(ds.name, i, ds.Len()); err != nil {
		return 0, 0, err
	}
	path := ds.files[i]
	data, err := readFileInto(path, (*file)[:0])
	*file = data[:0]
	if err != nil {
		return 0, 0, fmt.Errorf("%s sample %d: %w", ds.name, i, err)
	}
	offX, offY, err = decodeImageRegion(data, dst, plan)
	if err != nil {
		return 0, 0, fmt.Errorf("%s sample %d: decode %s: %w", ds.name, i, path, err)
	}
	return offX, offY, nil
}

// readFileInto reads the file at path into buf (from its start, growing it
// when needed) and returns the contents, with the errors of os.ReadFile.
func readFileInto(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf[:0], err
	}
	defer f.Close()
	buf = buf[:0]
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		if n := fi.Size() + 512; n < 1<<31 && int64(cap(buf)) < n {
			buf = make([]byte, 0, n)
		}
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// isImageName reports whether a file name has a JPEG or PNG extension.
func isImageName(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

// listImages returns the sorted names of the image files in dir.
func listImages(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if isImageName(e.Name()) && (e.Type().IsRegular() || e.Type()&os.ModeSymlink != 0) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// listClassDirs returns the sorted names of the visible subfolders of dir.
func listClassDirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if e.IsDir() || e.Type()&os.ModeSymlink != 0 && dirExists(filepath.Join(dir, e.Name())) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// classTree lists dir/<class>/* for the given classes; a missing or empty
// class folder is an error. With allowMissing, a class folder that does not
// exist is skipped instead.
func classTree(dir string, classes []string, allowMissing bool) (files []string, labels []int, err error) {
	for label, c := range classes {
		cdir := filepath.Join(dir, c)
		if allowMissing && !dirExists(cdir) {
			continue
		}
		names, err := listImages(cdir)
		if err != nil {
			return nil, nil, fmt.Errorf("class folder: %w", err)
		}
		if len(names) == 0 {
			return nil, nil, fmt.Errorf("class folder %s holds no JPEG or PNG images", cdir)
		}
		for _, n := range names {
			files = append(files, filepath.Join(cdir, n))
			labels = append(labels, label)
		}
	}
	return files, labels, nil
}

// OpenImageFolder opens a split of an ImageFolder tree: root/train/<class>/*,
// root/test/<class>/* and optionally root/val/<class>/*, JPEG or PNG files.
// Class indices are the train folder's class names sorted lexicographically
// (the split's own folders when there is no train folder); a class folder of
// val or test that train lacks, and an empty class folder, are errors.
func OpenImageFolder(root string, split Split) (*FileDataset, error) {
	splitDir := filepath.Join(root, split.String())
	if !dirExists(splitDir) {
		return nil, fmt.Errorf("ImageFolder %s: no %s/ folder (want %s/<class>/*.jpg)", root, split, split)
	}
	classDir := filepath.Join(root, Train.String())
	if !dirExists(classDir) {
		classDir = splitDir
	}
	classes, err := listClassDirs(classDir)
	if err != nil {
		return nil, fmt.Errorf("ImageFolder: %w", err)
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("ImageFolder %s: no class folders", classDir)
	}
	if classDir != splitDir {
		own, err := listClassDirs(splitDir)
		if err != nil {
			return nil, fmt.Errorf("ImageFolder: %w", err)
		}
		known := make(map[string]bool, len(classes))
		for _, c := range classes {
			known[c] = true
		}
		for _, c := range own {
			if !known[c] {
				return nil, fmt.Errorf("ImageFolder %s: class folder %s is not among the %d classes of %s",
					splitDir, c, len(classes), classDir)
			}
		}
	}
	files, labels, err := classTree(splitDir, classes, classDir != splitDir)
	if err != nil {
		return nil, fmt.Errorf("ImageFolder %s: %w", root, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("ImageFolder %s: no images", splitDir)
	}
	return NewFileDataset("ImageFolder "+splitDir, classes, files, labels)
}
