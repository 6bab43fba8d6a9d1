package train

import (
	"encoding/json"
	"fmt"

	"github.com/gsrmt/gsrmt/checkpoints"
)

// finetuneKey is the checkpoint's "config" entry that records the
// fine-tuning load report as JSON, so that a resumed run (which does not
// load the file again) still reports it in config.json.
const finetuneKey = "finetune_report"

// loadFinetune starts the freshly built model from o.Finetune's weights
// (checkpoints.LoadFinetune: everything must fit but the classifier, which
// keeps the model's own initialization when the class count differs). The
// optimizer, schedule and epoch start fresh. Every rank loads the file, so
// that each refuses a bad one; rank 0's weights are then broadcast.
func (r *run) loadFinetune() error {
	o := &r.o
	ck, err := checkpoints.OpenKey(o.Finetune, o.FinetuneKey)
	if err != nil {
		return fmt.Errorf("finetune: %w", err)
	}
	rep, err := checkpoints.LoadFinetune(r.model, ck)
	if err != nil {
		return fmt.Errorf("finetune: %w", err)
	}
	r.finetune = &rep
	fmt.Fprintln(o.Log, rep.Summary())
	return nil
}

// finetuneExtra is the report's checkpoint entry (none without one).
func (r *run) finetuneExtra(extra map[string]any) error {
	if r.finetune == nil {
		return nil
	}
	b, err := json.Marshal(r.finetune)
	if err != nil {
		return err
	}
	extra[finetuneKey] = string(b)
	return nil
}

// restoreFinetune reads the report a resumed checkpoint recorded.
func (r *run) restoreFinetune(extra map[string]any) error {
	s, ok := extra[finetuneKey].(string)
	if !ok {
		return nil
	}
	var rep checkpoints.FinetuneReport
	if err := json.Unmarshal([]byte(s), &rep); err != nil {
		return fmt.Errorf("the recorded fine-tuning report: %w", err)
	}
	r.finetune = &rep
	return nil
}
