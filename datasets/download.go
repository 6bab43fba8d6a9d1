package datasets

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CIFARBaseURL is where the official CIFAR-10 and CIFAR-100 archives are
// published.
const CIFARBaseURL = "https://www.cs.toronto.edu/~kriz/"

// CIFAR10MD5 are the MD5 sums of the official CIFAR-10 archives (DATA.md).
var CIFAR10MD5 = map[CIFARFormat]string{
	CIFARBinary: "c32a1d4ab5d03f1284b67883e8d87530",
	CIFARPython: "c58f30108f718f92721af3b95e74349a",
}

// CIFAR100MD5 are the MD5 sums of the official CIFAR-100 archives: the
// python one as torchvision's CIFAR100 checks it (tgz_md5), the binary one
// as the publisher's page lists it.
var CIFAR100MD5 = map[CIFARFormat]string{
	CIFARBinary: "03b5dce01913d631647c71ecec9e9cb8",
	CIFARPython: "eb9058c3a382ffc7106e4002c42a8d85",
}

// DownloadOptions configures DownloadCIFAR10, DownloadCIFAR100 and
// DownloadFile.
type DownloadOptions struct {
	// BaseURL replaces CIFARBaseURL (a mirror, or a test server).
	BaseURL string
	// MD5 replaces the expected sum of the archive (hex).
	MD5 string
	// Client is the HTTP client; nil means http.DefaultClient.
	Client *http.Client
	// Progress, when set, is called as bytes arrive with the bytes of the
	// file held so far and its total size (-1 when the server does not say).
	Progress func(done, total int64)
}

// DownloadCIFAR10 makes sure dir holds the extracted CIFAR-10 distribution
// in the given format and returns its folder (dir/cifar-10-batches-bin or
// dir/cifar-10-batches-py). When the folder is already complete nothing is
// fetched. Otherwise the archive is downloaded to dir (resuming a partial
// dir/<archive>.part with a Range request), its MD5 is checked against
// CIFAR10MD5 (a mismatch is an error naming the file and both sums, and the
// bad file is removed, never extracted), and it is extracted safely (see
// ExtractTarGz). An archive already in dir is verified the same way but
// never removed.
func DownloadCIFAR10(ctx context.Context, dir string, format CIFARFormat, opts DownloadOptions) (string, error) {
	return downloadCIFAR(ctx, cifar10, dir, format, opts)
}

// DownloadCIFAR100 is DownloadCIFAR10 for CIFAR-100: it returns
// dir/cifar-100-binary or dir/cifar-100-python, checking the archive
// against CIFAR100MD5.
func DownloadCIFAR100(ctx context.Context, dir string, format CIFARFormat, opts DownloadOptions) (string, error) {
	return downloadCIFAR(ctx, cifar100, dir, format, opts)
}

func downloadCIFAR(ctx context.Context, set *cifarSet, dir string, format CIFARFormat, opts DownloadOptions) (string, error) {
	out := filepath.Join(dir, set.dirs[format])
	complete := true
	for _, split := range []Split{Train, Test} {
		for _, name := range set.batchFiles(format, split) {
			complete = complete && fileExists(filepath.Join(out, name))
		}
	}
	if complete {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("download %s: %w", set.name, err)
	}
	want := opts.MD5
	if want == "" {
		want = set.md5[format]
	}
	archive := filepath.Join(dir, set.archives[format])
	if fileExists(archive) {
		if err := VerifyMD5(archive, want); err != nil {
			return "", err
		}
	} else {
		base := opts.BaseURL
		if base == "" {
			base = CIFARBaseURL
		}
		url := strings.TrimSuffix(base, "/") + "/" + set.archives[format]
		if err := DownloadFile(ctx, url, archive, want, opts); err != nil {
			return "", err
		}
	}
	if dirExists(out) {
		// An incomplete earlier extraction: replace it.
		if err := os.RemoveAll(out); err != nil {
			return "", fmt.Errorf("download %s: %w", set.name, err)
		}
	}
	if err := ExtractTarGz(archive, dir); err != nil {
		return "", err
	}
	return out, nil
}

// VerifyMD5 checks the MD5 sum of a file; a mismatch is an error naming the
// file and both sums.
func VerifyMD5(path, want string) error {
	got, err := fileMD5(path)
	if err != nil {
		return err
	}
	if !strings.EqualFold(got, want) {
		return fmt.Errorf("checksum mismatch for %s: MD5 %s, want %s (corrupt or incomplete download; delete it and try again)", path, got, want)
	}
	return nil
}

func fileMD5(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DownloadFile fetches url into dest through dest+".part", resuming a
// partial file with a Range request when the server allows it (a server that
// answers a range with the whole file restarts it). With wantMD5 set the
// sum is verified before dest is put in place; on a mismatch the partial
// file is removed and the error names the file and both sums. An unreachable
// server is reported as such.
func DownloadFile(ctx context.Context, url, dest, wantMD5 string, opts DownloadOptions) error {
	part := dest + ".part"
	for attempt := 0; ; attempt++ {
		restart, err := fetchInto(ctx, url, dest, opts)
		if err != nil {
			return err
		}
		if restart && attempt == 0 {
			// The partial file was longer than the resource: start over.
			if err := os.Remove(part); err != nil {
				return fmt.Errorf("download %s: %w", url, err)
			}
			continue
		}
		break
	}
	if wantMD5 != "" {
		got, err := fileMD5(part)
		if err != nil {
			return err
		}
		if !strings.EqualFold(got, wantMD5) {
			os.Remove(part)
			return fmt.Errorf("checksum mismatch for %s (downloaded from %s): MD5 %s, want %s; the file was removed",
				dest, url, got, wantMD5)
		}
	}
	if err := os.Rename(part, dest); err != nil {
		return fmt.Errorf("download %s: %w", url, err)
	}
	return nil
}

// fetchInto appends the rest of url to dest+".part". restart reports that
// the server refused the range (416), which means the part is not a prefix.
func fetchInto(ctx context.Context, url, dest string, opts DownloadOptions) (restart bool, err error) {
	part := dest + ".part"
	client := opts.Client
	if client == nil {
		client = http.DefaultClient
	}
	var have int64
	if fi, err := os.Stat(part); err == nil {
		have = fi.Size()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, fmt.Errorf("download %s: %w", url, err)
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, describeNetError(url, dest, err)
	}
	defer resp.Body.Close()
	flags := os.O_CREATE | os.O_WRONLY
	total := int64(-1)
	switch resp.StatusCode {
	case http.StatusOK:
		have = 0
		flags |= os.O_TRUNC
		total = resp.ContentLength
	case http.StatusPartialContent:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			return false, fmt.Errorf("download %s: server sent range %q for a request from byte %d", url, resp.Header.Get("Content-Range"), have)
		}
		flags |= os.O_APPEND
		total = size
	case http.StatusRequestedRangeNotSatisfiable:
		if have > 0 {
			return true, nil
		}
		fallthrough
	default:
		return false, fmt.Errorf("download %s: HTTP status %s", url, resp.Status)
	}
	f, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return false, fmt.Errorf("download %s: %w", url, err)
	}
	w := io.Writer(f)
	if opts.Progress != nil {
		opts.Progress(have, total)
		w = &progressWriter{w: f, done: have, total: total, fn: opts.Progress}
	}
	_, err = io.Copy(w, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("download %s: interrupted (%v); run again to resume from %s", url, err, part)
	}
	if total >= 0 {
		if fi, err := os.Stat(part); err == nil && fi.Size() != total {
			return false, fmt.Errorf("download %s: got %d of %d bytes; run again to resume from %s", url, fi.Size(), total, part)
		}
	}
	return false, nil
}

// parseContentRange parses "bytes start-end/size" (size may be "*", -1).
func parseContentRange(s string) (start, size int64, ok bool) {
	s, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, sz, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, false
	}
	first, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	size = -1
	if sz != "*" {
		if size, err = strconv.ParseInt(sz, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, size, true
}

// describeNetError turns a failed request into an error that says plainly
// when the network or host cannot be reached.
func describeNetError(url, dest string, err error) error {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("download %s: %w", url, err)
	case errors.As(err, &dnsErr), errors.As(err, &opErr):
		return fmt.Errorf("download %s: cannot reach the server (network unreachable, unknown host or server down): %v; without network access, fetch the file elsewhere and put it at %s",
			url, err, dest)
	}
	return fmt.Errorf("download %s: %w", url, err)
}

type progressWriter struct {
	w     io.Writer
	done  int64
	total int64
	fn    func(done, total int64)
}

// Write writes b and reports the new total to the callback.
func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	p.fn(p.done, p.total)
	return n, err
}
