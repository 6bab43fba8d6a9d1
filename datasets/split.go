package datasets

import (
	"fmt"
	"math"
	"sort"
)

// SplitMix64 is the SplitMix64 generator (Steele, Lea and Flood 2014; the
// seeding generator of xoshiro): a tiny, fully specified PRNG whose output
// sequence is the same on every machine and Go version. The pooled split
// uses it so that the split can be reproduced from its documentation alone.
type SplitMix64 struct{ state uint64 }

// NewSplitMix64 returns a generator started from seed.
func NewSplitMix64(seed uint64) *SplitMix64 { return &SplitMix64{state: seed} }

// Uint64 returns the next value:
//
//	state += 0x9e3779b97f4a7c15
//	z := state
//	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
//	z = (z ^ z>>27) * 0x94d049bb133111eb
//	return z ^ z>>31
func (s *SplitMix64) Uint64() uint64 {
	s.state += 0x9e3779b97f4a7c15
	z := s.state
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// fnv1a64 is the 64-bit FNV-1a hash of s.
func fnv1a64(s string) uint64 {
	h := uint64(0xcbf29ce484222325)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 0x100000001b3
	}
	return h
}

// PooledSplitConfig parameterises the pooled split rule.
type PooledSplitConfig struct {
	// Seed of the per-class shuffles (DATA.md default 0).
	Seed uint64
	// ValFraction of each class's train part goes to validation (0: none).
	ValFraction float64
}

// String records the rule and its parameters, for a run's config.
func (c PooledSplitConfig) String() string {
	return fmt.Sprintf("pooled per-class split: sort by name, shuffle (SplitMix64, seed %d xor FNV-1a(class), Fisher-Yates), first 5/6 train, rest test, val fraction %g of train",
		c.Seed, c.ValFraction)
}

// Validate checks the configuration.
func (c PooledSplitConfig) Validate() error {
	if math.IsNaN(c.ValFraction) || c.ValFraction < 0 || c.ValFraction >= 1 {
		return fmt.Errorf("pooled split: validation fraction %g, want 0 <= f < 1", c.ValFraction)
	}
	return nil
}

// PooledSplit splits the n items of one class, already ordered by file name
// (or row index), into train, validation and test positions. The rule, so
// that it can be reproduced anywhere:
//
//  1. r := SplitMix64 seeded with cfg.Seed XOR FNV-1a-64(class).
//  2. Start from the identity order p = [0, 1, ..., n-1] and, for i from n-1
//     down to 1, swap p[i] with p[j] where j = r.Uint64() mod (i+1).
//  3. The first floor(5n/6) positions of p are train, the rest test
//     (500 / 100 of 600).
//  4. The last round(ValFraction * len(train)) train positions (half away
//     from zero) move to validation.
//
// Each returned list is sorted ascending. Seeding per class keeps a class's
// split independent of which other classes are present.
func PooledSplit(n int, class string, cfg PooledSplitConfig) (train, val, test []int) {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	r := NewSplitMix64(cfg.Seed ^ fnv1a64(class))
	for i := n - 1; i > 0; i-- {
		j := int(r.Uint64() % uint64(i+1))
		p[i], p[j] = p[j], p[i]
	}
	nTrain := 5 * n / 6
	nVal := int(math.Round(cfg.ValFraction * float64(nTrain)))
	if nVal > nTrain {
		nVal = nTrain
	}
	train = append([]int(nil), p[:nTrain-nVal]...)
	val = append([]int(nil), p[nTrain-nVal:nTrain]...)
	test = append([]int(nil), p[nTrain:]...)
	sort.Ints(train)
	sort.Ints(val)
	sort.Ints(test)
	return train, val, test
}

// pooledPick returns the positions of split among n sorted items of class.
func pooledPick(n int, class string, split Split, cfg PooledSplitConfig) []int {
	train, val, test := PooledSplit(n, class, cfg)
	switch split {
	case Train:
		return train
	case Val:
		return val
	}
	return test
}
