package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// makeCIFAR100Binary writes a cifar-100-binary folder under a new temporary
// folder: nTrain and nTest records (coarse label, fine label, 3072 pixels)
// and fine_label_names.txt naming the classes c00-c99.
func makeCIFAR100Binary(t *testing.T, nTrain, nTest int) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "cifar-100-binary")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	records := func(n, seed int) []byte {
		var out []byte
		for i := 0; i < n; i++ {
			fine := byte((i*7 + seed) % 100)
			out = append(out, fine/5, fine)
			for j := 0; j < 3072; j++ {
				out = append(out, byte(i*31+j*7+seed))
			}
		}
		return out
	}
	names := make([]string, 100)
	for i := range names {
		names[i] = fmt.Sprintf("c%02d", i)
	}
	files := map[string][]byte{
		"train.bin":            records(nTrain, 1),
		"test.bin":             records(nTest, 2),
		"fine_label_names.txt": []byte(strings.Join(names, "\n") + "\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(bin, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// train --dataset cifar100 reads a synthetic binary layout, trains a step
// of a 100-class model at CIFAR's 32 px with CIFAR-100's normalization and
// the small-image recipe, and eval reads the data set back by name.
func TestCLITrainCIFAR100(t *testing.T) {
	data := makeCIFAR100Binary(t, 16, 8)
	out := filepath.Join(t.TempDir(), "run")
	_, errOut, code := runCLI(t, "train", "--dataset", "cifar100", "--data-dir", data, "--preset", "nano",
		"--epochs", "1", "--batch-size", "16", "--lr", "2e-3", "--warmup-epochs", "0", "--mixup", "0", "--cutmix", "0",
		"--threads", "1", "--workers", "1", "--out", out)
	if code != 0 {
		t.Fatalf("train exited %d:\n%s", code, errOut)
	}
	var cfg struct {
		Dataset       string    `json:"dataset"`
		Classes       int       `json:"classes"`
		ClassNames    []string  `json:"class_names"`
		ImgSize       int       `json:"img_size"`
		NormMean      []float64 `json:"norm_mean"`
		TrainImages   int       `json:"train_images"`
		TestImages    int       `json:"test_images"`
		StepsPerEpoch int       `json:"steps_per_epoch"`
		TrainAugment  string    `json:"train_augment"`
		TransformRule string    `json:"transform_rule"`
	}
	if err := json.Unmarshal(mustRead(t, filepath.Join(out, "config.json")), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Dataset != "cifar100" || cfg.Classes != 100 || len(cfg.ClassNames) != 100 || cfg.ClassNames[99] != "c99" ||
		cfg.ImgSize != 32 || cfg.TrainImages != 16 || cfg.TestImages != 8 || cfg.StepsPerEpoch != 1 {
		t.Errorf("config.json: %+v", cfg)
	}
	if len(cfg.NormMean) != 3 || cfg.NormMean[0] < 0.507 || cfg.NormMean[0] > 0.5072 {
		t.Errorf("norm_mean %v, want CIFAR-100's (0.5071, 0.4865, 0.4409)", cfg.NormMean)
	}
	if cfg.TrainAugment != "random crop 32 with 4 px zero padding, horizontal flip 0.5" || !strings.HasPrefix(cfg.TransformRule, "small-image") {
		t.Errorf("train_augment %q, transform_rule %q", cfg.TrainAugment, cfg.TransformRule)
	}
	js, errOut, code := runCLI(t, "eval", "--checkpoint", filepath.Join(out, "best.pt"), "--json")
	if code != 0 {
		t.Fatalf("eval exited %d: %s", code, errOut)
	}
	var ev struct{ Images int }
	if err := json.Unmarshal([]byte(js), &ev); err != nil || ev.Images != 8 {
		t.Errorf("eval: %v %s", err, js)
	}
	// --download is refused for a data set that cannot be downloaded.
	_, errOut, code = runCLI(t, "train", "--dataset", "fashion-mnist", "--download", "--out", t.TempDir())
	if code != 2 || !strings.Contains(errOut, "cannot be downloaded") {
		t.Errorf("--download fashion-mnist: exit %d, stderr:\n%s", code, errOut)
	}
}
