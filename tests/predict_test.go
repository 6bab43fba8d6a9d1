package tests

import (
	"bufio"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/checkpoints"
	"github.com/gsrmt/gsrmt/datasets"
	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/sugarme/gotch/ts"
)

// writeNoiseImage writes a w x h image of random pixels (not mirror
// symmetric) as PNG, or JPEG when the name ends in .jpg.
func writeNoiseImage(t *testing.T, path string, w, h int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.NRGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(x * 255 / w), 255})
		}
	}
	writeImage(t, path, img)
}

// writeImage writes img to path (its folder made if needed) as PNG, or as
// JPEG of quality 90 when the name ends in .jpg.
func writeImage(t *testing.T, path string, img image.Image) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if strings.HasSuffix(path, ".jpg") {
		err = jpeg.Encode(f, img, &jpeg.Options{Quality: 90})
	} else {
		err = png.Encode(f, img)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// predictModel is a nano swat model of 10 classes at 32 px with random
// weights, and the safetensors file (with its config) holding it.
func predictModel(t *testing.T) (*gsrmt.Model, string) {
	t.Helper()
	m := ckModel(t, "swat", 10, 5)
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := checkpoints.ExportSafetensors(path, m); err != nil {
		t.Fatal(err)
	}
	return m, path
}

// refPrediction classifies one image file independently of predict's
// loader and batching: decode, CLI.md's resize and crop, ImageNet's
// normalization (a file without a run description), one forward of the
// image alone, the softmax in float64. With flip the model also runs on
// the input mirrored here (each row reversed), and the two softmaxes and
// the two logit vectors are averaged.
func refPrediction(t *testing.T, m *gsrmt.Model, path string, flip bool) (logits, probs []float64) {
	t.Helper()
	img := &datasets.Image{}
	if err := datasets.DecodeImageFile(path, img); err != nil {
		t.Fatal(err)
	}
	side := m.Config.ImageSize
	x := datasets.PrepareForModel(img, side, datasets.Normalize{Mean: datasets.ImageNetMean, Std: datasets.ImageNetStd})
	forward := func(x []float32) []float64 {
		in := ts.MustOfSlice(x).MustView([]int64{1, 3, int64(side), int64(side)}, true)
		defer in.MustDrop()
		out := ckLogits(t, m, in)
		v := make([]float64, len(out))
		for i, o := range out {
			v[i] = float64(o)
		}
		return v
	}
	logits = forward(x)
	probs = softmax64(logits)
	if !flip {
		return logits, probs
	}
	mirrored := make([]float32, len(x))
	for row := 0; row < len(x)/side; row++ { // rows of every channel
		for col := 0; col < side; col++ {
			mirrored[row*side+col] = x[row*side+side-1-col]
		}
	}
	logitsF := forward(mirrored)
	probsF := softmax64(logitsF)
	for i := range logits {
		logits[i] = (logits[i] + logitsF[i]) / 2
		probs[i] = (probs[i] + probsF[i]) / 2
	}
	return logits, probs
}

func softmax64(v []float64) []float64 {
	hi := slices.Max(v)
	out := make([]float64, len(v))
	var sum float64
	for i, x := range v {
		out[i] = math.Exp(x - hi)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// jsonPrediction is one object of predict's JSON output.
type jsonPrediction struct {
	Image  string
	Logits []float64
	Probs  []float64
	TopK   []struct {
		Index int
		Label string
		Prob  float64
	}
}

func readJSONLines(t *testing.T, path string) []jsonPrediction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []jsonPrediction
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var p jsonPrediction
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("%s: line %d: %v", path, len(out)+1, err)
		}
		out = append(out, p)
	}
	return out
}

// checkJSONPredictions compares predictions with refPrediction's, image by
// image in the order of files, to float rounding.
func checkJSONPredictions(t *testing.T, what string, got []jsonPrediction, m *gsrmt.Model, files []string, flip bool) {
	t.Helper()
	if len(got) != len(files) {
		t.Fatalf("%s: %d predictions, want %d", what, len(got), len(files))
	}
	for i, p := range got {
		logits, probs := refPrediction(t, m, files[i], flip)
		if p.Image != files[i] || len(p.Logits) != 10 || len(p.Probs) != 10 || len(p.TopK) != 5 {
			t.Fatalf("%s: prediction %d: %+v, want image %s", what, i, p, files[i])
		}
		for c := range logits {
			if math.Abs(p.Logits[c]-logits[c]) > 1e-4*(1+math.Abs(logits[c])) || math.Abs(p.Probs[c]-probs[c]) > 1e-5 {
				t.Errorf("%s: %s class %d: logit %v prob %v, want %v and %v", what, files[i], c, p.Logits[c], p.Probs[c], logits[c], probs[c])
			}
		}
		for r, k := range p.TopK {
			if k.Prob != p.Probs[k.Index] || k.Label != strconv.Itoa(k.Index) || (r > 0 && k.Prob > p.TopK[r-1].Prob) {
				t.Errorf("%s: %s: top-k %+v", what, files[i], p.TopK)
			}
		}
	}
}

// predictInputs writes the images of the batch tests: a folder with a
// sub-folder and a non-image file, a folder for a glob, and a loose file;
// images at the model's side (used as is) and others (resized and
// cropped). It returns the inputs to give predict and the image files
// they name, sorted.
func predictInputs(t *testing.T) (inputs, files []string) {
	t.Helper()
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	for i, im := range []struct {
		name string
		w, h int
	}{{"a/p1.png", 32, 32}, {"a/deep/p2.png", 40, 36}, {"b/q1.png", 32, 32}, {"b/q2.jpg", 48, 64}, {"loose/s.png", 33, 31}} {
		writeNoiseImage(t, p(im.name), im.w, im.h, uint64(i))
	}
	for _, n := range []string{"a/notes.txt", "b/skip.txt"} {
		if err := os.WriteFile(p(n), []byte("not an image"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	inputs = []string{p("a"), p("b/*"), p("loose/s.png")}
	files = []string{p("a/deep/p2.png"), p("a/p1.png"), p("b/q1.png"), p("b/q2.jpg"), p("loose/s.png")}
	return inputs, files
}

// TestCLIPredictBatches: a folder, a quoted glob and a file give the sorted
// image files; batched results (CSV, batches of 2 decoded by 2 workers)
// and one-at-a-time results (JSON lines, batches of 1) both equal an
// independent one-image forward of each file to float rounding, and parse
// back with the right rows and columns; --tta flip equals the average of
// the softmaxes of the image and its mirror image computed here.
func TestCLIPredictBatches(t *testing.T) {
	m, model := predictModel(t)
	inputs, files := predictInputs(t)
	out := t.TempDir()
	run := func(extra ...string) string {
		t.Helper()
		args := append([]string{"predict", "--checkpoint", model, "--device", "cpu", "--threads", "1"}, extra...)
		stdout, errOut, code := runCLI(t, append(args, inputs...)...)
		if code != 0 {
			t.Fatalf("predict %v exited %d: %s", extra, code, errOut)
		}
		return stdout
	}

	csvPath := filepath.Join(out, "preds.csv")
	stdout := run("--batch-size", "2", "--workers", "2", "--topk", "3", "--out", csvPath)
	if !strings.Contains(stdout, "wrote 5 predictions (csv) to "+csvPath) || !strings.Contains(stdout, "images/s") {
		t.Errorf("predict --out printed %q", stdout)
	}
	rows := readCSV(t, csvPath)
	header := []string{"image", "index_0", "index_1", "index_2", "label_0", "label_1", "label_2", "prob_0", "prob_1", "prob_2"}
	if len(rows) != 1+len(files) || !slices.Equal(rows[0], header) {
		t.Fatalf("CSV: header %q and %d rows; want %q and %d", rows[0], len(rows)-1, header, len(files))
	}
	for i, row := range rows[1:] {
		_, probs := refPrediction(t, m, files[i], false)
		order := make([]int, len(probs))
		for c := range order {
			order[c] = c
		}
		slices.SortStableFunc(order, func(a, b int) int { return -cmpFloat(probs[a], probs[b]) })
		if row[0] != files[i] {
			t.Fatalf("CSV row %d is %s, want %s", i+1, row[0], files[i])
		}
		for r := 0; r < 3; r++ {
			idx, _ := strconv.Atoi(row[1+r])
			prob, err := strconv.ParseFloat(row[7+r], 64)
			if err != nil || row[4+r] != row[1+r] || math.Abs(prob-probs[idx]) > 1e-5 || math.Abs(prob-probs[order[r]]) > 1e-5 {
				t.Errorf("CSV %s rank %d: index %s label %s prob %s; want class %d (prob %v)", files[i], r, row[1+r], row[4+r], row[7+r], order[r], probs[order[r]])
			}
		}
	}

	jsonl := filepath.Join(out, "preds.jsonl")
	run("--batch-size", "1", "--out", jsonl)
	checkJSONPredictions(t, "batch 1", readJSONLines(t, jsonl), m, files, false)

	tta := filepath.Join(out, "tta.out")
	run("--batch-size", "4", "--tta", "flip", "--format", "jsonl", "--out", tta)
	flipped := readJSONLines(t, tta)
	checkJSONPredictions(t, "--tta flip", flipped, m, files, true)
	plain := readJSONLines(t, jsonl)
	moved := 0.0
	for i := range plain {
		for c := range plain[i].Probs {
			moved = max(moved, math.Abs(plain[i].Probs[c]-flipped[i].Probs[c]))
		}
	}
	if moved < 1e-4 {
		t.Errorf("--tta flip changed no probability by more than %v: the mirror image was not used", moved)
	}

	// stdout: --json is CLI.md's list, in the same order.
	var list []jsonPrediction
	if err := json.Unmarshal([]byte(run("--json", "--batch-size", "3")), &list); err != nil {
		t.Fatal(err)
	}
	checkJSONPredictions(t, "--json", list, m, files, false)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestCLIPredictBadInputs: a corrupt image stops predict with an error
// naming it and leaves no --out file; --skip-bad-images skips and counts
// it; a pattern matching nothing, flags after the inputs and a --out of
// unknown format are refused.
func TestCLIPredictBadInputs(t *testing.T) {
	_, model := predictModel(t)
	dir := t.TempDir()
	writeNoiseImage(t, filepath.Join(dir, "good.png"), 32, 32, 1)
	bad := filepath.Join(dir, "sub", "bad.png")
	if err := os.MkdirAll(filepath.Dir(bad), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\nbroken"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "preds.csv")
	base := []string{"predict", "--checkpoint", model, "--device", "cpu", "--threads", "1", "--batch-size", "4", "--out", out}

	_, errOut, code := runCLI(t, append(base, dir)...)
	if code != 1 || !strings.Contains(errOut, bad) {
		t.Errorf("a corrupt image: exit %d, %q; want 1 and an error naming %s", code, errOut, bad)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "*")); len(left) != 0 {
		t.Errorf("a failed predict left %v", left)
	}

	_, errOut, code = runCLI(t, append(base, "--skip-bad-images", dir)...)
	if code != 0 || !strings.Contains(errOut, bad) || !strings.Contains(errOut, "skipped 1 of 2 images") {
		t.Errorf("--skip-bad-images: exit %d, %q; want 0 and a report naming %s", code, errOut, bad)
	}
	if rows := readCSV(t, out); len(rows) != 2 || rows[1][0] != filepath.Join(dir, "good.png") {
		t.Errorf("--skip-bad-images wrote %q, want the good image alone", rows)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{filepath.Join(dir, "*.jpg")}, 1, filepath.Join(dir, "*.jpg")},
		{[]string{dir, "--topk", "3"}, 2, "--topk"},
		{[]string{"--format", "xml", dir}, 2, `"xml"`},
		{[]string{"--tta", "crop", dir}, 2, `"crop"`},
		{[]string{"--json", dir}, 2, "--json"},
	} {
		_, errOut, code := runCLI(t, append(base, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("predict %v: exit %d, %q; want %d and a message naming %s", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}

// TestCLIEvalPredictEMA: eval --ema and predict --ema use the EMA weights
// of a training checkpoint (a run with --ema 0.5, whose EMA lags the
// model): their results differ from the model's and equal those of the
// EMA weights that convert --ema extracts; a file without EMA weights is
// refused naming it.
func TestCLIEvalPredictEMA(t *testing.T) {
	data := makeImageFolder(t, 8, 4)
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	if _, errOut, code := runCLI(t, trainArgs(data, run, "--ema", "0.5")...); code != 0 {
		t.Fatalf("train exited %d:\n%s", code, errOut)
	}
	last, converted := filepath.Join(run, "last.pt"), filepath.Join(dir, "ema.pt")
	if _, errOut, code := runCLI(t, "convert", "--in", last, "--out", converted, "--ema"); code != 0 {
		t.Fatalf("convert --ema exited %d: %s", code, errOut)
	}
	type evalOut struct {
		Top1, Loss float64
		Images     int
		EMA        bool
	}
	eval := func(args ...string) evalOut {
		t.Helper()
		js, errOut, code := runCLI(t, append([]string{"eval", "--json", "--threads", "1"}, args...)...)
		var ev evalOut
		if code != 0 || json.Unmarshal([]byte(js), &ev) != nil || ev.Images != 12 {
			t.Fatalf("eval %v: exit %d, %s %s", args, code, js, errOut)
		}
		return ev
	}
	model, ema, ref := eval("--checkpoint", last), eval("--checkpoint", last, "--ema"), eval("--checkpoint", converted)
	if model.EMA || !ema.EMA || ref.EMA {
		t.Errorf(`"ema": model %v, --ema %v, converted %v`, model.EMA, ema.EMA, ref.EMA)
	}
	if ema.Loss == model.Loss {
		t.Errorf("eval --ema loss %v equals the model's: the EMA weights were not used", ema.Loss)
	}
	if ema.Loss != ref.Loss || ema.Top1 != ref.Top1 {
		t.Errorf("eval --ema %+v, eval of convert --ema's file %+v: want equal", ema, ref)
	}

	img := filepath.Join(data, "test", "green")
	predict := func(args ...string) []jsonPrediction {
		t.Helper()
		js, errOut, code := runCLI(t, append(append([]string{"predict", "--json", "--threads", "1"}, args...), img)...)
		var preds []jsonPrediction
		if code != 0 || json.Unmarshal([]byte(js), &preds) != nil || len(preds) != 4 {
			t.Fatalf("predict %v: exit %d, %s %s", args, code, js, errOut)
		}
		return preds
	}
	pm, pe, pr := predict("--checkpoint", last), predict("--checkpoint", last, "--ema"), predict("--checkpoint", converted)
	for i := range pe {
		if !slices.Equal(pe[i].Probs, pr[i].Probs) || slices.Equal(pe[i].Probs, pm[i].Probs) {
			t.Errorf("%s: predict --ema %v, converted EMA %v, model %v", pe[i].Image, pe[i].Probs, pr[i].Probs, pm[i].Probs)
		}
	}

	for _, cmd := range [][]string{{"eval", "--checkpoint", converted, "--ema"}, {"predict", "--checkpoint", converted, "--ema", img}} {
		_, errOut, code := runCLI(t, cmd...)
		if code != 1 || !strings.Contains(errOut, converted) || !strings.Contains(errOut, "no EMA weights") {
			t.Errorf("%v: exit %d, %q; want 1 and an error naming the file", cmd, code, errOut)
		}
	}
}
