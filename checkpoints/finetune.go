package checkpoints

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
)

// FinetuneReport says what LoadFinetune took from a checkpoint: config.json
// records it under "finetune".
type FinetuneReport struct {
	Source string `json:"source"`        // the file
	Kind   string `json:"kind"`          // Checkpoint.Kind
	Key    string `json:"key,omitempty"` // the entry the weights came from
	// StrippedPrefix was removed from every name ("module.", ...).
	StrippedPrefix string `json:"stripped_prefix,omitempty"`
	// Loaded are the model's entries copied from the file.
	Loaded []string `json:"loaded"`
	// Skipped are the file's classifier tensors that were not loaded, with
	// their shapes ("head.fc.weight (checkpoint [10 64], model [5 64])").
	Skipped []string `json:"skipped"`
	// Reinitialized are the model's entries that keep the values the
	// model's own initializer gave them: the classifier, when the file's
	// class count differs or the file has none.
	Reinitialized []string `json:"reinitialized"`
	// Ignored are the file's other entries (Checkpoint.Ignored).
	Ignored []string `json:"ignored,omitempty"`
	// FileClasses is the file's class count (rows of its classifier; 0
	// when it has none), Classes the model's.
	FileClasses int `json:"file_classes"`
	Classes     int `json:"classes"`
}

// LoadFinetune copies a checkpoint's weights into m, a freshly built model,
// for fine-tuning, as DeiT's --finetune does but stricter: every entry
// must fit exactly, except the classifier (gsrmt.Classifier), which is
// re-initialized when the file's has another class count (the same
// features, another number of rows) or is absent: it keeps the values
// m's initializer gave it, as a fresh model's. Anything else that does not
// fit (a missing or unexpected name, a shape or dtype that differs, a
// classifier over other features) is refused before anything is copied,
// with an error that lists the names and both shapes.
func LoadFinetune(m *gsrmt.Model, ck *Checkpoint) (FinetuneReport, error) {
	rep := FinetuneReport{Source: ck.Path, Kind: ck.Kind, Key: ck.Key, Ignored: ck.Ignored,
		Classes: m.Config.NumClasses, Loaded: []string{}, Skipped: []string{}, Reinitialized: []string{}}
	params := m.Params()
	model := make([]stateEntry, len(params))
	for i, p := range params {
		model[i] = stateEntry{name: p.Name, shape: p.Tensor.MustSize(), counter: p.Counter}
	}
	match, loads := matchState(model, ck.State)
	rep.StrippedPrefix = match.StrippedPrefix
	rep.FileClasses = fileClasses(ck.State, match.StrippedPrefix)
	head, err := classifierPlan(match, model)
	if err != nil {
		return rep, fmt.Errorf("checkpoints: %s: %w", ck.Path, err)
	}
	rep.Skipped, rep.Reinitialized = head.skipped, head.reinit
	for _, l := range loads {
		if err := copyEntry(m, l); err != nil {
			return rep, err
		}
		rep.Loaded = append(rep.Loaded, l.name)
	}
	return rep, nil
}

// headPlan is what happens to the classifier: the file's tensors skipped,
// the model's entries re-initialized.
type headPlan struct {
	skipped, reinit []string
}

// classifierPlan checks the problems matchState found: outside the
// classifier there may be none; the classifier's entries must all fit, all
// be absent, or all differ in the class count only.
func classifierPlan(match LoadReport, model []stateEntry) (headPlan, error) {
	var outside LoadReport
	var plan headPlan
	var headMissing, headMismatched int
	for _, n := range match.Missing {
		if gsrmt.IsClassifier(n) {
			headMissing++
			plan.reinit = append(plan.reinit, n)
		} else {
			outside.Missing = append(outside.Missing, n)
		}
	}
	outside.Unexpected = match.Unexpected
	for _, mm := range match.Mismatched {
		if gsrmt.IsClassifier(mm.Name) && otherClassCount(mm) {
			headMismatched++
			plan.reinit = append(plan.reinit, mm.Name)
			plan.skipped = append(plan.skipped, mm.String())
		} else {
			outside.Mismatched = append(outside.Mismatched, mm)
		}
	}
	if !outside.OK() {
		return plan, fmt.Errorf("the checkpoint does not fit the model (only the classifier %s may differ, in its class count): %s",
			gsrmt.Classifier, outside.Problems())
	}
	var headEntries int
	for _, e := range model {
		if gsrmt.IsClassifier(e.name) {
			headEntries++
		}
	}
	if n := headMissing + headMismatched; n > 0 && (n != headEntries || headMissing*headMismatched != 0) {
		return plan, fmt.Errorf("the checkpoint's classifier (%s) is partly there or partly fits (absent: %s; another class count: %s): want all of its tensors, of one class count, or none",
			gsrmt.Classifier, listOrNone(plan.reinit[:headMissing]), listOrNone(plan.skipped))
	}
	slices.Sort(plan.reinit)
	return plan, nil
}

// otherClassCount reports whether a mismatch is a classifier tensor of
// another class count: the same rank and the same sizes after the first.
func otherClassCount(mm Mismatch) bool {
	s, w := mm.StateShape, mm.ModelShape
	return mm.Reason == "shape" && len(s) == len(w) && len(s) > 0 && slices.Equal(s[1:], w[1:])
}

// fileClasses is the class count of a state_dict's classifier: the rows of
// its bias (0 when it has none).
func fileClasses(state *Dict, prefix string) int {
	v, _ := state.Get(prefix + gsrmt.Classifier + ".bias")
	if t, ok := v.(*Tensor); ok && len(t.Shape) == 1 {
		return int(t.Shape[0])
	}
	return 0
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// copyEntry copies one state_dict tensor that fits into the model.
func copyEntry(m *gsrmt.Model, l stateLoad) error {
	x, err := ToTorchTensor(l.t, gotch.CPU)
	if err != nil {
		return fmt.Errorf("checkpoints: load %s: %w", l.name, err)
	}
	err = m.SetTensor(l.name, x)
	x.MustDrop()
	if err != nil {
		return fmt.Errorf("checkpoints: load %s: %w", l.name, torch.Error(err))
	}
	return nil
}

// Summary is the report in a few lines for the log: the source, the counts,
// the classifier's fate, and what was ignored.
func (r FinetuneReport) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fine-tuning from %s (%s", r.Source, r.Kind)
	if r.Key != "" {
		fmt.Fprintf(&b, ", weights under %q", r.Key)
	}
	if r.StrippedPrefix != "" {
		fmt.Fprintf(&b, ", prefix %q removed", r.StrippedPrefix)
	}
	fmt.Fprintf(&b, "): loaded %d tensors", len(r.Loaded))
	switch {
	case len(r.Reinitialized) == 0:
		fmt.Fprintf(&b, ", the classifier included (%d classes)", r.Classes)
	case len(r.Skipped) > 0:
		fmt.Fprintf(&b, "\n  re-initialized %s: the file has %d classes, the data %d; skipped %s",
			strings.Join(r.Reinitialized, ", "), r.FileClasses, r.Classes, strings.Join(r.Skipped, ", "))
	default:
		fmt.Fprintf(&b, "\n  re-initialized %s: the file has no classifier", strings.Join(r.Reinitialized, ", "))
	}
	if len(r.Ignored) > 0 {
		fmt.Fprintf(&b, "\n  ignored the file's other entries: %s", strings.Join(r.Ignored, ", "))
	}
	return b.String()
}
