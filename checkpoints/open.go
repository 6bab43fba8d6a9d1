package checkpoints

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/gsrmt/gsrmt/checkpoints/torchfmt"
	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
)

// Checkpoint is what a weights file holds, whatever its format.
type Checkpoint struct {
	Path string
	// Kind is "gsrmt" (our training checkpoint, format gsrmt-checkpoint-v1),
	// "state_dict" (a bare state_dict), "dict" (a dict holding one, such
	// as the checkpoints of timm's, DeiT's or Swin's training scripts) or
	// "safetensors".
	Kind  string
	State *Dict // the model weights
	// Key is the entry of the file's dict that State came from ("model",
	// "state_dict", "ema", ...); "" for a bare state_dict or safetensors.
	Key string
	// Ignored lists the other entries of a "dict" file, in file order,
	// with what each holds when it is a dict or a record ("optimizer (dict
	// of 2)", "args (argparse.Namespace record)", "epoch").
	Ignored []string
	// Config is the model config the file records (nil when it has none);
	// Run the description of the data it was trained on (nil when the file
	// records none); ConfigExtra the other config entries.
	Config      *gsrmt.Config
	Run         *RunInfo
	ConfigExtra map[string]any
	// Training is the whole training state of a "gsrmt" file, else nil.
	Training *TrainingState
	// Metadata is a safetensors file's metadata.
	Metadata map[string]string
}

// Open reads a weights file once: a .pt written by torch.save or Save (our
// training checkpoint, a bare state_dict, or a dict holding one under
// "model", "state_dict" or "model_state_dict"), or a safetensors file (by
// extension or content), with the model config and run description when
// the file records them. Errors name the file.
func Open(path string) (*Checkpoint, error) {
	return OpenKey(path, "")
}

// OpenKey is Open with the entry that holds the weights named by key: in a
// dict checkpoint any entry that holds a state_dict ("model_ema",
// "state_dict_ema", ...), in our training checkpoint "model" or "ema". An
// empty key takes the first of DefaultStateKeys present, or the file itself
// when it is a bare state_dict; a safetensors file has no entries to name.
// A key the file lacks is an error (wrapping ErrNoKey) that lists the
// entries it has. A "module." or "_orig_mod." prefix on every name stays:
// LoadModelState and StripPrefix remove it.
func OpenKey(path, key string) (*Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	return readCheckpoint(f, fi.Size(), path, key)
}

// readCheckpoint is OpenKey on size bytes of r, with path naming them
// (and, by its extension, choosing safetensors).
func readCheckpoint(r io.ReaderAt, size int64, path, key string) (*Checkpoint, error) {
	ck := &Checkpoint{Path: path}
	if torchfmt.IsSafetensors(path, r) {
		if key != "" {
			return nil, fmt.Errorf("checkpoints: %s: %w %q: a safetensors file holds one state_dict, not named entries", path, ErrNoKey, key)
		}
		tensors, md, err := torchfmt.ReadSafetensors(r, size)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		ck.Kind, ck.State, ck.Metadata = "safetensors", torchfmt.TensorDict(tensors), md
		if _, ok := md["config"]; ok {
			cfg, run, extra, err := configFromMetadata(md)
			if err != nil {
				return nil, fmt.Errorf("checkpoints: %s: %w", path, err)
			}
			ck.Config, ck.Run, ck.ConfigExtra = &cfg, run, extra
		}
		return ck, nil
	}
	v, err := torchfmt.Read(r, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	top, ok := v.(*Dict)
	if !ok {
		return nil, fmt.Errorf("%s: checkpoints: checkpoint is a %T, not a dict", path, v)
	}
	if f, _ := top.Get("format"); f == Format {
		if err := ck.fromTraining(top, key); err != nil {
			return nil, fmt.Errorf("checkpoints: %s: %w", path, err)
		}
		return ck, nil
	}
	d, used, err := selectState(top, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ck.State, ck.Key, ck.Kind = d, used, "dict"
	if d == top {
		ck.Kind = "state_dict"
		return ck, nil
	}
	if cv, ok := top.Get("config"); ok {
		// A foreign checkpoint's "config" may be anything: use it only
		// when it is a valid gsrmt config.
		if m, err := plainDict(cv, "config"); err == nil {
			if cfg, run, extra, err := configFromMap(m); err == nil {
				ck.Config, ck.Run, ck.ConfigExtra = &cfg, run, extra
			}
		}
	}
	if ck.Config != nil {
		ck.Ignored = ignoredEntries(top, used, "config")
	} else {
		ck.Ignored = ignoredEntries(top, used)
	}
	return ck, nil
}

// fromTraining fills ck from our training checkpoint, with the weights
// under key: "model" (the default) or "ema".
func (ck *Checkpoint) fromTraining(top *Dict, key string) error {
	st, err := trainingFromValue(top)
	if err != nil {
		return err
	}
	cfg := st.ModelConfig
	ck.Kind, ck.State, ck.Key, ck.Config, ck.Run, ck.ConfigExtra, ck.Training = "gsrmt", st.Model, "model", &cfg, st.Run, st.ConfigExtra, st
	switch key {
	case "", "model":
	case "ema":
		if st.EMA == nil {
			return fmt.Errorf("%w \"ema\": this gsrmt checkpoint holds no EMA weights (trained without --ema)", ErrNoKey)
		}
		ck.State, ck.Key = st.EMA, "ema"
	default:
		return fmt.Errorf("%w %q: a gsrmt checkpoint holds its weights under \"model\" and, with an EMA, \"ema\"", ErrNoKey, key)
	}
	return nil
}

// LoadInto copies the checkpoint's weights into m, as LoadModelState does
// (strict or not). Errors name the file.
func (ck *Checkpoint) LoadInto(m *gsrmt.Model, strict bool) (LoadReport, error) {
	rep, err := LoadModelState(m, ck.State, strict)
	if err != nil {
		return rep, fmt.Errorf("%s: %w", ck.Path, err)
	}
	return rep, nil
}

// BuildModel builds the model cfg describes on device and loads the
// checkpoint's weights into it strictly, after CheckModelState has passed:
// a config beyond gsrmt's limits, or one that does not fit the file's
// tensors, is refused before anything is allocated. cfg is the file's own
// config (ck.Config), possibly with another ImageSize, or for a file
// without one the config the caller describes. Errors name the file and
// are one line (libtorch's are cut to their message).
func (ck *Checkpoint) BuildModel(cfg gsrmt.Config, device gotch.Device) (*gsrmt.Model, error) {
	if err := CheckModelState(cfg, ck.State); err != nil {
		return nil, fmt.Errorf("%s: %w", ck.Path, err)
	}
	m, err := gsrmt.New(cfg, device)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ck.Path, torch.Error(err))
	}
	if _, err := ck.LoadInto(m, true); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// LoadWeights opens a checkpoint and loads its weights into m (Open, then
// LoadInto). Errors name the file.
func LoadWeights(path string, m *gsrmt.Model, strict bool) (LoadReport, error) {
	ck, err := Open(path)
	if err != nil {
		return LoadReport{}, err
	}
	return ck.LoadInto(m, strict)
}

// ExportSafetensors writes the model's state_dict to path in the safetensors
// format, with the state_dict names, and the model config as JSON in the
// metadata (key "config", the form gsrmt.LoadConfig reads).
func ExportSafetensors(path string, m *gsrmt.Model) error {
	state, err := ModelStateDict(m)
	if err != nil {
		return err
	}
	cfg := m.Config
	return SaveStateSafetensors(path, state, &cfg, nil, nil)
}

// SaveStateSafetensors writes a state_dict to path in the safetensors format.
// Metadata: "format": "pt" (as Hugging Face tools expect), and when cfg is
// not nil "config" (the model config JSON) and, when run or extra is set,
// "config_extra" (JSON of the run's description and the other config
// entries).
func SaveStateSafetensors(path string, state *Dict, cfg *gsrmt.Config, run *RunInfo, extra map[string]any) error {
	tensors, err := torchfmt.NamedTensors(state)
	if err != nil {
		return fmt.Errorf("checkpoints: save %s: %w", path, err)
	}
	md := map[string]string{"format": "pt"}
	if cfg != nil {
		md["gsrmt_format"] = Format
		b, err := json.Marshal(*cfg)
		if err != nil {
			return fmt.Errorf("checkpoints: save %s: %w", path, err)
		}
		md["config"] = string(b)
	}
	rest, err := joinExtra(run, extra)
	if err == nil && len(rest) > 0 {
		var b []byte
		if b, err = jsonPlain(rest); err == nil {
			md["config_extra"] = string(b)
		}
	}
	if err != nil {
		return fmt.Errorf("checkpoints: save %s: config extra: %w", path, err)
	}
	return torchfmt.SaveSafetensors(path, tensors, md)
}
