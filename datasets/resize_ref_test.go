package datasets

import (
	"bytes"
	"math"
	"testing"
)

// The resampling code before its optimisation, kept as a reference.
func resampleCoeffsRef(inSize, outSize int) (bounds []int, weights [][]int32) {
	scale := float64(inSize) / float64(outSize)
	filterScale := math.Max(scale, 1)
	support := 1.0 * filterScale // bilinear support is 1
	bounds = make([]int, outSize)
	weights = make([][]int32, outSize)
	k := make([]float64, int(math.Ceil(support))*2+1)
	for xx := 0; xx < outSize; xx++ {
		center := (float64(xx) + 0.5) * scale
		ss := 1 / filterScale
		xmin := int(center - support + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		n := xmax - xmin
		if n > len(k) {
			n = len(k)
		}
		ww := 0.0
		for x := 0; x < n; x++ {
			t := math.Abs((float64(x+xmin) - center + 0.5) * ss)
			w := 0.0
			if t < 1 {
				w = 1 - t
			}
			k[x] = w
			ww += w
		}
		fixed := make([]int32, n)
		for x := 0; x < n; x++ {
			v := k[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				fixed[x] = int32(-0.5 + v*(1<<resamplePrecision))
			} else {
				fixed[x] = int32(0.5 + v*(1<<resamplePrecision))
			}
		}
		bounds[xx] = xmin
		weights[xx] = fixed
	}
	return bounds, weights
}

func clip8Ref(v int32) uint8 {
	v >>= resamplePrecision
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// resizeBilinearRef resamples the w x h rectangle of src whose top-left corner
// is (x0, y0) (which must lie inside src) to outW x outH pixels, as Pillow's
// crop followed by resize(BILINEAR) does.
func resizeBilinearRef(src *Image, x0, y0, w, h, outW, outH int) *Image {
	ch := src.Channels
	out := NewImage(outW, outH, ch)
	if w == outW && h == outH {
		for y := 0; y < h; y++ {
			copy(out.Pix[y*outW*ch:(y+1)*outW*ch], src.Pix[((y0+y)*src.Width+x0)*ch:])
		}
		return out
	}
	// Horizontal pass over rows y0..y0+h-1 into an outW x h buffer.
	tmp := out
	tmpH := h
	if h != outH {
		tmp = NewImage(outW, h, ch)
	}
	if w != outW {
		bounds, weights := resampleCoeffsRef(w, outW)
		for y := 0; y < h; y++ {
			row := src.Pix[((y0+y)*src.Width+x0)*ch:]
			dst := tmp.Pix[y*outW*ch:]
			for xx := 0; xx < outW; xx++ {
				k := weights[xx]
				base := bounds[xx] * ch
				if ch == 3 {
					const half = int32(1 << (resamplePrecision - 1))
					r, g, b := half, half, half
					px := row[base : base+3*len(k)]
					for x, wt := range k {
						r += int32(px[3*x]) * wt
						g += int32(px[3*x+1]) * wt
						b += int32(px[3*x+2]) * wt
					}
					dst[3*xx], dst[3*xx+1], dst[3*xx+2] = clip8Ref(r), clip8Ref(g), clip8Ref(b)
					continue
				}
				for c := 0; c < ch; c++ {
					ss := int32(1 << (resamplePrecision - 1))
					for x, wt := range k {
						ss += int32(row[base+x*ch+c]) * wt
					}
					dst[xx*ch+c] = clip8Ref(ss)
				}
			}
		}
	} else {
		for y := 0; y < h; y++ {
			copy(tmp.Pix[y*outW*ch:(y+1)*outW*ch], src.Pix[((y0+y)*src.Width+x0)*ch:])
		}
	}
	if h == outH {
		return tmp
	}
	bounds, weights := resampleCoeffsRef(tmpH, outH)
	stride := outW * ch
	acc := make([]int32, stride)
	for yy := 0; yy < outH; yy++ {
		for i := range acc {
			acc[i] = 1 << (resamplePrecision - 1)
		}
		for y, wt := range weights[yy] {
			row := tmp.Pix[(bounds[yy]+y)*stride : (bounds[yy]+y+1)*stride]
			for i, v := range row {
				acc[i] += int32(v) * wt
			}
		}
		dst := out.Pix[yy*stride : (yy+1)*stride]
		for i, v := range acc {
			dst[i] = clip8Ref(v)
		}
	}
	return out
}

// TestResizeMatchesReference compares the optimised resampling with the
// straightforward one (itself checked against Pillow) on many random
// crops, sizes and channel counts, reusing one scratch throughout.
func TestResizeMatchesReference(t *testing.T) {
	rng := newRNG(5)
	var s resizeScratch
	dst := &Image{}
	for i := 0; i < 600; i++ {
		ch := []int{1, 3, 3}[i%3]
		w, h := 1+rng.IntN(90), 1+rng.IntN(90)
		src := randomImage(w, h, ch, uint64(i))
		cw, chh := 1+rng.IntN(w), 1+rng.IntN(h)
		x0, y0 := rng.IntN(w-cw+1), rng.IntN(h-chh+1)
		ow, oh := 1+rng.IntN(60), 1+rng.IntN(60)
		switch i % 5 {
		case 0:
			ow = cw
		case 1:
			oh = chh
		}
		want := resizeBilinearRef(src, x0, y0, cw, chh, ow, oh)
		got := resizeBilinearInto(dst, src, x0, y0, cw, chh, ow, oh, &s)
		if got.Width != ow || got.Height != oh || got.Channels != ch || !bytes.Equal(got.Pix, want.Pix) {
			t.Fatalf("case %d: %dx%dx%d crop (%d,%d) %dx%d -> %dx%d differs from the reference", i, w, h, ch, x0, y0, cw, chh, ow, oh)
		}
	}
}
