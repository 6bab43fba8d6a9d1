package datasets

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ExtractTarGz extracts a .tar.gz archive into dest safely: entries are
// written into a temporary folder inside dest and moved into place only
// when the whole archive extracted cleanly. An entry whose name is absolute
// or climbs out with "..", a symbolic link whose target is absolute or
// holds "..", a file
// written through a symbolic link, hard links and device files are errors
// naming the archive and entry. Top-level entries that already exist in
// dest are errors too (nothing is overwritten).
func ExtractTarGz(archive, dest string) error {
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	defer f.Close()
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return fmt.Errorf("extract %s: %w", archive, err)
	}
	tmp, err := os.MkdirTemp(dest, ".extract-")
	if err != nil {
		return fmt.Errorf("extract %s: %w", archive, err)
	}
	defer os.RemoveAll(tmp)
	gz, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("extract %s: not a gzip file: %w", archive, err)
	}
	tops := map[string]bool{}
	if err := extractTar(archive, tar.NewReader(gz), tmp, tops); err != nil {
		return err
	}
	for top := range tops {
		if _, err := os.Lstat(filepath.Join(dest, top)); err == nil {
			return fmt.Errorf("extract %s: %s already exists in %s; remove it first", archive, top, dest)
		}
	}
	for top := range tops {
		if err := os.Rename(filepath.Join(tmp, top), filepath.Join(dest, top)); err != nil {
			return fmt.Errorf("extract %s: %w", archive, err)
		}
	}
	return nil
}

// safeEntryName cleans a tar entry name and rejects names that would land
// outside the extraction folder.
func safeEntryName(name string) (string, error) {
	if strings.Contains(name, "\\") || strings.ContainsRune(name, 0) {
		return "", errors.New("name holds a backslash or NUL")
	}
	if path.IsAbs(name) {
		return "", errors.New("absolute path")
	}
	clean := path.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", errors.New("path climbs out of the extraction folder")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", errors.New("path holds a \"..\" element")
		}
	}
	return clean, nil
}

// noSymlinkParents checks that no folder between root and root/rel is a
// symbolic link, so that writing root/rel cannot leave root.
func noSymlinkParents(root, rel string) error {
	dir := root
	parts := strings.Split(rel, "/")
	for _, part := range parts[:len(parts)-1] {
		dir = filepath.Join(dir, part)
		fi, err := os.Lstat(dir)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("parent %s is a symbolic link", part)
		}
	}
	return nil
}

func extractTar(archive string, tr *tar.Reader, root string, tops map[string]bool) error {
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("extract %s: %w", archive, err)
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("extract %s: entry %q: %s", archive, hdr.Name, fmt.Sprintf(format, args...))
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		rel, err := safeEntryName(hdr.Name)
		if err != nil {
			return bad("%v", err)
		}
		if rel == "." {
			continue
		}
		if err := noSymlinkParents(root, rel); err != nil {
			return bad("%v", err)
		}
		target := filepath.Join(root, filepath.FromSlash(rel))
		tops[strings.SplitN(rel, "/", 2)[0]] = true
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return bad("%v", err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return bad("%v", err)
			}
			if fi, err := os.Lstat(target); err == nil && !fi.Mode().IsRegular() {
				return bad("would overwrite a %v", fi.Mode().Type())
			}
			mode := os.FileMode(0o644)
			if hdr.Mode&0o111 != 0 {
				mode = 0o755
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
			if err != nil {
				return bad("%v", err)
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return bad("%v", err)
			}
		case tar.TypeSymlink:
			link := hdr.Linkname
			if path.IsAbs(link) {
				return bad("symbolic link to absolute path %q", link)
			}
			// A target without ".." stays at or below the link's own folder,
			// and so does any chain of such links.
			for _, part := range strings.Split(link, "/") {
				if part == ".." {
					return bad("symbolic link to %q may leave the extraction folder", link)
				}
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return bad("%v", err)
			}
			if err := os.Symlink(link, target); err != nil {
				return bad("%v", err)
			}
		case tar.TypeLink:
			return bad("hard links are not extracted")
		default:
			return bad("entry type %q is not extracted (only files, folders and symbolic links)", string(hdr.Typeflag))
		}
	}
}
