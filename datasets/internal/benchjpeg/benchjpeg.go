// Package benchjpeg generates the folder of real-size JPEGs that the 224 px
// training-pipeline benchmarks read (datasets' BenchmarkTrainLoader224 and
// bench/torchvision_pipeline.py), so that no image data is committed.
//
// Each image is a real CIFAR-10 training JPEG upscaled (bilinear) from 32x32
// to Width x Height, with photo-like texture added (smooth multi-scale noise
// in brightness and colour plus fine grain), then encoded by Go's image/jpeg
// at the given quality with 4:2:0 chroma subsampling, in ImageFolder layout:
// out/train/<class>/NNNN.jpg. Everything is derived from the source images
// and fixed seeds, so the folder is the same on every run (for one Go
// version's JPEG encoder and architecture).
package benchjpeg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
)

// Config says what to generate.
type Config struct {
	// CIFARDir is the CIFAR-10 JPEG folder holding train/<class>/*.jpg.
	CIFARDir string `json:"-"`
	// PerClass images are taken from each class (the first ones by name).
	PerClass int `json:"per_class"`
	// Width and Height of the generated images.
	Width  int `json:"width"`
	Height int `json:"height"`
	// Quality of the JPEG encoding.
	Quality int `json:"quality"`
	// Version of the generation recipe; bump it when the recipe changes.
	Version int `json:"version"`
}

// Default is the benchmark's folder: 100 images of each of the 10 classes
// (1000 images), 500x375 (a typical ImageNet photo), quality 90.
func Default(cifarDir string) Config {
	return Config{CIFARDir: cifarDir, PerClass: 100, Width: 500, Height: 375, Quality: 90, Version: recipeVersion}
}

const recipeVersion = 1

// markerName is written last into the output folder; its contents describe
// a complete folder.
const markerName = "gsrmt-bench-jpegs.json"

// Ensure makes out hold the folder of cfg: when out already holds a complete
// folder generated with the same settings it is reused as is (cfg.CIFARDir
// is then not read), one generated with other settings is replaced, and a
// train folder that Ensure did not generate is an error. It returns the
// path of the train split (out/train).
func Ensure(out string, cfg Config) (string, error) {
	train := filepath.Join(out, "train")
	want, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	marker := filepath.Join(out, markerName)
	have, err := os.ReadFile(marker)
	switch {
	case err == nil && bytes.Equal(bytes.TrimSpace(have), want):
		return train, nil
	case err == nil:
		// Generated with other settings: start afresh.
		if err := os.Remove(marker); err != nil {
			return "", err
		}
		if err := os.RemoveAll(train); err != nil {
			return "", err
		}
	default:
		if entries, err := os.ReadDir(train); err == nil && len(entries) > 0 {
			return "", fmt.Errorf("benchjpeg: %s exists but was not generated here (no %s): use an empty or new folder", train, markerName)
		}
	}
	if err := Generate(out, cfg); err != nil {
		return "", err
	}
	return train, os.WriteFile(filepath.Join(out, markerName), append(want, '\n'), 0o644)
}

// Generate writes the images of cfg under out/train/<class>/ (overwriting
// files of the same names).
func Generate(out string, cfg Config) error {
	if cfg.PerClass <= 0 || cfg.Width <= 0 || cfg.Height <= 0 || cfg.Quality < 1 || cfg.Quality > 100 {
		return fmt.Errorf("benchjpeg: bad config %+v", cfg)
	}
	srcTrain := filepath.Join(cfg.CIFARDir, "train")
	entries, err := os.ReadDir(srcTrain)
	if err != nil {
		return fmt.Errorf("benchjpeg: CIFAR-10 JPEGs: %w", err)
	}
	type job struct{ src, dst string }
	var jobs []job
	for _, e := range entries {
		if !e.IsDir() || e.Name()[0] == '.' {
			continue
		}
		names, err := filepath.Glob(filepath.Join(srcTrain, e.Name(), "*.jpg"))
		if err != nil {
			return err
		}
		sort.Strings(names)
		if len(names) < cfg.PerClass {
			return fmt.Errorf("benchjpeg: %s holds %d JPEGs, want %d", filepath.Join(srcTrain, e.Name()), len(names), cfg.PerClass)
		}
		dir := filepath.Join(out, "train", e.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for _, n := range names[:cfg.PerClass] {
			jobs = append(jobs, job{n, filepath.Join(dir, filepath.Base(n))})
		}
	}
	if len(jobs) == 0 {
		return fmt.Errorf("benchjpeg: no class folders in %s", srcTrain)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				err := convert(jobs[i].src, jobs[i].dst, cfg, uint64(i))
				if err != nil {
					mu.Lock()
					first = errors.Join(first, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// convert upscales one source JPEG, adds texture and writes it.
func convert(src, dst string, cfg Config, seed uint64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	img, err := jpeg.Decode(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("benchjpeg: %s: %w", src, err)
	}
	rgb := Texture(img, cfg.Width, cfg.Height, seed)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, rgb, &jpeg.Options{Quality: cfg.Quality}); err != nil {
		return err
	}
	return os.WriteFile(dst, buf.Bytes(), 0o644)
}

// Texture upscales src to w x h (bilinear, pixel centres aligned) and adds
// deterministic photo-like texture drawn from seed.
func Texture(src image.Image, w, h int, seed uint64) *image.RGBA {
	b := src.Bounds()
	sw, sh := b.Dx(), b.Dy()
	// Source as float RGB.
	s := make([]float64, sw*sh*3)
	for y := 0; y < sh; y++ {
		for x := 0; x < sw; x++ {
			r, g, bb, _ := src.At(b.Min.X+x, b.Min.Y+y).RGBA()
			i := (y*sw + x) * 3
			s[i], s[i+1], s[i+2] = float64(r>>8), float64(g>>8), float64(bb>>8)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	// Smooth noise fields: brightness at two scales, colour at a coarse one.
	coarse := newField(rng, w/40+2, h/40+2, 3)
	medium := newField(rng, w/8+2, h/8+2, 1)
	fine := newField(rng, w/3+2, h/3+2, 1)
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		fy := (float64(y)+0.5)*float64(sh)/float64(h) - 0.5
		for x := 0; x < w; x++ {
			fx := (float64(x)+0.5)*float64(sw)/float64(w) - 0.5
			var px [3]float64
			sample(s, sw, sh, 3, fx, fy, px[:])
			u, v := (float64(x)+0.5)/float64(w), (float64(y)+0.5)/float64(h)
			var c [3]float64
			coarse.at(u, v, c[:])
			var m, f [1]float64
			medium.at(u, v, m[:])
			fine.at(u, v, f[:])
			lum := 12*m[0] + 14*f[0] + 18*rng.NormFloat64()
			o := out.Pix[y*out.Stride+4*x:]
			for k := 0; k < 3; k++ {
				o[k] = clamp(px[k] + 12*c[k] + lum)
			}
			o[3] = 255
		}
	}
	return out
}

// field is a grid of standard normal values, bilinearly interpolated.
type field struct {
	w, h, ch int
	v        []float64
}

func newField(rng *rand.Rand, w, h, ch int) *field {
	f := &field{w: w, h: h, ch: ch, v: make([]float64, w*h*ch)}
	for i := range f.v {
		f.v[i] = rng.NormFloat64()
	}
	return f
}

// at writes the field's value at (u, v) in [0, 1)^2 into out.
func (f *field) at(u, v float64, out []float64) {
	sample(f.v, f.w, f.h, f.ch, u*float64(f.w-1), v*float64(f.h-1), out)
}

// sample interpolates the w x h x ch grid s at (fx, fy), clamping to the
// edges.
func sample(s []float64, w, h, ch int, fx, fy float64, out []float64) {
	fx = math.Max(0, math.Min(fx, float64(w-1)))
	fy = math.Max(0, math.Min(fy, float64(h-1)))
	x0, y0 := int(fx), int(fy)
	x1, y1 := min(x0+1, w-1), min(y0+1, h-1)
	ax, ay := fx-float64(x0), fy-float64(y0)
	for k := 0; k < ch; k++ {
		a := s[(y0*w+x0)*ch+k]*(1-ax) + s[(y0*w+x1)*ch+k]*ax
		c := s[(y1*w+x0)*ch+k]*(1-ax) + s[(y1*w+x1)*ch+k]*ax
		out[k] = a*(1-ay) + c*ay
	}
}

func clamp(v float64) uint8 {
	if v <= 0 {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return uint8(v + 0.5)
}
