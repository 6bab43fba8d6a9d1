package datasets

import (
	"fmt"
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
	data, err := readFileAtMost(path, imageFileLimit, (*file)[:0])
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

// listImages returns the JPEG and PNG files in dir and in every folder
// below it, as paths relative to dir, in the order of torchvision's
// ImageFolder (make_dataset walks a class folder with os.walk(followlinks=
// True), sorted): folders sorted by path, each folder's images sorted by
// name. Symbolic links to folders are followed; a link that leads back to a
// folder it lies in is an error, not an endless walk. Hidden files and
// folders (names starting with ".") are skipped, as for class folders.
func listImages(dir string) ([]string, error) {
	type folder struct {
		rel   string // "" for dir itself
		names []string
	}
	var folders []folder
	var walk func(rel string, ancestors []os.FileInfo) error
	walk = func(rel string, ancestors []os.FileInfo) error {
		full := filepath.Join(dir, rel)
		fi, err := os.Stat(full)
		if err != nil {
			return err
		}
		for _, a := range ancestors {
			if os.SameFile(a, fi) {
				return fmt.Errorf("%s leads back to a folder it lies in (a loop of symbolic links): remove the link", full)
			}
		}
		ancestors = append(ancestors, fi)
		entries, err := os.ReadDir(full)
		if err != nil {
			return err
		}
		var names []string
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, ".") {
				continue
			}
			link := e.Type()&os.ModeSymlink != 0
			if e.IsDir() || link && dirExists(filepath.Join(full, name)) {
				if err := walk(filepath.Join(rel, name), ancestors); err != nil {
					return err
				}
				continue
			}
			if isImageName(name) && (e.Type().IsRegular() || link) {
				names = append(names, filepath.Join(rel, name))
			}
		}
		sort.Strings(names)
		folders = append(folders, folder{rel: rel, names: names})
		return nil
	}
	if err := walk("", nil); err != nil {
		return nil, err
	}
	sort.Slice(folders, func(i, j int) bool { return folders[i].rel < folders[j].rel })
	var files []string
	for _, f := range folders {
		files = append(files, f.names...)
	}
	return files, nil
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

// classTree lists the images of dir/<class>/ and its sub-folders (see
// listImages) for the given classes; a missing or empty
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
			return nil, nil, fmt.Errorf("class folder %s holds no JPEG or PNG images (nor do its sub-folders)", cdir)
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
// As in torchvision, a class folder's images are collected from its
// sub-folders too (following symbolic links), folders sorted by path and
// images by name; hidden files and folders are skipped.
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
