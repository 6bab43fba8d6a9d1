package torchfmt_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/gsrmt/gsrmt/checkpoints/torchfmt"
)

func Example() {
	dir, err := os.MkdirTemp("", "ckpt")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	w, err := torchfmt.FromFloat32(torchfmt.Float32, []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	if err != nil {
		log.Fatal(err)
	}
	model := torchfmt.NewOrderedDict()
	model.Set("head.weight", w)
	// A transposed view of the same storage: saved once, loaded shared.
	model.Set("head.weight_t", &torchfmt.Tensor{Storage: w.Storage, Shape: []int64{3, 2}, Stride: []int64{1, 3}})
	ckpt := torchfmt.NewDict()
	ckpt.Set("epoch", 3)
	ckpt.Set("model", model)

	path := filepath.Join(dir, "last.pt") // torch.load(path, weights_only=True) opens it
	if err := torchfmt.Save(path, ckpt); err != nil {
		log.Fatal(err)
	}
	v, err := torchfmt.Load(path)
	if err != nil {
		log.Fatal(err)
	}
	state, _ := v.(*torchfmt.Dict).Get("model")
	for _, e := range state.(*torchfmt.Dict).Entries() {
		t := e.Value.(*torchfmt.Tensor)
		values, _ := t.Float32s()
		fmt.Println(e.Key, t.DType(), t.Shape, values)
	}
	// Output:
	// head.weight float32 [2 3] [1 2 3 4 5 6]
	// head.weight_t float32 [3 2] [1 4 2 5 3 6]
}
