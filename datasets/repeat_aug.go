package datasets

import "fmt"

// Repeated augmentation follows timm's RepeatAugSampler
// (timm/data/distributed_sampler.py, itself DeiT's RASampler, which RMT's
// main.py uses with its 3 repeats): the epoch's shuffled order has every
// index repeated Repeats times in a row ([a a a b b b ...]), is padded with
// its own beginning to a multiple of the rank count, and is dealt to the
// ranks round-robin (rank r takes positions r, r+R, ...), so that the
// copies of an image go to different ranks; each rank then keeps only its
// first floor(n // 256 * 256 / R) samples, so an epoch is as long as
// without repeats and shows about n / Repeats distinct images, each
// Repeats times.

// repeatAugRound is timm's selected_round: the per-epoch sample count is
// rounded down to a multiple of it before it is divided among the ranks.
const repeatAugRound = 256

// repeatAugSelected is the number of samples each of ranks ranks takes
// per epoch of an n-image data set (timm's num_selected_samples).
func repeatAugSelected(n, ranks int) int {
	return n / repeatAugRound * repeatAugRound / ranks
}

// EpochLen is the number of samples a rank (shard) takes per epoch of an
// n-image data set: Shard.Len, or with repeats above 1 timm's
// num_selected_samples (repeated augmentation).
func EpochLen(n int, shard Shard, repeats int) int {
	if repeats > 1 {
		return repeatAugSelected(n, max(1, shard.Count))
	}
	return shard.Len(n)
}

// checkRepeatAug says why repeated augmentation cannot run over n images
// with this shard, or nil.
func checkRepeatAug(n, repeats int, shard Shard) error {
	if repeats < 0 {
		return fmt.Errorf("loader: %d repeats, want 0 or 1 (off) or more", repeats)
	}
	ranks := max(1, shard.Count)
	if repeats > 1 && repeatAugSelected(n, ranks) == 0 {
		return fmt.Errorf("loader: repeated augmentation keeps floor(%d images / %d) * %d / %d ranks = 0 samples per rank and epoch (timm's RepeatAugSampler): it needs at least %d training images",
			n, repeatAugRound, repeatAugRound, ranks, repeatAugRound*((ranks+repeatAugRound-1)/repeatAugRound))
	}
	return nil
}

// RepeatAugKeys returns one rank's samples of an epoch under repeated
// augmentation, as keys index*repeats + copy: order is the epoch's order of
// the n = len(order) images (shuffled by epoch, the same on every rank).
// The key tells the copies of an image apart, so that each gets its own
// random augmentation.
func RepeatAugKeys(order []int, repeats int, shard Shard) []int {
	ranks, rank := max(1, shard.Count), shard.Rank
	if shard.Count <= 1 {
		rank = 0
	}
	keys := make([]int, 0, len(order)*repeats)
	for _, idx := range order {
		for c := 0; c < repeats; c++ {
			keys = append(keys, idx*repeats+c)
		}
	}
	perRank := (len(keys) + ranks - 1) / ranks
	for total := perRank * ranks; len(keys) < total; {
		keys = append(keys, keys[:min(total-len(keys), len(keys))]...)
	}
	mine := make([]int, 0, perRank)
	for k := rank; k < len(keys); k += ranks {
		mine = append(mine, keys[k])
	}
	return mine[:min(len(mine), repeatAugSelected(len(order), ranks))]
}
