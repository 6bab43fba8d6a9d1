package train

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/gsrmt/gsrmt/datasets"
	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/dist"
	"github.com/sugarme/gotch"
)

// Options configures a training run (CLI.md's train flags). The JSON name of
// each field is its flag's name: a checkpoint records the options under those
// names (RecordedOptions), so that --resume restores them and a conflict is
// reported as the flag the user typed. Fields named "-" are not part of the
// run's identity (where and how fast it runs, where it writes).
type Options struct {
	Dataset       string `json:"dataset"` // cifar10, cifar100, mini-imagenet, fashion-mnist, mnist, imagefolder
	DataDir       string `json:"data-dir"`
	Download      bool   `json:"download"` // fetch CIFAR-10 or CIFAR-100 when it is missing
	SplitSeed     uint64 `json:"split-seed"`
	SkipBadImages bool   `json:"skip-bad-images"`

	Model          gsrmt.Config `json:"model"` // NumClasses is set from the data set
	ImgSize        int          `json:"img-size"`
	Recipe         string       `json:"recipe"` // recorded: default, cifar or mini-imagenet
	Epochs         int          `json:"epochs"`
	Batch          int          `json:"batch-size"`
	LR             float64      `json:"lr"` // peak learning rate
	MinLR          float64      `json:"min-lr"`
	WeightDecay    float64      `json:"weight-decay"`
	WarmupEpochs   float64      `json:"warmup-epochs"`   // warmup epochs
	LabelSmoothing float64      `json:"label-smoothing"` // label smoothing
	Mixup          float64      `json:"mixup"`           // Mixup alpha (0: off)
	CutMix         float64      `json:"cutmix"`          // CutMix alpha (0: off)
	RandAugment    bool         `json:"randaugment"`
	// AA is a timm RandAugment policy string (--aa rand-m9-mstd0.5-inc1;
	// "" none), see datasets.ParseTimmRandAugment.
	AA string `json:"aa"`
	// Interpolation of the training crop, of AA's geometric ops and of the
	// evaluation resize: "bicubic", or bilinear ("" or "bilinear").
	Interpolation string `json:"interpolation"`
	// AugRepeats, above 1, is the number of copies of repeated augmentation
	// (timm's RepeatAugSampler); 0 or 1 is off.
	AugRepeats int `json:"aug-repeats"`
	// RandomErasingMode is what Random Erasing writes: zeros in a box of
	// torchvision's size ("" or "zero"), or timm's mode "pixel" (per-pixel
	// normal noise, timm's scale 0.02-1/3 and ratio 0.3-1/0.3).
	RandomErasingMode string `json:"random-erasing-mode"`
	// CropPadding is the zero padding of the random crop of the small-image
	// recipe (datasets.SmallImageMaxScale); 0 turns the crop off.
	CropPadding   int     `json:"crop-padding"`
	RandomErasing float64 `json:"random-erasing"` // Random Erasing probability (0: off)
	GradClip      float64 `json:"grad-clip"`      // max global gradient norm (0: off)
	EMA           float64 `json:"ema"`            // EMA decay (0: off)
	AMP           bool    `json:"amp"`            // autocast on CUDA, in AMPDType
	DropLast      bool    `json:"drop-last"`

	// AMPDType is autocast's dtype with AMP: "bfloat16" (the default) or
	// "float16", which adds dynamic loss scaling (GradScaler, scaler.go).
	AMPDType string `json:"amp-dtype"`
	// GradAccumSteps is the number of micro-batches of Batch images whose
	// gradients are summed before each optimizer step (timm's
	// --grad-accum-steps): the effective batch is Batch x GradAccumSteps.
	GradAccumSteps int `json:"grad-accum-steps"`
	// CheckpointActivations recomputes each block's activations in
	// backward instead of keeping them (gsrmt.Model.ForwardCheckpointed).
	CheckpointActivations bool `json:"-"`
	// CUDASpeed (--tf32, --cudnn-benchmark) is set by Run on a CUDA device
	// and reported in config.json; a speed setting like Threads, it is not
	// recorded in the checkpoint, and a resumed run takes its own.
	CUDASpeed CUDASpeed `json:"-"`

	Device  gotch.Device `json:"-"`
	Threads int          `json:"-"`
	// FixedThreads keeps Threads libtorch threads on the CPU even while other
	// processes use the CPUs (--fixed-threads); without it a CPU run uses
	// the CPUs they leave free (coreShare).
	FixedThreads bool   `json:"-"`
	Workers      int    `json:"-"`
	Seed         uint64 `json:"seed"`
	Out          string `json:"-"`
	Resume       string `json:"-"`
	LimitTrain   int    `json:"limit-train"` // use the first N training images (0: all)
	LimitEval    int    `json:"limit-eval"`  // use the first N test images (0: all)
	EvalEvery    int    `json:"eval-every"`  // evaluate every N epochs (and after the last)
	// ValSplit (--val-split) is the validation split that chooses best.pt
	// and is reported each epoch (docs/MODEL-SELECTION.md): a fraction in
	// (0, 1) of the training set held out per class with --split-seed, or
	// "dataset" for the data set's own val split; "" for none.
	ValSplit string `json:"val-split"`
	// SelectOn (--select-on) is the split whose top-1 chooses best.pt and
	// the --keep-checkpoints history: "val" or "test"; "" means val with a
	// ValSplit and test without (selectionSplit).
	SelectOn string `json:"select-on"`

	// Overwrite lets the run replace a run already in Out (its files are
	// removed first); without it such a folder is refused (ErrRunExists).
	Overwrite bool `json:"-"`
	// ResetOptimizer lets Resume start from a file without optimizer state
	// (a converted or bare checkpoint) with fresh AdamW moments.
	ResetOptimizer bool `json:"-"`
	// Finetune starts a new run's model from this file's weights (a gsrmt
	// checkpoint, a bare state_dict, another script's checkpoint dict, or
	// safetensors), re-initializing the classifier when its class count
	// differs (docs/FINETUNING.md); the optimizer, schedule and epoch start
	// fresh. A resumed run does not load it again. FinetuneKey names the
	// file's entry that holds the weights ("": the default lookup).
	Finetune    string `json:"finetune"`
	FinetuneKey string `json:"key"`

	// Group, when set, makes the run one rank of a data-parallel group
	// (docs/DISTRIBUTED.md): Batch is the global batch, each rank trains on
	// Batch / size of it, and rank 0 alone writes Out.
	Group *dist.Group `json:"-"`
	// WorldSize is the number of ranks that trained the run (set by Run).
	WorldSize int `json:"world-size"`
	// SyncBN (--sync-bn) computes the BatchNorm statistics of training over
	// the global batch, reduced across the ranks in forward and backward as
	// torch.nn.SyncBatchNorm does (dist.Group.SyncBatchNorm), instead of
	// over each rank's share (DDP's default). With it the ranks' running
	// statistics stay identical, so the per-step broadcast of rank 0's is
	// skipped. In a single process (Group nil) it changes nothing: the
	// batch is already the global batch. Recorded, and fixed on resume.
	SyncBN bool `json:"sync-bn"`
	// CheckReplicas verifies after every step, not only after every epoch,
	// that the ranks hold identical weights (a debugging aid).
	CheckReplicas bool `json:"-"`
	// SaveEverySteps, when positive, also writes last.pt every that many
	// steps inside an epoch, bounding the work a crash loses.
	SaveEverySteps int `json:"save-every-steps"`
	// KeepCheckpoints, when positive, also keeps checkpoint-EPOCH.pt for
	// the KeepCheckpoints evaluated epochs with the best top-1 on the
	// selection split (SelectOn), as best.pt.
	KeepCheckpoints int `json:"keep-checkpoints"`
	// TensorBoard, when set, is the folder the run writes TensorBoard
	// event files to (--tensorboard; docs/LOGS.md).
	TensorBoard string `json:"tensorboard"`

	Log      io.Writer `json:"-"` // progress and messages
	Terminal bool      `json:"-"` // draw a progress bar instead of log lines
	// OnStep, when set, is called after every optimizer step with the
	// number of steps taken so far (tests use it to interrupt a run).
	OnStep func(step int64) `json:"-"`
}

// ResumeMayChange are the options that a resumed run may change on purpose:
// more epochs extend a run; the others do not change what is learned. Every
// other recorded option must equal the checkpoint's.
var ResumeMayChange = []string{"epochs", "eval-every", "data-dir", "download", "skip-bad-images", "world-size", "save-every-steps", "keep-checkpoints", "tensorboard"}

// ResumeConflicts compares the options of a run that resumes from a
// checkpoint with the options the checkpoint recorded, and returns one line
// per option that differs and may not change ("--lr 0.002 differs from the
// checkpoint's 0.001"), in field order.
func ResumeConflicts(saved, o *Options) []string {
	conflicts, _ := compareOptions(saved, o)
	return conflicts
}

// compareOptions lists the recorded options in which o differs from saved:
// those that may not change on resume, and those of ResumeMayChange
// ("epochs 10 -> 20"), each in field order.
func compareOptions(saved, o *Options) (conflicts, changes []string) {
	a, b := optionValues(saved), optionValues(o)
	for _, name := range optionNames() {
		switch {
		case a[name] == b[name]:
		case slices.Contains(ResumeMayChange, name):
			changes = append(changes, fmt.Sprintf("%s %s -> %s", name, a[name], b[name]))
		default:
			conflicts = append(conflicts, fmt.Sprintf("--%s %s differs from the checkpoint's %s", name, b[name], a[name]))
		}
	}
	return conflicts, changes
}

// optionNames are the recorded options' names in field order.
func optionNames() []string {
	t := reflect.TypeOf(Options{})
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if tag := t.Field(i).Tag.Get("json"); tag != "" && tag != "-" {
			names = append(names, tag)
		}
	}
	return names
}

// optionValues renders each recorded option as JSON text, the form in which
// checkpoints hold them. The model's NumClasses and ImageSize come from the
// data set and --img-size, so they are compared there.
func optionValues(o *Options) map[string]string {
	c := *o
	c.Model.NumClasses, c.Model.ImageSize = 0, 0
	raw, _ := json.Marshal(c)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

// Recipes are the data-set defaults of `--recipe`.
var Recipes = []string{"default", "cifar", "mini-imagenet", "rmt"}

// ApplyRecipe sets the hyper-parameters of a recipe (docs/RECIPES.md):
// "default" is DeiT's optimizer and mixing (AdamW lr 5e-4 x batch/512, weight decay 0.05, 5 warmup
// epochs, min lr 1e-5, smoothing 0.1, Mixup 0.8, CutMix 1.0, drop path of the
// preset); "cifar" trains from scratch on 32 px images (lr 1e-3 x batch/512,
// 300 epochs, 20 warmup, RandAugment on, no Random Erasing); "mini-imagenet"
// is the default at 224 px with RandAugment and Random Erasing 0.25 for 300
// epochs; "rmt" is RMT's classification main.py (see applyRMT). Flags given
// explicitly override these afterwards.
func (o *Options) ApplyRecipe(name string) error {
	o.Recipe = name
	o.WeightDecay, o.MinLR, o.LabelSmoothing, o.Mixup, o.CutMix = 0.05, 1e-5, 0.1, 0.8, 1.0
	o.WarmupEpochs = 5
	base := 5e-4
	batch := o.Batch
	if batch == 0 {
		batch = 128
	}
	batch *= max(1, o.GradAccumSteps) // timm scales by the effective batch
	switch name {
	case "default":
	case "cifar":
		base, o.WarmupEpochs, o.Epochs, o.RandAugment, o.RandomErasing = 1e-3, 20, 300, true, 0
		if o.ImgSize == 0 {
			o.ImgSize = 32
		}
	case "mini-imagenet":
		o.Epochs, o.RandAugment, o.RandomErasing = 300, true, 0.25
		if o.ImgSize == 0 {
			o.ImgSize = 224
		}
	case "rmt":
		o.applyRMT(batch)
	default:
		return fmt.Errorf("recipe %q: want one of %s", name, strings.Join(Recipes, ", "))
	}
	o.LR = base * float64(batch) / 512
	return nil
}

// Validate names the first option that is wrong.
func (o *Options) Validate() error {
	switch {
	case o.DataDir == "" && o.Dataset != "fashion-mnist" && o.Dataset != "mnist":
		return fmt.Errorf("data-dir: a folder is required for %s", o.Dataset)
	case o.Download && !datasets.Downloadable(o.Dataset):
		return fmt.Errorf("download: %s cannot be downloaded (only %s and %s can); put it in --data-dir", o.Dataset, datasets.NameCIFAR10, datasets.NameCIFAR100)
	case o.ImgSize < gsrmt.MinImageSize || o.ImgSize > gsrmt.MaxImageSize:
		return fmt.Errorf("img-size %d: want a side of %d to %d pixels", o.ImgSize, gsrmt.MinImageSize, gsrmt.MaxImageSize)
	case o.Epochs < 1:
		return fmt.Errorf("epochs %d: want at least 1", o.Epochs)
	case o.Batch < 1:
		return fmt.Errorf("batch-size %d: want at least 1", o.Batch)
	case !(o.LR > 0) || math.IsInf(o.LR, 0):
		return fmt.Errorf("lr %v: want a positive learning rate", o.LR)
	case o.MinLR < 0 || o.MinLR > o.LR:
		return fmt.Errorf("min-lr %v: want a value in [0, lr = %v]", o.MinLR, o.LR)
	case o.WeightDecay < 0:
		return fmt.Errorf("weight-decay %v: want a non-negative value", o.WeightDecay)
	case o.WarmupEpochs < 0:
		return fmt.Errorf("warmup-epochs %v: want a non-negative value", o.WarmupEpochs)
	case o.LabelSmoothing < 0 || o.LabelSmoothing >= 1:
		return fmt.Errorf("label-smoothing %v: want a value in [0, 1)", o.LabelSmoothing)
	case o.Mixup < 0:
		return fmt.Errorf("mixup %v: want a non-negative alpha (0 turns it off)", o.Mixup)
	case o.CutMix < 0:
		return fmt.Errorf("cutmix %v: want a non-negative alpha (0 turns it off)", o.CutMix)
	case o.CropPadding < 0 || o.CropPadding >= o.ImgSize:
		return fmt.Errorf("crop-padding %d: want 0 (no random crop) up to %d pixels", o.CropPadding, o.ImgSize-1)
	case o.RandomErasing < 0 || o.RandomErasing > 1:
		return fmt.Errorf("random-erasing %v: want a probability in [0, 1]", o.RandomErasing)
	case o.GradAccumSteps < 0:
		return fmt.Errorf("grad-accum-steps %d: want at least 1 (1: no accumulation)", o.GradAccumSteps)
	case o.AMPDType != "" && o.AMPDType != AMPBFloat16 && o.AMPDType != AMPFloat16:
		return fmt.Errorf("amp-dtype %q: want %s or %s", o.AMPDType, AMPBFloat16, AMPFloat16)
	case o.GradClip < 0:
		return fmt.Errorf("grad-clip %v: want a non-negative norm (0 turns it off)", o.GradClip)
	case o.EMA < 0 || o.EMA >= 1:
		return fmt.Errorf("ema %v: want a decay in (0, 1), e.g. 0.9998, or 0 for none", o.EMA)
	case o.Threads < 0:
		return fmt.Errorf("threads %d: want a positive count (0: libtorch's default)", o.Threads)
	case o.Workers < 0:
		return fmt.Errorf("workers %d: want a positive count (0: one per CPU)", o.Workers)
	case o.LimitTrain < 0 || o.LimitEval < 0:
		return fmt.Errorf("limit-train %d / limit-eval %d: want non-negative counts", o.LimitTrain, o.LimitEval)
	case o.KeepCheckpoints < 0:
		return fmt.Errorf("keep-checkpoints %d: want a non-negative count (0: best.pt and last.pt only)", o.KeepCheckpoints)
	case o.SaveEverySteps < 0:
		return fmt.Errorf("save-every-steps %d: want a non-negative count (0: at the end of each epoch only)", o.SaveEverySteps)
	case o.EvalEvery < 1:
		return fmt.Errorf("eval-every %d: want at least 1", o.EvalEvery)
	case o.Out == "":
		return fmt.Errorf("out: a run folder is required")
	}
	if err := o.validateAugment(); err != nil {
		return err
	}
	return o.validateSelection()
}

// DeviceName is how flags and config.json name a device: cpu or cuda:N.
func DeviceName(d gotch.Device) string {
	if d.Name == "CUDA" {
		return fmt.Sprintf("cuda:%d", d.Value)
	}
	return "cpu"
}

func nan() float64 { return math.NaN() }
