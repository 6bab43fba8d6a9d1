package datasets

import "math/rand/v2"

// Stream tags keep the generators of different uses apart.
const (
	streamSample  = 0x73616d706c65 // "sample"
	streamBatch   = 0x6261746368   // "batch"
	streamShuffle = 0x73687566     // "shuf"
)

// mix3 hashes (a, b, c) into two 64-bit words by chained SplitMix64 steps.
func mix3(a, b, c uint64) (uint64, uint64) {
	s := NewSplitMix64(a)
	s = NewSplitMix64(s.Uint64() ^ b)
	s = NewSplitMix64(s.Uint64() ^ c)
	return s.Uint64(), s.Uint64()
}

// SampleRNG returns the generator of sample index in epoch for a loader
// seed: a PCG (math/rand/v2) seeded from a SplitMix64 hash of the three
// numbers. Every random choice a Loader makes for a sample comes from it, so
// results do not depend on which worker handles the sample.
func SampleRNG(seed uint64, epoch, index int) *rand.Rand {
	return streamRNG(seed, epoch, streamSample, index)
}

// BatchRNG returns the generator of batch b of epoch, used for batch-level
// mixing.
func BatchRNG(seed uint64, epoch, b int) *rand.Rand {
	return streamRNG(seed, epoch, streamBatch, b)
}

func streamRNG(seed uint64, epoch int, stream uint64, i int) *rand.Rand {
	hi, lo := mix3(seed, uint64(epoch)^stream<<16, uint64(i))
	return rand.New(rand.NewPCG(hi, lo))
}

// ShuffleOrder returns the sample order of an epoch: a Fisher-Yates shuffle
// of 0..n-1 driven by SplitMix64 seeded from (seed, epoch), with
// j = Uint64() mod (i+1) as in PooledSplit.
func ShuffleOrder(n int, seed uint64, epoch int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	s, _ := mix3(seed, uint64(epoch)^streamShuffle<<16, 0)
	r := NewSplitMix64(s)
	for i := n - 1; i > 0; i-- {
		j := int(r.Uint64() % uint64(i+1))
		p[i], p[j] = p[j], p[i]
	}
	return p
}
