package datasets

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// timmRepeatAug is timm's RepeatAugSampler.__iter__ written out literally
// (num_repeats, selected_round 256, selected_ratio = num_replicas) over a
// given permutation: the rank's dataset indices.
func timmRepeatAug(perm []int, repeats, replicas, rank int) []int {
	var indices []int
	for _, e := range perm { // torch.repeat_interleave
		for i := 0; i < repeats; i++ {
			indices = append(indices, e)
		}
	}
	numSamples := (len(perm)*repeats + replicas - 1) / replicas // ceil
	totalSize := numSamples * replicas
	if pad := totalSize - len(indices); pad > 0 {
		indices = append(indices, indices[:pad]...)
	}
	var mine []int
	for k := rank; k < totalSize; k += replicas { // indices[rank:total:replicas]
		mine = append(mine, indices[k])
	}
	selected := len(perm) / 256 * 256 / replicas // floor(n // 256 * 256 / ratio)
	return mine[:selected]
}

func keysToIndices(keys []int, repeats int) []int {
	out := make([]int, len(keys))
	for i, k := range keys {
		out[i] = k / repeats
	}
	return out
}

// TestRepeatAugKeysMatchTimm compares each rank's share with timm's
// sampler on the same permutation, with and without padding.
func TestRepeatAugKeysMatchTimm(t *testing.T) {
	for _, c := range []struct{ n, repeats, ranks int }{{600, 3, 4}, {300, 3, 7}, {1000, 3, 1}, {513, 2, 3}, {256, 4, 1}} {
		perm := rand.New(rand.NewPCG(uint64(c.n), 1)).Perm(c.n)
		for r := 0; r < c.ranks; r++ {
			keys := RepeatAugKeys(perm, c.repeats, Shard{Rank: r, Count: c.ranks})
			want := timmRepeatAug(perm, c.repeats, c.ranks, r)
			if got := keysToIndices(keys, c.repeats); !reflect.DeepEqual(got, want) {
				t.Errorf("n %d, %d repeats, rank %d of %d: %v..., timm %v...", c.n, c.repeats, r, c.ranks, got[:min(9, len(got))], want[:min(9, len(want))])
			}
			if len(keys) != repeatAugSelected(c.n, c.ranks) {
				t.Errorf("n %d rank %d: %d samples, selected %d", c.n, r, len(keys), repeatAugSelected(c.n, c.ranks))
			}
		}
	}
}

// TestRepeatAugLayout checks the properties timm's layout gives: across the
// ranks, the epoch is the prefix of [a a a b b b ...] of ranks * selected
// samples, so every image shown is shown `repeats` times (but the last,
// cut off); the copies of an image go to different ranks; the ranks'
// samples (as keys) are disjoint; the epoch changes the order.
func TestRepeatAugLayout(t *testing.T) {
	const n, repeats, ranks = 1024, 3, 4
	l := func(rank int) *Loader {
		ld, err := NewLoader(newMemDataset(n, 2, 2), LoaderConfig{BatchSize: 16, Shuffle: true, Seed: 5, Output: OutputUint8,
			Shard: Shard{Rank: rank, Count: ranks, Pad: true}, Repeats: repeats})
		if err != nil {
			t.Fatal(err)
		}
		return ld
	}
	count := map[int]int{}
	rankOf := map[int]map[int]bool{}
	keyRank := map[int]int{}
	for r := 0; r < ranks; r++ {
		ld := l(r)
		keys := ld.keys(3)
		if got, want := ld.NumBatches(), n/ranks/16; got != want {
			t.Errorf("rank %d: %d batches, want %d (epoch length as without repeats)", r, got, want)
		}
		for _, k := range keys {
			if prev, dup := keyRank[k]; dup {
				t.Fatalf("key %d on ranks %d and %d", k, prev, r)
			}
			keyRank[k] = r
			idx := k / repeats
			count[idx]++
			if rankOf[idx] == nil {
				rankOf[idx] = map[int]bool{}
			}
			rankOf[idx][r] = true
		}
		if reflect.DeepEqual(keys, ld.keys(4)) {
			t.Errorf("rank %d: epochs 3 and 4 have the same order", r)
		}
		if !reflect.DeepEqual(keys, ld.keys(3)) {
			t.Errorf("rank %d: epoch 3 differs from itself", r)
		}
		ld.Close()
	}
	partial := 0
	for idx, c := range count {
		if c != repeats {
			partial++
		}
		if len(rankOf[idx]) != c {
			t.Errorf("image %d: %d copies on %d ranks, want each on its own rank", idx, c, len(rankOf[idx]))
		}
	}
	// 1024 samples over the ranks: 341 images 3 times and one once.
	if len(count) != (n+repeats-1)/repeats || partial > 1 {
		t.Errorf("%d distinct images (%d not shown %d times), want %d", len(count), partial, repeats, (n+repeats-1)/repeats)
	}
}

// TestLoaderRepeatAugAugmentsCopiesApart runs an epoch with repeated
// augmentation: the copies of an image come in a row (one rank) and each
// gets its own random augmentation.
func TestLoaderRepeatAugAugmentsCopiesApart(t *testing.T) {
	noise := TransformFunc(func(img *Image, rng *rand.Rand) *Image {
		for i := range img.Pix {
			img.Pix[i] = uint8(rng.IntN(256))
		}
		return img
	})
	ds := newMemDataset(300, 4, 4)
	ld, err := NewLoader(ds, LoaderConfig{BatchSize: 12, Workers: 2, Shuffle: true, Seed: 9, Output: OutputUint8, Transform: noise, Repeats: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	batches := collect(t, ld, 0)
	if len(batches) != ld.NumBatches() || ld.NumBatches() != (256+11)/12 {
		t.Fatalf("%d batches, NumBatches %d, want %d", len(batches), ld.NumBatches(), (256+11)/12)
	}
	b := batches[0]
	per := b.C * b.H * b.W
	for i := 0; i+2 < b.N; i += 3 {
		if b.Indices[i] != b.Indices[i+1] || b.Indices[i] != b.Indices[i+2] {
			t.Fatalf("indices %v: want each image 3 times in a row", b.Indices)
		}
		a, c := b.Uint8[i*per:(i+1)*per], b.Uint8[(i+1)*per:(i+2)*per]
		if bytes.Equal(a, c) {
			t.Errorf("image %d: two copies augmented alike", b.Indices[i])
		}
	}
	if !reflect.DeepEqual(ld.Order(0)[:b.N], b.Indices) {
		t.Errorf("Order %v, batch %v", ld.Order(0)[:b.N], b.Indices)
	}
	// Too few images for timm's rounding to 256 per epoch.
	_, err = NewLoader(newMemDataset(255, 2, 2), LoaderConfig{BatchSize: 4, Output: OutputUint8, Repeats: 3, Shard: Shard{Rank: 0, Count: 2}})
	if err == nil || !strings.Contains(err.Error(), "at least 256 training images") {
		t.Errorf("255 images on 2 ranks: %v", err)
	}
}
