package datasets

import "fmt"

// subset is the samples of a data set at the given positions, in that order.
type subset struct {
	ds  Dataset
	idx []int
}

func (s *subset) Len() int          { return len(s.idx) }
func (s *subset) Classes() []string { return s.ds.Classes() }
func (s *subset) Label(i int) int   { return s.ds.Label(s.idx[i]) }
func (s *subset) Load(i int, dst *Image) error {
	if err := checkIndex("subset", i, len(s.idx)); err != nil {
		return err
	}
	return s.ds.Load(s.idx[i], dst)
}

// regionSubset is a subset of a data set that decodes image regions
// (FileDataset), keeping the loader's fused crop path.
type regionSubset struct {
	*subset
	rl regionLoader
}

func (s regionSubset) loadRegion(i int, dst *Image, file *[]byte, plan func(w, h int) (x, y, cw, ch int)) (int, int, error) {
	if err := checkIndex("subset", i, len(s.idx)); err != nil {
		return 0, 0, err
	}
	return s.rl.loadRegion(s.idx[i], dst, file, plan)
}

// Subset returns the samples of ds at positions idx (each in [0, ds.Len())),
// in that order, as a data set with ds's classes: a held-out validation
// split, or the training images left after it. A data set that decodes
// image regions keeps doing so through the subset.
func Subset(ds Dataset, idx []int) (Dataset, error) {
	n := ds.Len()
	for _, i := range idx {
		if i < 0 || i >= n {
			return nil, fmt.Errorf("subset: position %d out of range [0, %d)", i, n)
		}
	}
	s := &subset{ds: ds, idx: append([]int(nil), idx...)}
	if rl, ok := ds.(regionLoader); ok {
		return regionSubset{s, rl}, nil
	}
	return s, nil
}
