package datasets

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// archiveServer serves one archive with Range support and records the
// Range headers it saw.
type archiveServer struct {
	*httptest.Server
	mu      sync.Mutex
	ranges  []string
	data    []byte
	noRange bool
}

func newArchiveServer(t *testing.T, name string, data []byte) *archiveServer {
	s := &archiveServer{data: data}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/"+name {
			http.NotFound(w, r)
			return
		}
		s.mu.Lock()
		s.ranges = append(s.ranges, r.Header.Get("Range"))
		noRange := s.noRange
		s.mu.Unlock()
		if noRange {
			r.Header.Del("Range")
		}
		http.ServeContent(w, r, name, time.Unix(0, 0), bytes.NewReader(s.data))
	}))
	t.Cleanup(s.Close)
	return s
}

func md5Hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func TestDownloadCIFAR10(t *testing.T) {
	archive := cifarTarGz(t, cifarBinDir, cifarBinFiles(2))
	srv := newArchiveServer(t, cifarBinTarGz, archive)
	dir := t.TempDir()
	// A partial earlier download: the first third.
	part := filepath.Join(dir, cifarBinTarGz+".part")
	if err := os.WriteFile(part, archive[:len(archive)/3], 0o644); err != nil {
		t.Fatal(err)
	}
	var calls int
	var last, total int64
	out, err := DownloadCIFAR10(context.Background(), dir, CIFARBinary, DownloadOptions{
		BaseURL:  srv.URL,
		MD5:      md5Hex(archive),
		Progress: func(done, tot int64) { calls++; last, total = done, tot },
	})
	if err != nil {
		t.Fatal(err)
	}
	if out != filepath.Join(dir, cifarBinDir) {
		t.Fatalf("folder %s", out)
	}
	if want := "bytes=" + strconv.Itoa(len(archive)/3) + "-"; len(srv.ranges) != 1 || srv.ranges[0] != want {
		t.Fatalf("requests with ranges %q, want one with %q", srv.ranges, want)
	}
	if calls < 2 || last != int64(len(archive)) || total != int64(len(archive)) {
		t.Fatalf("progress: %d calls, last %d of %d, want %d", calls, last, total, len(archive))
	}
	if _, err := os.Stat(part); !os.IsNotExist(err) {
		t.Fatalf("partial file left: %v", err)
	}
	ds, err := OpenCIFAR10(dir, Test)
	if err != nil {
		t.Fatal(err)
	}
	checkCIFAR(t, ds, Test, 2)
	// A second call finds everything in place and fetches nothing.
	if _, err := DownloadCIFAR10(context.Background(), dir, CIFARBinary, DownloadOptions{BaseURL: srv.URL, MD5: md5Hex(archive)}); err != nil {
		t.Fatal(err)
	}
	if len(srv.ranges) != 1 {
		t.Fatalf("second call made %d requests", len(srv.ranges)-1)
	}
}

func TestDownloadNoRangeSupport(t *testing.T) {
	archive := cifarTarGz(t, cifarBinDir, cifarBinFiles(1))
	srv := newArchiveServer(t, cifarBinTarGz, archive)
	srv.noRange = true
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, cifarBinTarGz+".part"), []byte("garbage prefix"), 0o644)
	if _, err := DownloadCIFAR10(context.Background(), dir, CIFARBinary, DownloadOptions{BaseURL: srv.URL, MD5: md5Hex(archive)}); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCIFAR10(dir, Train); err != nil {
		t.Fatal(err)
	}
}

func TestDownloadChecksumMismatch(t *testing.T) {
	archive := cifarTarGz(t, cifarBinDir, cifarBinFiles(1))
	srv := newArchiveServer(t, cifarBinTarGz, archive)
	dir := t.TempDir()
	// The official sum does not match the generated archive.
	_, err := DownloadCIFAR10(context.Background(), dir, CIFARBinary, DownloadOptions{BaseURL: srv.URL})
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{cifarBinTarGz, md5Hex(archive), CIFAR10MD5[CIFARBinary], "checksum mismatch"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("bad download left %v behind", entries)
	}
	// An archive put there by hand is verified too, and not extracted.
	p := filepath.Join(dir, cifarBinTarGz)
	os.WriteFile(p, archive, 0o644)
	_, err = DownloadCIFAR10(context.Background(), dir, CIFARBinary, DownloadOptions{BaseURL: srv.URL})
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), md5Hex(archive)) {
		t.Fatalf("error %v", err)
	}
	if dirExists(filepath.Join(dir, cifarBinDir)) {
		t.Fatal("bad archive was extracted")
	}
}

func TestDownloadUnreachable(t *testing.T) {
	// A port that was just free: nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = DownloadCIFAR10(context.Background(), t.TempDir(), CIFARBinary, DownloadOptions{BaseURL: "http://" + addr + "/"})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the server") ||
		!strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), cifarBinTarGz) {
		t.Fatalf("error %v", err)
	}
}

func TestDownloadHTTPError(t *testing.T) {
	srv := newArchiveServer(t, "other.tar.gz", nil)
	_, err := DownloadCIFAR10(context.Background(), t.TempDir(), CIFARPython, DownloadOptions{BaseURL: srv.URL})
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), cifarPyTarGz) {
		t.Fatalf("error %v", err)
	}
}

func TestDownloadCancelled(t *testing.T) {
	srv := newArchiveServer(t, cifarBinTarGz, []byte("x"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := DownloadCIFAR10(ctx, t.TempDir(), CIFARBinary, DownloadOptions{BaseURL: srv.URL})
	if err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("error %v", err)
	}
}

func TestExtractTarGzSafety(t *testing.T) {
	cases := []struct {
		name    string
		entries []tarEntry
		expect  string
	}{
		{"dotdot", []tarEntry{{name: "ok/a", data: []byte("a")}, {name: "ok/../../evil", data: []byte("x")}}, "climbs out"},
		{"dotdot inside", []tarEntry{{name: "ok/../ok2/f", data: []byte("x")}}, `".."`},
		{"absolute", []tarEntry{{name: "/tmp/evil", data: []byte("x")}}, "absolute path"},
		{"symlink out", []tarEntry{{name: "ok/link", typeflag: tar.TypeSymlink, linkname: "../../etc"}}, "symbolic link"},
		{"symlink absolute", []tarEntry{{name: "ok/link", typeflag: tar.TypeSymlink, linkname: "/etc"}}, "absolute"},
		{"through symlink", []tarEntry{{name: "ok/sub/", typeflag: tar.TypeDir}, {name: "ok/link", typeflag: tar.TypeSymlink, linkname: "sub"},
			{name: "ok/link/file", data: []byte("x")}}, "symbolic link"},
		{"hard link", []tarEntry{{name: "ok/a", data: []byte("a")}, {name: "ok/b", typeflag: tar.TypeLink, linkname: "ok/a"}}, "hard links"},
		{"device", []tarEntry{{name: "ok/dev", typeflag: tar.TypeChar}}, "not extracted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "dest")
			archive := filepath.Join(parent, "a.tar.gz")
			os.WriteFile(archive, makeTarGz(t, tc.entries), 0o644)
			err := ExtractTarGz(archive, dest)
			if err == nil || !strings.Contains(err.Error(), tc.expect) || !strings.Contains(err.Error(), archive) {
				t.Fatalf("error %v, want %q", err, tc.expect)
			}
			// Nothing was put in place, nothing escaped.
			entries, _ := os.ReadDir(dest)
			if len(entries) != 0 {
				t.Fatalf("dest holds %v after a failed extraction", entries)
			}
			if _, err := os.Lstat(filepath.Join(parent, "evil")); err == nil {
				t.Fatal("file escaped")
			}
		})
	}
	t.Run("good with inner symlink", func(t *testing.T) {
		parent := t.TempDir()
		archive := filepath.Join(parent, "a.tar.gz")
		os.WriteFile(archive, makeTarGz(t, []tarEntry{
			{name: "./top/", typeflag: tar.TypeDir}, {name: "top/sub/f.txt", data: []byte("hello")},
			{name: "top/link", typeflag: tar.TypeSymlink, linkname: "sub/f.txt"},
		}), 0o644)
		dest := filepath.Join(parent, "out")
		if err := ExtractTarGz(archive, dest); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(dest, "top", "link")); err != nil || string(b) != "hello" {
			t.Fatalf("read through link: %q %v", b, err)
		}
		// Extracting again does not overwrite.
		if err := ExtractTarGz(archive, dest); err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("second extraction: %v", err)
		}
	})
}
