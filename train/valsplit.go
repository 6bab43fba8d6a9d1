package train

import (
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"sort"
	"strconv"

	"github.com/gsrmt/gsrmt/datasets"
)

// valSplitDataset is --val-split's value that picks the data set's own
// val split (a val/ folder next to train/ and test/).
const valSplitDataset = "dataset"

// parseValSplit reads --val-split: a held-out fraction in (0, 1), or
// valSplitDataset (own = true). "" is none: fraction 0, own false.
func parseValSplit(s string) (fraction float64, own bool, err error) {
	switch s {
	case "":
		return 0, false, nil
	case valSplitDataset:
		return 0, true, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0 && f < 1) {
		return 0, false, fmt.Errorf("val-split %q: want a fraction of the training set in (0, 1), e.g. 0.1, or %q for the data set's own val split", s, valSplitDataset)
	}
	return f, false, nil
}

// HoldOut splits the positions of a training set, whose sample i has label
// labels[i] in [0, len(classes)), into training and validation positions,
// stratified per class. For each class k, in label order:
//
//  1. p := the positions of class k, ascending (n of them);
//  2. r := SplitMix64 seeded with seed XOR FNV-1a-64("val/" + classes[k]);
//  3. for i from n-1 down to 1, swap p[i] with p[r.Uint64() mod (i+1)];
//  4. the last round(fraction * n) of p (half away from zero; at most
//     n - 1, so that every class keeps a training image) go to validation,
//     the rest stay in training.
//
// Both lists come back sorted ascending. The same labels, fraction and
// seed give the same split on every machine.
func HoldOut(labels []int, classes []string, fraction float64, seed uint64) (train, val []int, err error) {
	byClass := make([][]int, len(classes))
	for i, l := range labels {
		if l < 0 || l >= len(classes) {
			return nil, nil, fmt.Errorf("hold out: sample %d has label %d, want 0 to %d", i, l, len(classes)-1)
		}
		byClass[l] = append(byClass[l], i)
	}
	for k, p := range byClass {
		n := len(p)
		if n == 0 {
			continue
		}
		h := fnv.New64a()
		h.Write([]byte("val/" + classes[k]))
		r := datasets.NewSplitMix64(seed ^ h.Sum64())
		for i := n - 1; i > 0; i-- {
			j := int(r.Uint64() % uint64(i+1))
			p[i], p[j] = p[j], p[i]
		}
		nVal := min(int(math.Round(fraction*float64(n))), n-1)
		train = append(train, p[:n-nVal]...)
		val = append(val, p[n-nVal:]...)
	}
	sort.Ints(train)
	sort.Ints(val)
	return train, val, nil
}

// openValSplit takes the validation split of a run out of its training split
// tr (opened from dir): the held-out fraction of --val-split, or the data
// set's own val split. It returns the training images left, the
// validation images and the rule, as config.json records it.
func openValSplit(o *Options, dir string, tr datasets.Dataset, opts datasets.OpenOptions) (train, val datasets.Dataset, rule string, err error) {
	fraction, own, err := parseValSplit(o.ValSplit)
	if err != nil {
		return nil, nil, "", err
	}
	if own {
		val, err := datasets.Open(o.Dataset, dir, datasets.Val, opts)
		if err == nil && val.Len() == 0 {
			err = fmt.Errorf("it is empty")
		}
		if err != nil {
			return nil, nil, "", fmt.Errorf("val-split %s: %s at %s has no val split of its own (%v): hold out a fraction of the training set instead, e.g. --val-split 0.1",
				valSplitDataset, o.Dataset, dir, err)
		}
		if !slices.Equal(val.Classes(), tr.Classes()) {
			return nil, nil, "", fmt.Errorf("val-split %s: the val split's classes %v differ from the training split's %v", valSplitDataset, val.Classes(), tr.Classes())
		}
		return tr, val, "the data set's own val split", nil
	}
	keep, held, err := HoldOut(datasets.Labels(tr), tr.Classes(), fraction, o.SplitSeed)
	if err != nil {
		return nil, nil, "", err
	}
	if len(held) == 0 {
		return nil, nil, "", fmt.Errorf("val-split %s: holds out no image of the %d training images (each class keeps at least one): choose a larger fraction",
			o.ValSplit, tr.Len())
	}
	if train, err = datasets.Subset(tr, keep); err != nil {
		return nil, nil, "", err
	}
	if val, err = datasets.Subset(tr, held); err != nil {
		return nil, nil, "", err
	}
	rule = fmt.Sprintf("held out of the training split: per class, round(%g x its images) (at most all but one), shuffled with SplitMix64 seeded by split seed %d xor FNV-1a-64(\"val/\" + class)",
		fraction, o.SplitSeed)
	return train, val, rule, nil
}
