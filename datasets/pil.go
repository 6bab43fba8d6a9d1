package datasets

import (
	"math"
	"strconv"
)

// This file holds the image operations of timm's RandAugment as Pillow
// (PIL) computes them on 8-bit L and RGB images: ImageOps (autocontrast,
// equalize, invert, posterize, solarize), ImageEnhance (Color, Contrast,
// Brightness, Sharpness: Image.blend of a degenerate image and the image)
// and Image.transform / Image.rotate with an affine map, bilinear or bicubic
// sampling and a fill color. Each follows Pillow's C code (Blend.c,
// Convert.c, Filter.c, Geometry.c) or Python code (ImageOps.py,
// ImageEnhance.py, Image.rotate), including its float32 / float64
// arithmetic and its truncations, so that results are byte-exact.

// pilLuma is Pillow's RGB to L conversion (ITU-R 601-2 luma in 16-bit
// fixed point, rounded): one byte per pixel. An L image is copied.
func pilLuma(img *Image) []uint8 {
	n := img.Width * img.Height
	l := make([]uint8, n)
	if img.Channels == 1 {
		copy(l, img.Pix)
		return l
	}
	for i := 0; i < n; i++ {
		p := img.Pix[3*i : 3*i+3]
		l[i] = uint8((uint32(p[0])*19595 + uint32(p[1])*38470 + uint32(p[2])*7471 + 0x8000) >> 16)
	}
	return l
}

// pilBlendValue is one value of Pillow's ImagingBlend(in1, in2, alpha):
// in1 + alpha*(in2-in1) in float32, clipped to [0, 255] and truncated.
func pilBlendValue(in1, in2 uint8, alpha float32) uint8 {
	t := float32(in1) + float32(alpha*float32(int(in2)-int(in1)))
	switch {
	case t <= 0:
		return 0
	case t >= 255:
		return 255
	}
	return uint8(t)
}

// pilEnhance is ImageEnhance's enhance(factor): Image.blend(degenerate,
// img, factor) in place; degenerate(i) is the degenerate image's byte i.
func pilEnhance(img *Image, factor float64, degenerate func(i int) uint8) *Image {
	alpha := float32(factor)
	for i, v := range img.Pix {
		img.Pix[i] = pilBlendValue(degenerate(i), v, alpha)
	}
	return img
}

// pilColor is ImageEnhance.Color: the degenerate image is the image
// converted to L and back.
func pilColor(img *Image, factor float64) *Image {
	l := pilLuma(img)
	ch := img.Channels
	return pilEnhance(img, factor, func(i int) uint8 { return l[i/ch] })
}

// pilContrast is ImageEnhance.Contrast: the degenerate image is flat at
// int(mean of the L image + 0.5).
func pilContrast(img *Image, factor float64) *Image {
	l := pilLuma(img)
	var sum float64
	for _, v := range l {
		sum += float64(v)
	}
	mean := uint8(int(sum/float64(len(l)) + 0.5))
	return pilEnhance(img, factor, func(int) uint8 { return mean })
}

// pilBrightness is ImageEnhance.Brightness: the degenerate image is black.
func pilBrightness(img *Image, factor float64) *Image {
	return pilEnhance(img, factor, func(int) uint8 { return 0 })
}

// pilSharpness is ImageEnhance.Sharpness: the degenerate image is
// img.filter(ImageFilter.SMOOTH).
func pilSharpness(img *Image, factor float64) *Image {
	smooth := pilSmooth(img)
	return pilEnhance(img, factor, func(i int) uint8 { return smooth[i] })
}

// pilSmooth is Pillow's ImageFilter.SMOOTH (3x3 kernel 1 1 1 / 1 5 1 /
// 1 1 1, divided by 13) as Filter.c's ImagingFilter3x3 computes it: float32
// sums of three products a row (the row below first), offset 0.5,
// truncated; the border pixels are copied, and an image smaller than the
// kernel is returned as is.
func pilSmooth(img *Image) []uint8 {
	w, h, ch := img.Width, img.Height, img.Channels
	out := append([]uint8(nil), img.Pix...)
	if w < 3 || h < 3 {
		return out
	}
	k1, k5 := float32(1.0/13), float32(5.0/13)
	row3 := func(row []uint8, x, c int, mid float32) float32 {
		a := float32(float32(row[(x-1)*ch+c]) * k1)
		b := float32(float32(row[x*ch+c]) * mid)
		d := float32(float32(row[(x+1)*ch+c]) * k1)
		return float32(a+b) + d
	}
	for y := 1; y < h-1; y++ {
		above, cur, below := img.Pix[(y-1)*w*ch:y*w*ch], img.Pix[y*w*ch:(y+1)*w*ch], img.Pix[(y+1)*w*ch:(y+2)*w*ch]
		for x := 1; x < w-1; x++ {
			for c := 0; c < ch; c++ {
				ss := float32(0.5)
				ss += row3(below, x, c, k1)
				ss += row3(cur, x, c, k5)
				ss += row3(above, x, c, k1)
				out[(y*w+x)*ch+c] = pilClip8(ss)
			}
		}
	}
	return out
}

// pilClip8 is Filter.c's clip8 (float32) and Geometry.c's bicubic_filter8
// clip (float64): clipped to [0, 255], truncated.
func pilClip8[F float32 | float64](v F) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v)
}

// pilPoint applies one lookup table per channel (luts[c]), as Image.point
// with a table of 256 entries per band does (entries clipped to [0, 255]).
func pilPoint(img *Image, luts [][256]int) *Image {
	ch := img.Channels
	for i, v := range img.Pix {
		img.Pix[i] = uint8(min(max(luts[i%ch][v], 0), 255))
	}
	return img
}

// pilSameLUT applies lut to every channel.
func pilSameLUT(img *Image, lut [256]int) *Image {
	luts := make([][256]int, img.Channels)
	for c := range luts {
		luts[c] = lut
	}
	return pilPoint(img, luts)
}

// pilHistograms returns each channel's histogram.
func pilHistograms(img *Image) [][256]int {
	h := make([][256]int, img.Channels)
	for i, v := range img.Pix {
		h[i%img.Channels][v]++
	}
	return h
}

// pilAutoContrast is ImageOps.autocontrast(img) (no cutoff): each channel
// stretched from its [lo, hi] to [0, 255] by int(v*scale + offset) in
// float64; a flat channel is left alone.
func pilAutoContrast(img *Image) *Image {
	hists := pilHistograms(img)
	luts := make([][256]int, len(hists))
	for c, h := range hists {
		lo, hi := 0, 255
		for lo < 256 && h[lo] == 0 {
			lo++
		}
		for hi >= 0 && h[hi] == 0 {
			hi--
		}
		for v := range luts[c] {
			luts[c][v] = v
		}
		if hi <= lo {
			continue
		}
		scale := 255.0 / float64(hi-lo)
		offset := -float64(lo) * scale
		for v := range luts[c] {
			luts[c][v] = int(float64(v)*scale + offset)
		}
	}
	return pilPoint(img, luts)
}

// pilEqualize is ImageOps.equalize(img): per channel, step = (sum of the
// nonzero histogram entries but the last) // 255, and lut[i] = (step//2 +
// count below i) // step; a channel with one value or step 0 is left alone.
func pilEqualize(img *Image) *Image {
	hists := pilHistograms(img)
	luts := make([][256]int, len(hists))
	for c, h := range hists {
		for v := range luts[c] {
			luts[c][v] = v
		}
		nonzero, total, last := 0, 0, 0
		for _, n := range h {
			if n > 0 {
				nonzero++
				total += n
				last = n
			}
		}
		if nonzero <= 1 {
			continue
		}
		step := (total - last) / 255
		if step == 0 {
			continue
		}
		n := step / 2
		for v := range luts[c] {
			luts[c][v] = n / step
			n += h[v]
		}
	}
	return pilPoint(img, luts)
}

// pilInvert is ImageOps.invert.
func pilInvert(img *Image) *Image {
	for i, v := range img.Pix {
		img.Pix[i] = 255 - v
	}
	return img
}

// pilPosterize is timm's posterize: ImageOps.posterize(img, bits) (each
// value & ~(2**(8-bits) - 1)), nothing for 8 bits or more.
func pilPosterize(img *Image, bits int) *Image {
	if bits >= 8 {
		return img
	}
	var lut [256]int
	for v := range lut {
		if bits > 0 {
			lut[v] = v &^ (1<<(8-bits) - 1)
		}
	}
	return pilSameLUT(img, lut)
}

// pilSolarize is ImageOps.solarize(img, threshold): values at or above
// the threshold are inverted.
func pilSolarize(img *Image, threshold int) *Image {
	var lut [256]int
	for v := range lut {
		lut[v] = v
		if v >= threshold {
			lut[v] = 255 - v
		}
	}
	return pilSameLUT(img, lut)
}

// pilSolarizeAdd is timm's solarize_add(img, add, thresh=128): values
// below the threshold get add more, up to 255.
func pilSolarizeAdd(img *Image, add, threshold int) *Image {
	var lut [256]int
	for v := range lut {
		lut[v] = v
		if v < threshold {
			lut[v] = min(255, v+add)
		}
	}
	return pilSameLUT(img, lut)
}

// pilRotateMatrix is the inverse affine map of Image.rotate(degrees) about
// the image center (no expand, no translate), with Pillow's cosines and
// sines rounded to 15 decimals.
func pilRotateMatrix(degrees float64, w, h int) [6]float64 {
	angle := math.Mod(degrees, 360)
	if angle < 0 {
		angle += 360 // Python's % takes the divisor's sign
	}
	rad := -(angle * (math.Pi / 180))
	round15 := func(v float64) float64 {
		r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 15, 64), 64)
		return r
	}
	m := [6]float64{round15(math.Cos(rad)), round15(math.Sin(rad)), 0, round15(-math.Sin(rad)), round15(math.Cos(rad)), 0}
	cx, cy := float64(w)/2, float64(h)/2
	m[2] = m[0]*(-cx) + m[1]*(-cy) + m[2]
	m[5] = m[3]*(-cx) + m[4]*(-cy) + m[5]
	m[2] += cx
	m[5] += cy
	return m
}

// pilAffine is Image.transform(size, AFFINE, m, resample, fillcolor=fill):
// output pixel (x, y) samples the input at (m0*(x+.5) + m1*(y+.5) + m2,
// m3*(x+.5) + m4*(y+.5) + m5) with Geometry.c's bilinear or bicubic filter;
// points outside the input get the fill color (fill[0] for L images).
func pilAffine(img *Image, m [6]float64, interp Interpolation, fill [3]uint8) *Image {
	w, h, ch := img.Width, img.Height, img.Channels
	out := NewImage(w, h, ch)
	px := make([]float64, ch)
	for y := 0; y < h; y++ {
		yin := float64(y) + 0.5
		for x := 0; x < w; x++ {
			xin := float64(x) + 0.5
			sx := float64(float64(m[0]*xin)+float64(m[1]*yin)) + m[2]
			sy := float64(float64(m[3]*xin)+float64(m[4]*yin)) + m[5]
			dst := out.Pix[(y*w+x)*ch : (y*w+x+1)*ch]
			if sx < 0 || sx >= float64(w) || sy < 0 || sy >= float64(h) {
				copy(dst, fill[:ch])
				continue
			}
			if interp == Bicubic {
				pilBicubicAt(img, sx, sy, dst)
			} else {
				pilBilinearAt(img, sx, sy, px)
				for c, v := range px {
					dst[c] = uint8(v)
				}
			}
		}
	}
	return out
}

// pilFloor is Geometry.c's FLOOR.
func pilFloor(v float64) int { return int(math.Floor(v)) }

// pilBilinearAt is Geometry.c's BILINEAR_HEAD/BODY at (xin, yin), which
// lies inside the image: columns clipped to the image, the row below
// replaced by the row itself past the bottom.
func pilBilinearAt(img *Image, xin, yin float64, out []float64) {
	w, h, ch := img.Width, img.Height, img.Channels
	xin -= 0.5
	yin -= 0.5
	x, y := pilFloor(xin), pilFloor(yin)
	dx, dy := xin-float64(x), yin-float64(y)
	x0, x1 := clipInt(x, w)*ch, clipInt(x+1, w)*ch
	row0 := img.Pix[clipInt(y, h)*w*ch:]
	for c := range out {
		v1 := lerp(float64(row0[x0+c]), float64(row0[x1+c]), dx)
		v2 := v1
		if y+1 >= 0 && y+1 < h {
			row1 := img.Pix[(y+1)*w*ch:]
			v2 = lerp(float64(row1[x0+c]), float64(row1[x1+c]), dx)
		}
		out[c] = lerp(v1, v2, dy)
	}
}

// lerp is Geometry.c's BILINEAR: a + (b - a)*d.
func lerp(a, b, d float64) float64 { return a + float64((b-a)*d) }

func clipInt(v, n int) int { return min(max(v, 0), n-1) }

// pilBicubicAt is Geometry.c's BICUBIC_HEAD/BODY at (xin, yin), which lies
// inside the image, written to dst (one byte per channel, clipped and
// truncated as bicubic_filter8 does): four columns clipped to the image;
// of the four rows, the first clipped and each later one past the image
// replaced by the previous row's value.
func pilBicubicAt(img *Image, xin, yin float64, dst []uint8) {
	w, h, ch := img.Width, img.Height, img.Channels
	xin -= 0.5
	yin -= 0.5
	x, y := pilFloor(xin), pilFloor(yin)
	dx, dy := xin-float64(x), yin-float64(y)
	x--
	y--
	var xs, rows [4]int
	var valid [4]bool
	for i := range xs {
		xs[i] = clipInt(x+i, w) * ch
		if yy := y + i; i == 0 || (yy >= 0 && yy < h) {
			rows[i], valid[i] = clipInt(yy, h)*w*ch, true
		}
	}
	for c := range dst {
		var v [4]float64
		for r := range v {
			if !valid[r] {
				v[r] = v[r-1]
				continue
			}
			p := img.Pix[rows[r]+c:]
			v[r] = cubic(float64(p[xs[0]]), float64(p[xs[1]]), float64(p[xs[2]]), float64(p[xs[3]]), dx)
		}
		dst[c] = pilClip8(cubic(v[0], v[1], v[2], v[3], dy))
	}
}

// cubic is Geometry.c's BICUBIC: the cubic through four samples at d.
func cubic(v1, v2, v3, v4, d float64) float64 {
	p1 := v2
	p2 := -v1 + v3
	p3 := 2*(v1-v2) + v3 - v4
	p4 := -v1 + v2 - v3 + v4
	return p1 + float64(d*float64(p2+float64(d*float64(p3+float64(d*p4)))))
}
