package datasets

import (
	"reflect"
	"sort"
	"testing"
)

// Shards deal the order as torch.utils.data.DistributedSampler does:
// indices = order + order[:pad]; rank r takes indices[r::count].
func TestShardDealsLikeDistributedSampler(t *testing.T) {
	order := []int{7, 3, 9, 0, 5, 1, 8, 2, 6, 4} // 10 samples
	// DistributedSampler(num_replicas=3, drop_last=False): total 12, padded
	// with the first two; rank 0 takes 0,3,6,9; rank 1 takes 1,4,7,10; ...
	want := [][]int{{7, 0, 8, 4}, {3, 5, 2, 7}, {9, 1, 6, 3}}
	for r := 0; r < 3; r++ {
		s := Shard{Rank: r, Count: 3, Pad: true}
		got := s.apply(append([]int(nil), order...))
		if !reflect.DeepEqual(got, want[r]) || s.Len(len(order)) != len(want[r]) {
			t.Errorf("padded rank %d: %v (Len %d), want %v", r, got, s.Len(len(order)), want[r])
		}
	}
	// Without padding every sample is in exactly one shard.
	var all []int
	for r := 0; r < 3; r++ {
		s := Shard{Rank: r, Count: 3}
		got := s.apply(append([]int(nil), order...))
		if len(got) != s.Len(len(order)) {
			t.Errorf("rank %d: %d samples, Len says %d", r, len(got), s.Len(len(order)))
		}
		all = append(all, got...)
	}
	sort.Ints(all)
	for i, v := range all {
		if v != i {
			t.Fatalf("unpadded shards together hold %v, want each of 0..9 once", all)
		}
	}
	// A data set smaller than the shard count is padded by repetition.
	if got := (Shard{Rank: 3, Count: 4, Pad: true}).apply([]int{5}); !reflect.DeepEqual(got, []int{5}) {
		t.Errorf("one sample, 4 shards: rank 3 gets %v", got)
	}
}

func TestLoaderShardSplitsEpochs(t *testing.T) {
	ds := newMemDataset(10, 8, 8)
	seen := map[int]int{}
	for r := 0; r < 2; r++ {
		l, err := NewLoader(ds, LoaderConfig{BatchSize: 2, Workers: 1, Shuffle: true, Seed: 3, Normalize: NormalizationFor(NameCIFAR10),
			Shard: Shard{Rank: r, Count: 2, Pad: true}})
		if err != nil {
			t.Fatal(err)
		}
		if l.NumBatches() != 3 {
			t.Errorf("rank %d: %d batches, want 3", r, l.NumBatches())
		}
		for _, idx := range l.Order(1) {
			seen[idx]++
		}
		l.Close()
	}
	if len(seen) != 10 {
		t.Errorf("two shards of epoch 1 cover %d of 10 samples", len(seen))
	}
	if _, err := NewLoader(ds, LoaderConfig{BatchSize: 2, Normalize: NormalizationFor(NameCIFAR10), Shard: Shard{Rank: 2, Count: 2}}); err == nil {
		t.Error("rank 2 of 2 accepted")
	}
}
