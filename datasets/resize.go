package datasets

import "math"

// Resampling follows Pillow's Image.resize with the BILINEAR filter (what
// torchvision applies to PIL images) or the BICUBIC one: a separable filter
// (Interpolation) whose support widens by the reduction factor when
// shrinking (antialiasing),
// coefficients normalised per output pixel and turned into 22-bit fixed
// point, a horizontal pass rounded to 8 bits, then a vertical pass.

const resamplePrecision = 32 - 8 - 2

// resampleCoeffs holds, for each output pixel of one axis, the first input
// index and Taps fixed-point weights (zero-padded past the pixel's own
// filter width, which never reaches past the input's end).
type resampleCoeffs struct {
	taps    int
	bounds  []int
	weights []int32 // len(bounds)*taps
	k       []float64
}

// compute fills c for resampling inSize pixels to outSize with the filter
// interp, reusing its buffers.
func (c *resampleCoeffs) compute(inSize, outSize int, interp Interpolation) {
	scale := float64(inSize) / float64(outSize)
	filterScale := math.Max(scale, 1)
	support := interp.support() * filterScale
	kmax := int(math.Ceil(support))*2 + 1
	k := c.reserve(outSize, kmax)
	taps := 0
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
		n := min(xmax-xmin, kmax)
		ww := 0.0
		for x := 0; x < n; x++ {
			w := interp.weight((float64(x+xmin) - center + 0.5) * ss)
			k[x] = w
			ww += w
		}
		fixed := c.weights[xx*kmax : xx*kmax+n]
		for x := range fixed {
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
		// Trailing zero weights add nothing: count only up to the last
		// nonzero one, so that the passes do less work.
		for n > 0 && fixed[n-1] == 0 {
			n--
		}
		c.bounds[xx] = xmin
		taps = max(taps, n)
	}
	c.clampToInput(inSize, kmax, taps)
	c.repack(kmax, taps)
}

// reserve sizes c's buffers for outSize pixels of kmax taps each, with
// zero weights, and returns the scratch for one pixel's float weights.
func (c *resampleCoeffs) reserve(outSize, kmax int) []float64 {
	c.taps = kmax
	if cap(c.bounds) < outSize {
		c.bounds = make([]int, outSize)
	}
	c.bounds = c.bounds[:outSize]
	if cap(c.weights) < outSize*kmax {
		c.weights = make([]int32, outSize*kmax)
	}
	c.weights = c.weights[:outSize*kmax]
	clear(c.weights)
	if cap(c.k) < kmax {
		c.k = make([]float64, kmax)
	}
	return c.k[:kmax]
}

// clampToInput keeps the zero padding within the input: an output pixel's
// window [bound, bound+taps) must not pass inSize, so a window that would
// is moved left and its weights (of stride kmax) shifted right.
func (c *resampleCoeffs) clampToInput(inSize, kmax, taps int) {
	for xx, b := range c.bounds {
		if b+taps > inSize {
			shift := b + taps - inSize
			w := c.weights[xx*kmax : xx*kmax+kmax]
			copy(w[shift:], w[:kmax-shift])
			clear(w[:shift])
			c.bounds[xx] = b - shift
		}
	}
}

// repack sets c.taps and, when it is below kmax, moves the weights to the
// smaller stride.
func (c *resampleCoeffs) repack(kmax, taps int) {
	c.taps = taps
	if taps < kmax {
		outSize := len(c.bounds)
		for xx := 0; xx < outSize; xx++ {
			copy(c.weights[xx*taps:xx*taps+taps], c.weights[xx*kmax:xx*kmax+taps])
		}
		c.weights = c.weights[:outSize*taps]
	}
}

func clip8(v int32) uint8 {
	v >>= resamplePrecision
	if uint32(v) <= 255 {
		return uint8(v)
	}
	if v < 0 {
		return 0
	}
	return 255
}

// resizeScratch holds the reusable buffers of resizeBilinearInto.
type resizeScratch struct {
	h, v resampleCoeffs
	tmp  []uint8
	acc  []int32
}

// ResizeBilinear resamples the w x h rectangle of src whose top-left corner
// is (x0, y0) (which must lie inside src) to outW x outH pixels, as Pillow's
// crop followed by resize(BILINEAR) does.
func ResizeBilinear(src *Image, x0, y0, w, h, outW, outH int) *Image {
	return resizeInto(&Image{}, src, x0, y0, w, h, outW, outH, Bilinear, &resizeScratch{})
}

// Resize is ResizeBilinear with the filter interp: Pillow's crop followed by
// resize(BILINEAR) or resize(BICUBIC).
func Resize(src *Image, x0, y0, w, h, outW, outH int, interp Interpolation) *Image {
	return resizeInto(&Image{}, src, x0, y0, w, h, outW, outH, interp, &resizeScratch{})
}

// resizeBilinearInto is resizeInto with the bilinear filter.
func resizeBilinearInto(dst, src *Image, x0, y0, w, h, outW, outH int, s *resizeScratch) *Image {
	return resizeInto(dst, src, x0, y0, w, h, outW, outH, Bilinear, s)
}

// resizeInto is Resize writing into dst (resized, its buffer reused) with
// the scratch buffers s, and returns dst. It runs the horizontal pass when
// the width changes and the vertical one when the height does, each only
// over the rows the next step reads.
func resizeInto(dst, src *Image, x0, y0, w, h, outW, outH int, interp Interpolation, s *resizeScratch) *Image {
	ch := src.Channels
	dst.Resize(outW, outH, ch)
	r := resizeRect{src: src, x0: x0, y0: y0, w: w, stride: outW * ch}
	if w == outW && h == outH {
		for y := 0; y < h; y++ {
			copy(dst.Pix[y*r.stride:(y+1)*r.stride], r.srcRow(y))
		}
		return dst
	}
	// Rows of the source the vertical pass reads (all of them when it does
	// not run).
	rowFirst, rowLast := 0, h
	if h != outH {
		s.v.compute(h, outH, interp)
		rowFirst = s.v.bounds[0]
		rowLast = s.v.bounds[outH-1] + s.v.taps
	}
	// Horizontal pass over the needed rows into tmp (rows rowFirst..rowLast-1
	// of the rectangle), or straight into dst when there is no vertical pass.
	switch {
	case w == outW:
		// Vertical only: read the source rows in place.
	case h == outH:
		r.tmp = dst.Pix
	default:
		n := (rowLast - rowFirst) * r.stride
		if cap(s.tmp) < n {
			s.tmp = make([]uint8, n)
		}
		r.tmp, r.tmpOff = s.tmp[:n], rowFirst
	}
	if w != outW {
		s.h.compute(w, outW, interp)
		r.horizontal(&s.h, rowFirst, rowLast)
	}
	if h == outH {
		return dst
	}
	row := r.tmpRow
	if w == outW {
		row = r.srcRow
	}
	s.vertical(dst.Pix, row, r.stride)
	return dst
}

// resizeRect is the rectangle of src being resized: w source pixels from
// (x0, y0) a row, stride bytes a row after the horizontal pass, which writes
// row y of the rectangle to row y-tmpOff of tmp.
type resizeRect struct {
	src            *Image
	x0, y0, w      int
	stride, tmpOff int
	tmp            []uint8
}

// srcRow returns row y of the rectangle in the source, stride bytes long
// (w pixels when the width does not change).
func (r *resizeRect) srcRow(y int) []uint8 {
	o := ((r.y0+y)*r.src.Width + r.x0) * r.src.Channels
	return r.src.Pix[o : o+r.stride]
}

// tmpRow returns row y of the horizontally resampled rectangle.
func (r *resizeRect) tmpRow(y int) []uint8 {
	return r.tmp[(y-r.tmpOff)*r.stride : (y-r.tmpOff+1)*r.stride]
}

// horizontal resamples rows rowFirst..rowLast-1 of the rectangle into tmp
// with the coefficients c.
func (r *resizeRect) horizontal(c *resampleCoeffs, rowFirst, rowLast int) {
	src, ch := r.src, r.src.Channels
	for y := rowFirst; y < rowLast; y++ {
		row := src.Pix[((r.y0+y)*src.Width+r.x0)*ch : ((r.y0+y)*src.Width+r.x0+r.w)*ch]
		out := r.tmpRow(y)
		if ch == 3 {
			resampleRow3(out, row, c)
		} else {
			resampleRowN(out, row, ch, c)
		}
	}
}

// vertical runs the vertical pass with s.v into dst (rows of stride bytes):
// row(y) returns row y of the horizontally resampled rectangle.
func (s *resizeScratch) vertical(dst []uint8, row func(y int) []uint8, stride int) {
	taps := s.v.taps
	if taps > 4 && cap(s.acc) < stride {
		s.acc = make([]int32, stride)
	}
	for yy := range s.v.bounds {
		out := dst[yy*stride : (yy+1)*stride]
		b := s.v.bounds[yy]
		k := s.v.weights[yy*taps : yy*taps+taps]
		switch taps {
		case 1:
			vertical1(out, row(b), k[0])
		case 2:
			vertical2(out, row(b), row(b+1), k[0], k[1])
		case 3:
			vertical3(out, row(b), row(b+1), row(b+2), k[0], k[1], k[2])
		case 4:
			vertical4(out, row(b), row(b+1), row(b+2), row(b+3), k[0], k[1], k[2], k[3])
		default:
			acc := s.acc[:stride]
			for i := range acc {
				acc[i] = 1 << (resamplePrecision - 1)
			}
			for y, wt := range k {
				r := row(b + y)
				r = r[:len(acc)]
				for i, v := range r {
					acc[i] += int32(v) * wt
				}
			}
			for i, v := range acc {
				out[i] = clip8(v)
			}
		}
	}
}

// resampleRow3 resamples one RGB row with the coefficients c.
func resampleRow3(out, row []uint8, c *resampleCoeffs) {
	switch c.taps {
	case 1:
		resampleRow3Taps1(out, row, c.bounds, c.weights)
	case 2:
		resampleRow3Taps2(out, row, c.bounds, c.weights)
	case 3:
		resampleRow3Taps3(out, row, c.bounds, c.weights)
	case 4:
		resampleRow3Taps4(out, row, c.bounds, c.weights)
	case 5:
		resampleRow3Taps5(out, row, c.bounds, c.weights)
	case 6:
		resampleRow3Taps6(out, row, c.bounds, c.weights)
	default:
		resampleRow3Any(out, row, c)
	}
}

func resampleRow3Any(out, row []uint8, c *resampleCoeffs) {
	taps := c.taps
	weights := c.weights
	for xx, b := range c.bounds {
		if len(out) < 3 {
			break
		}
		k := weights[xx*taps : xx*taps+taps]
		px := row[3*b : 3*(b+taps)]
		r, g, bl := vhalf, vhalf, vhalf
		for len(k) > 0 && len(px) >= 3 {
			wt := k[0]
			r += int32(px[0]) * wt
			g += int32(px[1]) * wt
			bl += int32(px[2]) * wt
			k, px = k[1:], px[3:]
		}
		out[0], out[1], out[2] = clip8(r), clip8(g), clip8(bl)
		out = out[3:]
	}
}

func resampleRow3Taps1(out, row []uint8, bounds []int, weights []int32) {
	weights = weights[:len(bounds)*1]
	for xx, b := range bounds {
		if len(out) < 3 {
			break
		}
		k := weights[xx*1 : xx*1+1]
		p := row[3*b : 3*b+3]
		r := vhalf + int32(p[0])*k[0]
		g := vhalf + int32(p[1])*k[0]
		bl := vhalf + int32(p[2])*k[0]
		out[0], out[1], out[2] = clip8(r), clip8(g), clip8(bl)
		out = out[3:]
	}
}

func resampleRow3Taps2(out, row []uint8, bounds []int, weights []int32) {
	weights = weights[:len(bounds)*2]
	for xx, b := range bounds {
		if len(out) < 3 {
			break
		}
		k := weights[xx*2 : xx*2+2]
		p := row[3*b : 3*b+6]
		r := vhalf + int32(p[0])*k[0] + int32(p[3])*k[1]
		g := vhalf + int32(p[1])*k[0] + int32(p[4])*k[1]
		bl := vhalf + int32(p[2])*k[0] + int32(p[5])*k[1]
		out[0], out[1], out[2] = clip8(r), clip8(g), clip8(bl)
		out = out[3:]
	}
}

func resampleRow3Taps3(out, row []uint8, bounds []int, weights []int32) {
	weights = weights[:len(bounds)*3]
	for xx, b := range bounds {
		if len(out) < 3 {
			break
		}
		k := weights[xx*3 : xx*3+3]
		p := row[3*b : 3*b+9]
		r := vhalf + int32(p[0])*k[0] + int32(p[3])*k[1] + int32(p[6])*k[2]
		g := vhalf + int32(p[1])*k[0] + int32(p[4])*k[1] + int32(p[7])*k[2]
		bl := vhalf + int32(p[2])*k[0] + int32(p[5])*k[1] + int32(p[8])*k[2]
		out[0], out[1], out[2] = clip8(r), clip8(g), clip8(bl)
		out = out[3:]
	}
}

func resampleRow3Taps4(out, row []uint8, bounds []int, weights []int32) {
	weights = weights[:len(bounds)*4]
	for xx, b := range bounds {
		if len(out) < 3 {
			break
		}
		k := weights[xx*4 : xx*4+4]
		p := row[3*b : 3*b+12]
		r := vhalf + int32(p[0])*k[0] + int32(p[3])*k[1] + int32(p[6])*k[2] + int32(p[9])*k[3]
		g := vhalf + int32(p[1])*k[0] + int32(p[4])*k[1] + int32(p[7])*k[2] + int32(p[10])*k[3]
		bl := vhalf + int32(p[2])*k[0] + int32(p[5])*k[1] + int32(p[8])*k[2] + int32(p[11])*k[3]
		out[0], out[1], out[2] = clip8(r), clip8(g), clip8(bl)
		out = out[3:]
	}
}

func resampleRow3Taps5(out, row []uint8, bounds []int, weights []int32) {
	weights = weights[:len(bounds)*5]
	for xx, b := range bounds {
		if len(out) < 3 {
			break
		}
		k := weights[xx*5 : xx*5+5]
		p := row[3*b : 3*b+15]
		r := vhalf + int32(p[0])*k[0] + int32(p[3])*k[1] + int32(p[6])*k[2] + int32(p[9])*k[3] + int32(p[12])*k[4]
		g := vhalf + int32(p[1])*k[0] + int32(p[4])*k[1] + int32(p[7])*k[2] + int32(p[10])*k[3] + int32(p[13])*k[4]
		bl := vhalf + int32(p[2])*k[0] + int32(p[5])*k[1] + int32(p[8])*k[2] + int32(p[11])*k[3] + int32(p[14])*k[4]
		out[0], out[1], out[2] = clip8(r), clip8(g), clip8(bl)
		out = out[3:]
	}
}

func resampleRow3Taps6(out, row []uint8, bounds []int, weights []int32) {
	weights = weights[:len(bounds)*6]
	for xx, b := range bounds {
		if len(out) < 3 {
			break
		}
		k := weights[xx*6 : xx*6+6]
		p := row[3*b : 3*b+18]
		r := vhalf + int32(p[0])*k[0] + int32(p[3])*k[1] + int32(p[6])*k[2] + int32(p[9])*k[3] + int32(p[12])*k[4] + int32(p[15])*k[5]
		g := vhalf + int32(p[1])*k[0] + int32(p[4])*k[1] + int32(p[7])*k[2] + int32(p[10])*k[3] + int32(p[13])*k[4] + int32(p[16])*k[5]
		bl := vhalf + int32(p[2])*k[0] + int32(p[5])*k[1] + int32(p[8])*k[2] + int32(p[11])*k[3] + int32(p[14])*k[4] + int32(p[17])*k[5]
		out[0], out[1], out[2] = clip8(r), clip8(g), clip8(bl)
		out = out[3:]
	}
}

// resampleRowN resamples one row of ch channels with the coefficients c.
func resampleRowN(out, row []uint8, ch int, c *resampleCoeffs) {
	taps := c.taps
	for xx, b := range c.bounds {
		k := c.weights[xx*taps : xx*taps+taps]
		for ci := 0; ci < ch; ci++ {
			ss := int32(1 << (resamplePrecision - 1))
			for x, wt := range k {
				ss += int32(row[(b+x)*ch+ci]) * wt
			}
			out[xx*ch+ci] = clip8(ss)
		}
	}
}

const vhalf = int32(1 << (resamplePrecision - 1))

func vertical1(out, a []uint8, ka int32) {
	a = a[:len(out)]
	for i := range out {
		out[i] = clip8(vhalf + int32(a[i])*ka)
	}
}

func vertical2(out, a, b []uint8, ka, kb int32) {
	a, b = a[:len(out)], b[:len(out)]
	for i := range out {
		out[i] = clip8(vhalf + int32(a[i])*ka + int32(b[i])*kb)
	}
}

func vertical3(out, a, b, c []uint8, ka, kb, kc int32) {
	a, b, c = a[:len(out)], b[:len(out)], c[:len(out)]
	for i := range out {
		out[i] = clip8(vhalf + int32(a[i])*ka + int32(b[i])*kb + int32(c[i])*kc)
	}
}

func vertical4(out, a, b, c, d []uint8, ka, kb, kc, kd int32) {
	a, b, c, d = a[:len(out)], b[:len(out)], c[:len(out)], d[:len(out)]
	for i := range out {
		out[i] = clip8(vhalf + int32(a[i])*ka + int32(b[i])*kb + int32(c[i])*kc + int32(d[i])*kd)
	}
}

// cropPad returns the h x w window of src whose top-left corner is
// (left, top); the parts of the window outside src are zero.
func cropPad(src *Image, left, top, w, h int) *Image {
	ch := src.Channels
	out := NewImage(w, h, ch)
	x0, x1 := max(left, 0), min(left+w, src.Width)
	if x1 <= x0 {
		return out
	}
	for y := 0; y < h; y++ {
		sy := top + y
		if sy < 0 || sy >= src.Height {
			continue
		}
		copy(out.Pix[(y*w+x0-left)*ch:(y*w+x1-left)*ch], src.Pix[(sy*src.Width+x0)*ch:(sy*src.Width+x1)*ch])
	}
	return out
}
