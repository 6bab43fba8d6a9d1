package checkpoints_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/gsrmt/gsrmt/checkpoints"
)

func Example() {
	dir, err := os.MkdirTemp("", "ckpt")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	w, err := checkpoints.FromFloat32(checkpoints.Float32, []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	if err != nil {
		log.Fatal(err)
	}
	model := checkpoints.NewOrderedDict()
	model.Set("head.weight", w)
	// A transposed view of the same storage: saved once, loaded shared.
	model.Set("head.weight_t", &checkpoints.Tensor{Storage: w.Storage, Shape: []int64{3, 2}, Stride: []int64{1, 3}})
	ckpt := checkpoints.NewDict()
	ckpt.Set("format", "gsrmt-checkpoint-v1")
	ckpt.Set("epoch", 3)
	ckpt.Set("model", model)

	path := filepath.Join(dir, "last.pt") // torch.load(path, weights_only=True) opens it
	if err := checkpoints.Save(path, ckpt); err != nil {
		log.Fatal(err)
	}
	v, err := checkpoints.Load(path)
	if err != nil {
		log.Fatal(err)
	}
	state, err := checkpoints.ModelState(v)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range state.Entries() {
		t := e.Value.(*checkpoints.Tensor)
		values, _ := t.Float32s()
		fmt.Println(e.Key, t.DType(), t.Shape, values)
	}
	// Output:
	// head.weight float32 [2 3] [1 2 3 4 5 6]
	// head.weight_t float32 [3 2] [1 4 2 5 3 6]
}
