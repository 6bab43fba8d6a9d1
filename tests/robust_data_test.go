package tests

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestCLIPredictHostileImages: predict refuses an 8 GB image file (a sparse
// file: never read) and a link to /dev/zero with a one-line error naming
// the file, instead of reading them whole into memory (before: Go's "fatal
// error: out of memory", exit 2), and still classifies a good image.
func TestCLIPredictHostileImages(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "bare.pt")
	saveStateDict(t, ckpt, ckModel(t, "swat", 10, 1))
	img := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	img.Set(0, 0, color.White)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.png")
	if err := os.WriteFile(good, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.png")
	if err := os.WriteFile(huge, []byte("\x89PNG\r\n\x1a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, 8<<30); err != nil {
		t.Skipf("no sparse files here: %v", err)
	}
	zero := filepath.Join(dir, "zero.jpg")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	model := []string{"--checkpoint", ckpt, "--variant", "swat", "--preset", "nano", "--classes", "10", "--img-size", "32", "--device", "cpu"}
	predict := func(image string) (string, string, int) {
		return runCLI(t, append(append([]string{"predict"}, model...), "--image", image)...)
	}
	if out, errOut, code := predict(good); code != 0 || !strings.Contains(out, "good.png") {
		t.Fatalf("good image: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, tc := range []struct {
		image string
		want  []string
	}{
		{huge, []string{huge, "8589934592 bytes", "at most 1207959552 bytes"}},
		{zero, []string{zero, "unknown image format"}},
	} {
		_, errOut, code := predict(tc.image)
		t.Logf("--image %s: exit %d: %s", filepath.Base(tc.image), code, errOut)
		if code != 1 || strings.Contains(errOut, "out of memory") || strings.Count(strings.TrimSpace(errOut), "\n") > 1 {
			t.Errorf("--image %s: exit %d (want 1): %s", tc.image, code, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("--image %s: error %q does not mention %q", tc.image, errOut, w)
			}
		}
	}
}
