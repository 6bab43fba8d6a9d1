package datasets

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/internal/testutil"
)

var miniClasses = []string{"n01532829", "n01558993", "n01704323"}

// TestPooledSplitFixed pins the pooled split of a small case, so that a
// change of the rule (or of its PRNG) cannot go unnoticed. The expected
// lists were computed by an independent Python implementation of the
// documented rule (TestPooledSplitPython reruns it).
func TestPooledSplitFixed(t *testing.T) {
	train, val, test := PooledSplit(12, "n01532829", PooledSplitConfig{})
	got := fmt.Sprint(train, val, test)
	want := goldenSplit
	if got != want {
		t.Fatalf("PooledSplit(12, n01532829, seed 0) = %s, want %s", got, want)
	}
	// 600 images: 500 / 100, and a validation carve-out from train.
	train, val, test = PooledSplit(600, "n01532829", PooledSplitConfig{Seed: 3, ValFraction: 0.1})
	if len(train) != 450 || len(val) != 50 || len(test) != 100 {
		t.Fatalf("600 images: %d/%d/%d", len(train), len(val), len(test))
	}
	all := append(append(append([]int(nil), train...), val...), test...)
	sort.Ints(all)
	for i, v := range all {
		if v != i {
			t.Fatalf("split is not a partition: position %d holds %d", i, v)
		}
	}
	// Seed changes the split; the same seed repeats it.
	_, _, t1 := PooledSplit(600, "x", PooledSplitConfig{Seed: 1})
	_, _, t2 := PooledSplit(600, "x", PooledSplitConfig{Seed: 2})
	_, _, t1b := PooledSplit(600, "x", PooledSplitConfig{Seed: 1})
	if reflect.DeepEqual(t1, t2) || !reflect.DeepEqual(t1, t1b) {
		t.Fatal("seed does not behave")
	}
	if err := (PooledSplitConfig{ValFraction: 1}).Validate(); err == nil {
		t.Fatal("val fraction 1 accepted")
	}
}

// goldenSplit is PooledSplit(12, "n01532829", seed 0) as "[train] [val] [test]".
const goldenSplit = "[0 1 3 4 5 6 7 9 10 11] [] [2 8]"

// pySplitScript is the documented pooled split rule written independently
// in Python.
const pySplitScript = `
import sys
M = (1 << 64) - 1
def fnv(s):
    h = 0xcbf29ce484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001b3) & M
    return h
def split(n, cls, seed):
    state = (seed ^ fnv(cls)) & M
    p = list(range(n))
    for i in range(n - 1, 0, -1):
        state = (state + 0x9e3779b97f4a7c15) & M
        z = state
        z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
        z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
        z = z ^ (z >> 31)
        j = z % (i + 1)
        p[i], p[j] = p[j], p[i]
    k = 5 * n // 6
    return sorted(p[:k]), sorted(p[k:])
for arg in sys.argv[1:]:
    n, cls, seed = arg.split(",")
    tr, te = split(int(n), cls, int(seed))
    print(" ".join(map(str, tr)) + "|" + " ".join(map(str, te)))
`

func TestPooledSplitPython(t *testing.T) {
	py := testutil.PythonTorch(t)
	cases := []string{"12,n01532829,0", "600,n01558993,0", "7,b,18446744073709551615", "1,x,5", "600,n01704323,42"}
	out, err := exec.Command(py, append([]string{"-c", pySplitScript}, cases...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, c := range cases {
		f := strings.Split(c, ",")
		n, _ := strconv.Atoi(f[0])
		seed, _ := strconv.ParseUint(f[2], 10, 64)
		train, _, test := PooledSplit(n, f[1], PooledSplitConfig{Seed: seed})
		got := strings.Trim(fmt.Sprint(train), "[]") + "|" + strings.Trim(fmt.Sprint(test), "[]")
		if got != lines[i] {
			t.Fatalf("case %s: Go %s, Python %s", c, got, lines[i])
		}
	}
}

// expectedPooled returns, for a pooled layout built by writeMiniClasses,
// the (class, image number) pairs of a split in data set order.
func expectedPooled(counts []int, split Split, cfg PooledSplitConfig) [][2]int {
	var out [][2]int
	for c, n := range counts {
		for _, k := range pooledPick(n, miniClasses[c], split, cfg) {
			out = append(out, [2]int{c, k})
		}
	}
	return out
}

// checkPooled loads every image of ds and checks label and colour.
func checkPooled(t *testing.T, ds Dataset, want [][2]int) {
	t.Helper()
	if ds.Len() != len(want) {
		t.Fatalf("%d images, want %d", ds.Len(), len(want))
	}
	if !reflect.DeepEqual(ds.Classes(), miniClasses) {
		t.Fatalf("classes %v", ds.Classes())
	}
	img := &Image{}
	for i, w := range want {
		if ds.Label(i) != w[0] {
			t.Fatalf("image %d: label %d, want %d", i, ds.Label(i), w[0])
		}
		if err := ds.Load(i, img); err != nil {
			t.Fatal(err)
		}
		col := classColor(w[0], w[1])
		if absDiff(img.Pix[0], col.R) > 2 || absDiff(img.Pix[1], col.G) > 2 || absDiff(img.Pix[2], col.B) > 2 {
			t.Fatalf("image %d: colour %v, want class %d image %d (%v)", i, img.Pix[:3], w[0], w[1], col)
		}
	}
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

func TestMiniImageNetClassFolders(t *testing.T) {
	root := t.TempDir()
	counts := []int{12, 7, 6}
	writeClassTree(t, root, miniClasses, counts)
	if l, err := DetectMiniImageNetLayout(root); err != nil || l != LayoutClassFolders {
		t.Fatalf("layout %v, %v", l, err)
	}
	cfg := PooledSplitConfig{Seed: 0, ValFraction: 0.2}
	total := 0
	for _, split := range []Split{Train, Val, Test} {
		ds, err := OpenMiniImageNet(root, split, MiniImageNetOptions{Split: cfg})
		if err != nil {
			t.Fatal(err)
		}
		want := expectedPooled(counts, split, cfg)
		checkPooled(t, ds, want)
		total += ds.Len()
	}
	if total != 25 {
		t.Fatalf("splits hold %d images, want 25", total)
	}
	// Class 0 (12 images): 10 train of which 2 val, 2 test, as pinned above.
	ds, _ := OpenMiniImageNet(root, Test, MiniImageNetOptions{})
	if f := ds.(*FileDataset); !strings.HasSuffix(f.File(0), "img_002.png") || !strings.HasSuffix(f.File(1), "img_008.png") {
		t.Fatalf("test files of class 0: %s %s", f.File(0), f.File(1))
	}
	// Empty class folder.
	if err := os.Mkdir(filepath.Join(root, "n09999999"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := OpenMiniImageNet(root, Train, MiniImageNetOptions{})
	if err == nil || !strings.Contains(err.Error(), "n09999999") {
		t.Fatalf("empty class: %v", err)
	}
}

func TestMiniImageNetSplitFolders(t *testing.T) {
	root := t.TempDir()
	writeClassTree(t, filepath.Join(root, "train"), miniClasses, []int{3, 3, 3})
	writeClassTree(t, filepath.Join(root, "val"), miniClasses, []int{1, 1, 1})
	writeClassTree(t, filepath.Join(root, "test"), miniClasses, []int{2, 2, 2})
	if l, _ := DetectMiniImageNetLayout(root); l != LayoutSplitFolders {
		t.Fatalf("layout %v", l)
	}
	for split, n := range map[Split]int{Train: 9, Val: 3, Test: 6} {
		ds, err := OpenMiniImageNet(root, split, MiniImageNetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ds.Len() != n || !reflect.DeepEqual(ds.Classes(), miniClasses) || ds.Label(n-1) != 2 {
			t.Fatalf("%v: %d images", split, ds.Len())
		}
	}
}

// writeMiniCSV writes the Ravi & Larochelle layout: images/<class><k>.jpg
// and the three CSVs splitting the classes.
func writeMiniCSV(t *testing.T, root string, counts []int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	csvs := map[string]*strings.Builder{}
	for c, n := range counts {
		name := miniCSVs[c%3]
		if csvs[name] == nil {
			csvs[name] = &strings.Builder{}
			csvs[name].WriteString("filename,label\n")
		}
		for k := 0; k < n; k++ {
			file := fmt.Sprintf("%s%08d.jpg", miniClasses[c], k+1)
			col := classColor(c, k)
			img := patternRGBA(6, 6, 0)
			for i := 0; i < len(img.Pix); i += 4 {
				img.Pix[i], img.Pix[i+1], img.Pix[i+2] = col.R, col.G, col.B
			}
			if err := os.WriteFile(filepath.Join(root, "images", file), encodeJPEG(t, img, 100), 0o644); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(csvs[name], "%s,%s\n", file, miniClasses[c])
		}
	}
	for name, b := range csvs {
		if err := os.WriteFile(filepath.Join(root, name), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMiniImageNetCSV(t *testing.T) {
	root := t.TempDir()
	counts := []int{12, 6, 9}
	writeMiniCSV(t, root, counts)
	if l, _ := DetectMiniImageNetLayout(root); l != LayoutCSV {
		t.Fatalf("layout %v", l)
	}
	for _, split := range []Split{Train, Test} {
		ds, err := OpenMiniImageNet(root, split, MiniImageNetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkPooled(t, ds, expectedPooled(counts, split, PooledSplitConfig{}))
	}
	train, _ := OpenMiniImageNet(root, Train, MiniImageNetOptions{})
	if train.Len() != 10+5+7 {
		t.Fatalf("train holds %d", train.Len())
	}
}

func TestMiniImageNetCSVBadInput(t *testing.T) {
	t.Run("missing file", func(t *testing.T) {
		root := t.TempDir()
		writeMiniCSV(t, root, []int{3, 3, 3})
		f, _ := os.OpenFile(filepath.Join(root, "val.csv"), os.O_APPEND|os.O_WRONLY, 0)
		fmt.Fprintln(f, "n0155899300000099.jpg,n01558993")
		f.Close()
		_, err := OpenMiniImageNet(root, Train, MiniImageNetOptions{})
		if err == nil || !strings.Contains(err.Error(), "val.csv line 5") || !strings.Contains(err.Error(), "n0155899300000099.jpg") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("bad header", func(t *testing.T) {
		root := t.TempDir()
		writeMiniCSV(t, root, []int{3, 3, 3})
		os.WriteFile(filepath.Join(root, "test.csv"), []byte("file,class\n"), 0o644)
		_, err := OpenMiniImageNet(root, Train, MiniImageNetOptions{})
		if err == nil || !strings.Contains(err.Error(), "test.csv") || !strings.Contains(err.Error(), "header") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("path escape", func(t *testing.T) {
		root := t.TempDir()
		writeMiniCSV(t, root, []int{3, 3, 3})
		os.WriteFile(filepath.Join(root, "test.csv"), []byte("filename,label\n../secret.jpg,n01704323\n"), 0o644)
		_, err := OpenMiniImageNet(root, Train, MiniImageNetOptions{})
		if err == nil || !strings.Contains(err.Error(), "test.csv line 2") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		root := t.TempDir()
		writeMiniCSV(t, root, []int{3, 3, 3})
		f, _ := os.OpenFile(filepath.Join(root, "test.csv"), os.O_APPEND|os.O_WRONLY, 0)
		fmt.Fprintln(f, "n0153282900000001.jpg,n01704323")
		f.Close()
		_, err := OpenMiniImageNet(root, Train, MiniImageNetOptions{})
		if err == nil || !strings.Contains(err.Error(), "listed twice") {
			t.Fatalf("error %v", err)
		}
	})
}

// pyMiniPickleScript writes the three pickle caches. Image data: value
// 100*file + row in channel 0, 7 in channel 1, the pixel number in channel
// 2. Classes: n01532829 in train rows 0-6 and test rows 0-4 (pooled across
// files), n01558993 in train rows 7-11, n01704323 in val rows 0-5.
const pyMiniPickleScript = `
import pickle, sys, numpy as np
out, h, w = sys.argv[1], 6, 5
def cache(part, fi, n, classes, protocol):
    img = np.zeros((n, h, w, 3), dtype=np.uint8)
    for r in range(n):
        img[r, :, :, 0] = 100 * fi + r
        img[r, :, :, 1] = 7
        img[r, :, :, 2] = np.arange(h * w).reshape(h, w)
    with open(out + '/mini-imagenet-cache-%s.pkl' % part, 'wb') as f:
        pickle.dump({'image_data': img, 'class_dict': classes}, f, protocol=protocol)
cache('train', 0, 12, {'n01532829': list(range(7)), 'n01558993': list(range(7, 12))}, pickle.HIGHEST_PROTOCOL)
cache('val', 1, 6, {'n01704323': list(range(6))}, 2)
cache('test', 2, 5, {'n01532829': list(range(5))}, 4)
`

func TestMiniImageNetPickle(t *testing.T) {
	root := t.TempDir()
	runPython(t, pyMiniPickleScript, root)
	if l, _ := DetectMiniImageNetLayout(root); l != LayoutPickle {
		t.Fatalf("layout %v", l)
	}
	// Items of each class in pooled order (file, row).
	items := [][][2]int{
		{{0, 0}, {0, 1}, {0, 2}, {0, 3}, {0, 4}, {0, 5}, {0, 6}, {2, 0}, {2, 1}, {2, 2}, {2, 3}, {2, 4}},
		{{0, 7}, {0, 8}, {0, 9}, {0, 10}, {0, 11}},
		{{1, 0}, {1, 1}, {1, 2}, {1, 3}, {1, 4}, {1, 5}},
	}
	total := 0
	for _, split := range []Split{Train, Test} {
		ds, err := OpenMiniImageNet(root, split, MiniImageNetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ds.Classes(), miniClasses) {
			t.Fatalf("classes %v", ds.Classes())
		}
		var want [][3]int
		for c, list := range items {
			for _, k := range pooledPick(len(list), miniClasses[c], split, PooledSplitConfig{}) {
				want = append(want, [3]int{c, list[k][0], list[k][1]})
			}
		}
		if ds.Len() != len(want) {
			t.Fatalf("%v: %d images, want %d", split, ds.Len(), len(want))
		}
		img := &Image{}
		for i, w := range want {
			if err := ds.Load(i, img); err != nil {
				t.Fatal(err)
			}
			if ds.Label(i) != w[0] || img.Width != 5 || img.Height != 6 ||
				int(img.Pix[0]) != 100*w[1]+w[2] || img.Pix[1] != 7 || img.Pix[3*(2*5+3)+2] != 13 {
				t.Fatalf("%v image %d: label %d, %dx%d, pixels %v; want class %d file %d row %d",
					split, i, ds.Label(i), img.Width, img.Height, img.Pix[:6], w[0], w[1], w[2])
			}
		}
		total += ds.Len()
	}
	if total != 23 {
		t.Fatalf("train+test hold %d images, want 23", total)
	}
}

func TestMiniImageNetPickleBadInput(t *testing.T) {
	root := t.TempDir()
	runPython(t, `
import pickle, sys, numpy as np
out = sys.argv[1]
img = np.zeros((3, 4, 4, 3), dtype=np.uint8)
pickle.dump({'image_data': img, 'class_dict': {'a': [0, 1], 'b': [2, 3]}}, open(out + '/range.pkl', 'wb'))
pickle.dump({'image_data': img.astype(np.float32), 'class_dict': {'a': [0]}}, open(out + '/dtype.pkl', 'wb'))
pickle.dump({'class_dict': {'a': [0]}}, open(out + '/nodata.pkl', 'wb'))
`, root)
	for name, expect := range map[string]string{
		"range.pkl":  `class_dict["b"] item 1: row 3 out of range [0, 3)`,
		"dtype.pkl":  "want uint8",
		"nodata.pkl": "no image_data",
	} {
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = ParseMiniImageNetPickle(name, data)
		if err == nil || !strings.Contains(err.Error(), expect) || !strings.Contains(err.Error(), name) {
			t.Fatalf("%s: error %v, want %q", name, err, expect)
		}
	}
	// Through the layout: a truncated cache names the file.
	dir := t.TempDir()
	data, _ := os.ReadFile(filepath.Join(root, "range.pkl"))
	os.WriteFile(filepath.Join(dir, miniPickleName("train")), data[:len(data)/2], 0o644)
	_, err := OpenMiniImageNet(dir, Train, MiniImageNetOptions{})
	if err == nil || !strings.Contains(err.Error(), miniPickleName("train")) {
		t.Fatalf("truncated cache: %v", err)
	}
}

func TestMiniImageNetUnknownLayout(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "readme.txt"), []byte("x"), 0o644)
	if _, err := OpenMiniImageNet(dir, Train, MiniImageNetOptions{}); err == nil || !strings.Contains(err.Error(), "no known layout") {
		t.Fatalf("error %v", err)
	}
}
