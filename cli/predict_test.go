package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeFiles creates each file (with its folders) under dir.
func writeFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestExpandInputs: a folder (recursive, image extensions in any case, no
// hidden files), a glob (quoted: expanded here; its folders walked, its
// non-image files dropped) and files named directly (kept whatever their
// extension) give one sorted list without duplicates.
func TestExpandInputs(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, "a/2.PNG", "a/1.jpg", "a/.hidden.png", "a/notes.txt", "a/sub/3.jpeg", "a/.git/4.png",
		"b/y.txt", "b/x.png", "b/c/5.jpg", "loose/w.dat", "loose/z.jpg", "empty/readme.md")
	p := func(n string) string { return filepath.Join(dir, n) }
	got, err := expandInputs([]string{p("loose/w.dat"), p("b/*"), p("a"), p("a/1.jpg"), p("a/../a/sub/3.jpeg")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{p("a/1.jpg"), p("a/2.PNG"), p("a/sub/3.jpeg"), p("b/c/5.jpg"), p("b/x.png"), p("loose/w.dat")}
	if !slices.Equal(got, want) {
		t.Errorf("expandInputs:\n got %q\nwant %q", got, want)
	}

	for _, tc := range []struct {
		input string
		usage bool
		want  string
	}{
		{p("nothing/*.jpg"), false, "matches no file"},
		{p("b/*.txt"), false, "no JPEG or PNG image"},
		{p("missing.jpg"), false, "no such file"},
		{p("empty"), false, "holds no JPEG or PNG images"},
		{p("a/[x"), true, "malformed glob"},
		{"", true, "empty input"},
	} {
		_, err := expandInputs([]string{p("a"), tc.input})
		var ue usageError
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, &ue) != tc.usage ||
			(tc.input != "" && !strings.Contains(err.Error(), tc.input)) {
			t.Errorf("input %q: error %v (usage error: %v); want one naming it with %q (usage error: %v)",
				tc.input, err, errors.As(err, &ue), tc.want, tc.usage)
		}
	}
}

func TestOutputFormat(t *testing.T) {
	for _, tc := range []struct{ out, format, want string }{
		{"p.csv", "", formatCSV}, {"P.CSV", "", formatCSV}, {"p.jsonl", "", formatJSONL}, {"p.json", "", formatJSONL},
		{"p.ndjson", "", formatJSONL}, {"p.txt", "csv", formatCSV}, {"p.csv", "jsonl", formatJSONL},
	} {
		if got, err := outputFormat(tc.out, tc.format); err != nil || got != tc.want {
			t.Errorf("outputFormat(%q, %q) = %q, %v; want %q", tc.out, tc.format, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ out, format, want string }{{"p.txt", "", `".txt"`}, {"p", "", "--format"}, {"p.csv", "xml", `"xml"`}} {
		_, err := outputFormat(tc.out, tc.format)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("outputFormat(%q, %q): %v; want a usage error naming %s", tc.out, tc.format, err, tc.want)
		}
	}
}

// samplePredictions are two predictions with their top 2 classes.
func samplePredictions() []prediction {
	return []prediction{
		{Image: "a,b.png", Logits: []float32{1, 2, 0}, Probs: []float32{0.25, 0.7, 0.05},
			TopK: []topK{{Index: 1, Label: "cat", Prob: 0.7}, {Index: 0, Label: `a "dog"`, Prob: 0.25}}},
		{Image: "c.jpg", Logits: []float32{0, 0, 3}, Probs: []float32{0.1, 0.1, 0.8},
			TopK: []topK{{Index: 2, Label: "bird", Prob: 0.8}, {Index: 0, Label: `a "dog"`, Prob: 0.1}}},
	}
}

func writeAll(t *testing.T, format string, preds []prediction) string {
	t.Helper()
	var buf bytes.Buffer
	w := newPredictionWriter(format, &buf, 2)
	for _, p := range preds {
		if err := w.write(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.finish(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// The writers: the JSON list is byte for byte what encoding/json writes for
// the slice (predict --json before batching); JSON lines and CSV parse back
// to the predictions, CSV with timm's separate-column names.
func TestPredictionWriters(t *testing.T) {
	preds := samplePredictions()
	var want bytes.Buffer
	if err := json.NewEncoder(&want).Encode(preds); err != nil {
		t.Fatal(err)
	}
	if got := writeAll(t, formatJSON, preds); got != want.String() {
		t.Errorf("JSON list:\n got %s\nwant %s", got, want.String())
	}
	if got := writeAll(t, formatJSON, nil); got != "[]\n" {
		t.Errorf("empty JSON list: %q", got)
	}

	lines := strings.Split(strings.TrimSuffix(writeAll(t, formatJSONL, preds), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("JSON lines: %d lines, want 2", len(lines))
	}
	for i, line := range lines {
		var p prediction
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatal(err)
		}
		if p.Image != preds[i].Image || !slices.Equal(p.Probs, preds[i].Probs) || !slices.Equal(p.TopK, preds[i].TopK) {
			t.Errorf("JSON line %d: %+v, want %+v", i, p, preds[i])
		}
	}

	rows, err := csv.NewReader(strings.NewReader(writeAll(t, formatCSV, preds))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantRows := [][]string{
		{"image", "index_0", "index_1", "label_0", "label_1", "prob_0", "prob_1"},
		{"a,b.png", "1", "0", "cat", `a "dog"`, "0.7", "0.25"},
		{"c.jpg", "2", "0", "bird", `a "dog"`, "0.8", "0.1"},
	}
	if !slices.EqualFunc(rows, wantRows, slices.Equal) {
		t.Errorf("CSV:\n got %q\nwant %q", rows, wantRows)
	}
	if rows, _ := csv.NewReader(strings.NewReader(writeAll(t, formatCSV, nil))).ReadAll(); len(rows) != 1 {
		t.Errorf("CSV without predictions: %q, want the header alone", rows)
	}
	text := writeAll(t, formatText, preds[:1])
	if text != "a,b.png\n   70.00 %  cat (1)\n   25.00 %  a \"dog\" (0)\n" {
		t.Errorf("text:\n%s", text)
	}
}

// softmaxRows against hand-computed values: logits 0, ln 2, ln 3 (shifted
// by 100, which a softmax ignores) are 1/6, 2/6, 3/6.
func TestSoftmaxRows(t *testing.T) {
	l2, l3 := float32(math.Log(2)), float32(math.Log(3))
	got := softmaxRows([]float32{0, l2, l3, 100, 100 + l2, 100 + l3}, 3)
	for i, want := range []float64{1.0 / 6, 2.0 / 6, 3.0 / 6, 1.0 / 6, 2.0 / 6, 3.0 / 6} {
		if math.Abs(float64(got[i])-want) > 1e-6 {
			t.Errorf("softmax[%d] = %v, want %v", i, got[i], want)
		}
	}
}
