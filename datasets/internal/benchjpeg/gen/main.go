// Command gen writes the benchmark's folder of real-size JPEGs (see package
// benchjpeg) and prints the path of its train split:
//
//	go run ./datasets/internal/benchjpeg/gen -out /tmp/gsrmt-bench-jpegs
//
// An up-to-date folder is reused. -cifar defaults to GSRMT_CIFAR10_DIR, else
// ../shared/data/cifar10 next to the repository.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gsrmt/gsrmt/datasets/internal/benchjpeg"
)

func main() {
	out := flag.String("out", os.Getenv("GSRMT_BENCH_JPEG_DIR"), "output folder (default $GSRMT_BENCH_JPEG_DIR)")
	cifar := flag.String("cifar", os.Getenv("GSRMT_CIFAR10_DIR"), "CIFAR-10 JPEG folder (train/<class>/*.jpg)")
	perClass := flag.Int("per-class", 0, "images per class (0: the benchmark's default)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "gen: -out or GSRMT_BENCH_JPEG_DIR is required")
		os.Exit(2)
	}
	if *cifar == "" {
		*cifar = filepath.Join("..", "shared", "data", "cifar10")
	}
	cfg := benchjpeg.Default(*cifar)
	if *perClass > 0 {
		cfg.PerClass = *perClass
	}
	train, err := benchjpeg.Ensure(*out, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	fmt.Println(train)
}
