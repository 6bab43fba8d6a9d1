package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gsrmt/gsrmt/datasets"
)

// expandInputs turns predict's inputs into the image files to classify,
// sorted by path (byte order) with duplicates removed (the same cleaned
// path named twice):
//   - a file is used as named, whatever its extension (the decoder
//     recognizes JPEG and PNG by content);
//   - a folder gives its image files and those of every folder below it
//     (datasets.ListImageFiles: .jpg, .jpeg, .png, as ImageFolder reads);
//   - anything else is a glob pattern (filepath.Glob, so a quoted pattern
//     works as well as one the shell expanded): its matching folders are
//     walked as above and its matching files kept when they are image files
//     (datasets.IsImageFile).
//
// A pattern that matches nothing, or no image, is an error naming it, as
// are a missing file and a folder without images. A malformed pattern is a
// usage error.
func expandInputs(inputs []string) ([]string, error) {
	seen := map[string]bool{}
	var files []string
	for _, in := range inputs {
		found, err := expandInput(in)
		if err != nil {
			return nil, err
		}
		for _, f := range found {
			if key := filepath.Clean(f); !seen[key] {
				seen[key] = true
				files = append(files, f)
			}
		}
	}
	sort.Strings(files)
	return files, nil
}

// expandInput is expandInputs for one input.
func expandInput(in string) ([]string, error) {
	if in == "" {
		return nil, usagef("predict: an empty input: give an image file, a folder or a glob")
	}
	fi, statErr := os.Stat(in)
	if statErr == nil {
		if fi.IsDir() {
			return folderImages(in)
		}
		return []string{in}, nil
	}
	if !hasGlobMeta(in) {
		return nil, fmt.Errorf("predict: input %s: %w", in, unwrapPathError(statErr))
	}
	matches, err := filepath.Glob(in)
	if err != nil {
		return nil, usagef("predict: input %q: malformed glob pattern (%v)", in, err)
	}
	if len(matches) == 0 {
		return nil, fmt.Errorf("predict: input %q: the pattern matches no file or folder", in)
	}
	var files []string
	for _, m := range matches {
		fi, err := os.Stat(m)
		switch {
		case err != nil:
			return nil, fmt.Errorf("predict: input %q: %s: %w", in, m, unwrapPathError(err))
		case fi.IsDir():
			found, err := folderImages(m)
			if err != nil {
				return nil, err
			}
			files = append(files, found...)
		case datasets.IsImageFile(m):
			files = append(files, m)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("predict: input %q: the pattern matches %d files or folders but no JPEG or PNG image (.jpg, .jpeg, .png)", in, len(matches))
	}
	return files, nil
}

// folderImages lists the image files of a folder and its sub-folders; a
// folder without any is an error naming it.
func folderImages(dir string) ([]string, error) {
	files, err := datasets.ListImageFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("predict: folder %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("predict: folder %s holds no JPEG or PNG images (.jpg, .jpeg, .png), nor do its sub-folders", dir)
	}
	return files, nil
}

// hasGlobMeta reports whether s holds a character that filepath.Match
// treats specially.
func hasGlobMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// unwrapPathError drops the operation and path of an *os.PathError (the
// caller names the path), keeping "no such file or directory" and the like.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
