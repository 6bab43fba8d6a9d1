package train

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"github.com/gsrmt/gsrmt/checkpoints"
	"github.com/gsrmt/gsrmt/datasets"
	"github.com/gsrmt/gsrmt/internal/atomicfile"
	"github.com/gsrmt/gsrmt/internal/plot"
)

// MetricsColumns are metrics.csv's columns (CLI.md), then ema_test_top1,
// skipped_images (corrupt training images skipped in the epoch,
// --skip-bad-images), the validation split's columns (--val-split), the
// EMA's other columns (--ema), empty where not measured
// (docs/MODEL-SELECTION.md), and skipped_steps (optimizer steps skipped for
// non-finite fp16 gradients).
var MetricsColumns = []string{"epoch", "lr", "train_loss", "train_top1", "test_loss", "test_top1", "test_top5", "images_per_s", "seconds", "ema_test_top1", "skipped_images",
	"val_loss", "val_top1", "val_top5", "ema_test_loss", "ema_test_top5", "ema_val_loss", "ema_val_top1", "ema_val_top5", "skipped_steps"}

func fmtFloat(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', 8, 64)
}

// writeMetrics rewrites metrics.csv (one row per finished epoch) and the
// curves PNG in the run folder, each atomically.
func writeMetrics(dir string, rows []EpochMetrics, title string) error {
	path := filepath.Join(dir, "metrics.csv")
	var points []plot.EpochPoint
	err := atomicfile.Write(path, func(f io.Writer) error {
		w := csv.NewWriter(f)
		_ = w.Write(MetricsColumns)
		for _, m := range rows {
			_ = w.Write([]string{strconv.Itoa(m.Epoch), fmtFloat(m.LR), fmtFloat(m.TrainLoss), fmtFloat(m.TrainTop1),
				fmtFloat(m.TestLoss), fmtFloat(m.TestTop1), fmtFloat(m.TestTop5), fmtFloat(m.ImagesPerS), fmtFloat(m.Seconds),
				fmtFloat(m.EMATop1), strconv.FormatInt(m.SkippedImages, 10),
				fmtFloat(m.ValLoss), fmtFloat(m.ValTop1), fmtFloat(m.ValTop5), fmtFloat(m.EMATestLoss), fmtFloat(m.EMATestTop5),
				fmtFloat(m.EMAValLoss), fmtFloat(m.EMAValTop1), fmtFloat(m.EMAValTop5), strconv.FormatInt(m.SkippedSteps, 10)})
		}
		w.Flush()
		return w.Error()
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	for _, m := range rows {
		points = append(points, plot.EpochPoint{Epoch: m.Epoch, LR: m.LR, TrainLoss: m.TrainLoss, TrainTop1: m.TrainTop1,
			TestLoss: m.TestLoss, TestTop1: m.TestTop1, TestTop5: m.TestTop5})
	}
	return plot.Curves(filepath.Join(dir, "curves.png"), title, points)
}

// runConfig is config.json: every value the run actually used. The
// description of the data (data set, folder, class names, image size,
// normalization, split seed, recipe) is the RunInfo the checkpoints record,
// under the same names.
type runConfig struct {
	Model any `json:"model"`
	checkpoints.RunInfo
	Classes        int     `json:"classes"`
	TrainImages    int     `json:"train_images"`
	TestImages     int     `json:"test_images"`
	SplitRule      string  `json:"split_rule,omitempty"`
	TrainAugment   string  `json:"train_augment"`
	EvalTransform  string  `json:"eval_transform"`
	TransformRule  string  `json:"transform_rule"` // why train_augment and eval_transform were chosen
	GrayToRGB      bool    `json:"gray_to_rgb"`
	Epochs         int     `json:"epochs"`
	BatchSize      int     `json:"batch_size"` // the global batch: RankBatchSize on each of WorldSize ranks
	WorldSize      int     `json:"world_size"`
	RankBatchSize  int     `json:"rank_batch_size"`
	DistBackend    string  `json:"dist_backend,omitempty"`
	SyncBN         bool    `json:"sync_bn"` // BatchNorm statistics over the global batch (in a group)
	StepsPerEpoch  int     `json:"steps_per_epoch"`
	LR             float64 `json:"lr"`
	MinLR          float64 `json:"min_lr"`
	WarmupEpochs   float64 `json:"warmup_epochs"`
	WarmupSteps    int64   `json:"warmup_steps"`
	Optimizer      string  `json:"optimizer"`
	WeightDecay    float64 `json:"weight_decay"`
	LabelSmoothing float64 `json:"label_smoothing"`
	Mixup          float64 `json:"mixup"`
	CutMix         float64 `json:"cutmix"`
	RandAugment    bool    `json:"randaugment"`
	CropPadding    int     `json:"crop_padding"`
	RandomErasing  float64 `json:"random_erasing"`
	AugRepeats     int     `json:"aug_repeats"` // repeated augmentation's copies (0: off)
	// AA, Interpolation and RandomErasingMode are the augmentation flags
	// that train_augment describes in words.
	AA                string `json:"aa,omitempty"`
	Interpolation     string `json:"interpolation,omitempty"`
	RandomErasingMode string `json:"random_erasing_mode,omitempty"`
	// TensorBoard says whether the run writes TensorBoard event files (a
	// run started with --config writes them into its own folder).
	TensorBoard bool    `json:"tensorboard"`
	GradClip    float64 `json:"grad_clip"`
	EMA         float64 `json:"ema"`
	AMP         bool    `json:"amp"`
	DropLast    bool    `json:"drop_last"`
	Device      string  `json:"device"`
	Threads     int     `json:"threads"`
	Workers     int     `json:"workers"`
	Seed        uint64  `json:"seed"`
	LimitTrain  int     `json:"limit_train"`
	LimitEval   int     `json:"limit_eval"`
	EvalEvery   int     `json:"eval_every"`
	Resume      string  `json:"resume,omitempty"`
	// ResumeChanged lists the options this run changed from the checkpoint
	// it resumed (ResumeMayChange), as "name old -> new".
	ResumeChanged []string `json:"resume_changed,omitempty"`
	// SkippedImages counts the training images skipped so far because they
	// failed to load (--skip-bad-images); per epoch in metrics.csv.
	SkippedImages int64 `json:"skipped_images"`
	// SaveEverySteps, KeepCheckpoints, SkipBadImages and Download complete
	// the recorded options, so that --config FILE reproduces every one.
	SaveEverySteps  int  `json:"save_every_steps"`
	KeepCheckpoints int  `json:"keep_checkpoints"`
	SkipBadImages   bool `json:"skip_bad_images"`
	Download        bool `json:"download"`
	// Finetune and FinetuneKey are the --finetune and --key flags (so that
	// --config reproduces them); FinetuneReport is what --finetune loaded:
	// the file, its entry, and the names loaded, skipped and re-initialized.
	Finetune       string                      `json:"finetune,omitempty"`
	FinetuneKey    string                      `json:"key,omitempty"`
	FinetuneReport *checkpoints.FinetuneReport `json:"finetune_report,omitempty"`

	// With a validation split (--val-split): its images and how they were
	// drawn. SelectOn names the split whose top-1 chooses best.pt and the
	// --keep-checkpoints history; Best and BestTest say what best.pt holds
	// (docs/MODEL-SELECTION.md).
	ValImages    int         `json:"val_images,omitempty"`
	ValSplit     string      `json:"val_split,omitempty"`
	ValSplitRule string      `json:"val_split_rule,omitempty"`
	SelectOn     string      `json:"select_on"`
	Best         *bestReport `json:"best,omitempty"`
	BestTest     *EvalResult `json:"best_test,omitempty"`
	// SkippedSteps counts the optimizer steps skipped so far for non-finite
	// fp16 gradients; per epoch in metrics.csv.
	SkippedSteps int64 `json:"skipped_steps"`
	// GradAccumSteps micro-batches of BatchSize images make one optimizer
	// step (EffectiveBatch images); CheckpointActivations recomputes the
	// stages in backward; AMPDType is autocast's dtype with AMP.
	GradAccumSteps        int    `json:"grad_accum_steps"`
	EffectiveBatch        int    `json:"effective_batch_size"`
	CheckpointActivations bool   `json:"checkpoint_activations"`
	AMPDType              string `json:"amp_dtype,omitempty"`
	// TF32 and CuDNNBenchmark are the CUDA speed settings the run used
	// (CUDASpeed); absent on the CPU, where they do not apply.
	TF32           *bool `json:"tf32,omitempty"`
	CuDNNBenchmark *bool `json:"cudnn_benchmark,omitempty"`
}

// runInfo describes the run's data, for config.json and the checkpoints.
func (r *run) runInfo() checkpoints.RunInfo {
	o, n := &r.o, r.data.Normalize
	return checkpoints.RunInfo{Dataset: o.Dataset, DataDir: o.DataDir, ClassNames: r.classes, ImgSize: o.ImgSize,
		NormMean: n.Mean[:], NormStd: n.Std[:], SplitSeed: o.SplitSeed, Recipe: o.Recipe}
}

func writeConfig(path string, r *run) error {
	o := &r.o
	n := r.data.Normalize
	c := runConfig{
		Model: o.Model, RunInfo: r.runInfo(), Classes: len(r.classes),
		TrainImages: r.data.Train.Len(), TestImages: r.data.Test.Len(),
		TrainAugment: r.data.TrainAugment, EvalTransform: r.data.EvalTransform, TransformRule: r.data.TransformRule,
		GrayToRGB: n.OutChannels == 3 && datasets.NativeSide(o.Dataset) == 28,
		Epochs:    o.Epochs, BatchSize: o.Batch, WorldSize: o.WorldSize, RankBatchSize: o.Batch / o.WorldSize, StepsPerEpoch: r.spe, LR: o.LR, MinLR: o.MinLR,
		WarmupEpochs: o.WarmupEpochs, WarmupSteps: r.sched.WarmupSteps, Optimizer: "adamw (0.9, 0.999), eps 1e-8, decoupled decay, none on biases/norms/layerscale",
		WeightDecay: o.WeightDecay, LabelSmoothing: o.LabelSmoothing, Mixup: o.Mixup, CutMix: o.CutMix, RandAugment: o.RandAugment, CropPadding: o.CropPadding,
		RandomErasing: o.RandomErasing, AugRepeats: o.AugRepeats, AA: o.AA, Interpolation: o.Interpolation,
		RandomErasingMode: o.RandomErasingMode, TensorBoard: o.TensorBoard != "", GradClip: o.GradClip, EMA: o.EMA, AMP: o.AMP, DropLast: o.DropLast,
		Device: DeviceName(o.Device), Threads: o.Threads, Workers: o.Workers, Seed: o.Seed,
		LimitTrain: o.LimitTrain, LimitEval: o.LimitEval, EvalEvery: o.EvalEvery, Resume: o.Resume,
		SaveEverySteps: o.SaveEverySteps, KeepCheckpoints: o.KeepCheckpoints, SkipBadImages: o.SkipBadImages, Download: o.Download,
		Finetune: o.Finetune, FinetuneKey: o.FinetuneKey, FinetuneReport: r.finetune,
	}
	if o.Group != nil {
		c.DistBackend, c.SyncBN = o.Group.Backend(), o.SyncBN
	}
	if r.resumed != nil {
		_, c.ResumeChanged = compareOptions(r.resumed, o)
	}
	for _, m := range r.metrics {
		c.SkippedImages += m.SkippedImages
		c.SkippedSteps += m.SkippedSteps
	}
	c.GradAccumSteps, c.EffectiveBatch, c.CheckpointActivations = o.GradAccumSteps, o.Batch*o.GradAccumSteps, o.CheckpointActivations
	if o.AMP {
		c.AMPDType = o.AMPDType
	}
	c.TF32, c.CuDNNBenchmark = o.CUDASpeed.recorded(o.Device)
	c.SelectOn, c.Best, c.BestTest = o.selectionSplit(), r.bestReport(), r.bestTest
	if r.data.Val != nil {
		c.ValImages, c.ValSplit, c.ValSplitRule = r.data.Val.Len(), o.ValSplit, r.data.ValRule
	}
	if o.Dataset == "mini-imagenet" {
		c.SplitRule = fmt.Sprintf("pooled: per class sorted by name, shuffled with seed %d, first 5/6 train, last 1/6 test", o.SplitSeed)
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := atomicfile.Write(path, func(w io.Writer) error { _, err := w.Write(append(data, '\n')); return err }); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ConfigKeys lists the top-level keys a run's config.json may hold: the
// JSON names of its fields, in order. Readers of config.json (train
// --config) check their lists of known keys against it.
func ConfigKeys() []string {
	return jsonKeys(reflect.TypeOf(runConfig{}))
}

// jsonKeys are the JSON names of a struct's fields, with those of embedded
// structs in their place.
func jsonKeys(t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			keys = append(keys, jsonKeys(f.Type)...)
			continue
		}
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}
