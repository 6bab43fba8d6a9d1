package checkpoints_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/gsrmt/gsrmt/checkpoints"
	"github.com/gsrmt/gsrmt/gsrmt"
)

// A training checkpoint assembled from typed sections, and read back once
// by Open.
func Example() {
	dir, err := os.MkdirTemp("", "ckpt")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	cfg, err := gsrmt.PresetConfig("swat", "nano", 2)
	if err != nil {
		log.Fatal(err)
	}
	w, err := checkpoints.FromFloat32(checkpoints.Float32, []int64{2}, []float32{1, 2})
	if err != nil {
		log.Fatal(err)
	}
	state := checkpoints.NewOrderedDict()
	state.Set("head.fc.bias", w)
	path := filepath.Join(dir, "last.pt") // torch.load(path) opens it
	err = checkpoints.SaveTraining(path, nil, &checkpoints.TrainingState{
		ModelConfig: cfg,
		Model:       state,
		Run:         &checkpoints.RunInfo{Dataset: "imagefolder", ClassNames: []string{"cat", "dog"}, ImgSize: 64},
		Epoch:       1,
		Scheduler:   &checkpoints.SchedulerState{Type: "warmup-cosine", BaseLR: 1e-3, TotalSteps: 100, Step: 40},
		Position:    &checkpoints.Position{Epoch: 1, Batch: 15, BestTop1: 62.5, BestEpoch: 1},
	})
	if err != nil {
		log.Fatal(err)
	}

	ck, err := checkpoints.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	st := ck.Training
	fmt.Println(ck.Kind, ck.Config.Variant, ck.Run.ClassNames, ck.State.Len())
	fmt.Println(st.Scheduler.Step, st.Position.Batch, st.Position.BestTop1)
	// Output:
	// gsrmt swat [cat dog] 1
	// 40 15 62.5
}
