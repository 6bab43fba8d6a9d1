package gsrmt

import "math"

// The computed tables of MODEL.md sections 4, 5 and 7. They are worked out
// in float64 from integer positions and rounded to float32 once, as the
// PyTorch reference does, and never stored in a checkpoint.

// Gammas returns gamma_j = 1 - 2^(-a - r*j/H) for j = 0..H-1 (section 4).
func Gammas(heads int, a, r float64) []float64 {
	g := make([]float64, heads)
	for j := range g {
		g[j] = 1 - math.Pow(2, -a-r*float64(j)/float64(heads))
	}
	return g
}

// AlibiSlopes returns SWAT's balanced ALiBi slopes (section 7.2): -2^-(j+1)
// for the first ceil(H/2) heads, then +2^-(k+1) for the rest.
func AlibiSlopes(heads int) []float64 {
	neg := (heads + 1) / 2
	s := make([]float64, 0, heads)
	for j := 0; j < neg; j++ {
		s = append(s, -math.Pow(2, -float64(j+1)))
	}
	for k := 0; k < heads-neg; k++ {
		s = append(s, math.Pow(2, -float64(k+1)))
	}
	return s
}

// ropeAngles returns 1 / 10000^linspace(0, 1, d/2), each value twice.
func ropeAngles(d int) []float64 {
	n := d / 2
	out := make([]float64, d)
	for i := 0; i < n; i++ {
		var t float64
		if n > 1 {
			t = linspaceAt(0, 1, n, i)
		}
		a := 1 / math.Pow(10000, t)
		out[2*i], out[2*i+1] = a, a
	}
	return out
}

// linspaceAt is torch.linspace's i-th value: it steps from the start in the
// first half and back from the end in the second.
func linspaceAt(start, end float64, n, i int) float64 {
	step := (end - start) / float64(n-1)
	if i < n/2 {
		return start + step*float64(i)
	}
	return end - step*float64(n-1-i)
}

// RopeTables returns cos(l*angle) and the signed sine used with the pair
// swap: for x' = (x1, x0) per pair, rot(x)*sin = x' * sinSigned, where
// sinSigned is -sin on even and +sin on odd channels. Both are (h*w*d)
// float32 in row-major (row, col, channel) order; l = row*w + col.
func RopeTables(h, w, d int) (cos, sinSigned []float32) {
	ang := ropeAngles(d)
	cos = make([]float32, h*w*d)
	sinSigned = make([]float32, h*w*d)
	for l := 0; l < h*w; l++ {
		for c := 0; c < d; c++ {
			th := float64(l) * ang[c]
			cos[l*d+c] = float32(math.Cos(th))
			s := float32(math.Sin(th))
			if c%2 == 0 {
				s = -s
			}
			sinSigned[l*d+c] = s
		}
	}
	return cos, sinSigned
}

// padID marks padded positions in region ids: it matches nothing (section 5.4).
const padID = -1

// RegionIDs returns the region id of every position of the padded, shifted
// map (Hp x Wp, row-major): Swin's 3x3 regions in shifted coordinates when
// s > 0, all zero otherwise, and padID on positions that are padding in
// unshifted coordinates, rolled with the map by (-s, -s).
func RegionIDs(h, w, m, s int) (ids []int, hp, wp int) {
	hp, wp = ceilDiv(h, m)*m, ceilDiv(w, m)*m
	ids = make([]int, hp*wp)
	band := func(i, n int) int { // [0, n-M), [n-M, n-s), [n-s, n)
		switch {
		case i < n-m:
			return 0
		case i < n-s:
			return 1
		default:
			return 2
		}
	}
	for r := 0; r < hp; r++ {
		for c := 0; c < wp; c++ {
			if s > 0 {
				ids[r*wp+c] = band(r, hp)*3 + band(c, wp)
			}
			// Position (r, c) of the shifted map came from (r+s, c+s) of the unshifted one.
			ur, uc := (r+s)%hp, (c+s)%wp
			if ur >= h || uc >= w {
				ids[r*wp+c] = padID
			}
		}
	}
	return ids, hp, wp
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// allowedPairs returns, for a sequence of region ids, the L x L matrix of
// pairs that may attend: equal ids that are not padding, plus the diagonal
// (a padded query attends to itself only).
func allowedPairs(ids []int) []bool {
	l := len(ids)
	ok := make([]bool, l*l)
	for i := 0; i < l; i++ {
		for j := 0; j < l; j++ {
			ok[i*l+j] = i == j || (ids[i] == ids[j] && ids[i] != padID)
		}
	}
	return ok
}

// windowPassMasks returns the width-pass and height-pass masks of every
// window: width (nW, M rows, M, M) pairs within a row, height (nW, M cols,
// M, M) pairs within a column; windows row-major.
func windowPassMasks(ids []int, hp, wp, m int) (width, height []bool, nW int) {
	nh, nw := hp/m, wp/m
	nW = nh * nw
	width = make([]bool, 0, nW*m*m*m)
	height = make([]bool, 0, nW*m*m*m)
	seq := make([]int, m)
	for wr := 0; wr < nh; wr++ {
		for wc := 0; wc < nw; wc++ {
			for r := 0; r < m; r++ {
				for c := 0; c < m; c++ {
					seq[c] = ids[(wr*m+r)*wp+wc*m+c]
				}
				width = append(width, allowedPairs(seq)...)
			}
			for c := 0; c < m; c++ {
				for r := 0; r < m; r++ {
					seq[r] = ids[(wr*m+r)*wp+wc*m+c]
				}
				height = append(height, allowedPairs(seq)...)
			}
		}
	}
	return width, height, nW
}

// decayBias returns |i-j| * log(gamma_head) as (H, L, L) float32 (sections 7.1, 7.3).
func decayBias(gammas []float64, l int) []float32 {
	out := make([]float32, 0, len(gammas)*l*l)
	for _, g := range gammas {
		lg := math.Log(g)
		for i := 0; i < l; i++ {
			for j := 0; j < l; j++ {
				out = append(out, float32(math.Abs(float64(i-j))*lg))
			}
		}
	}
	return out
}

// alibiBias returns m_head * (i - j) as (H, L, L) float32 (section 7.2).
func alibiBias(slopes []float64, l int) []float32 {
	out := make([]float32, 0, len(slopes)*l*l)
	for _, m := range slopes {
		for i := 0; i < l; i++ {
			for j := 0; j < l; j++ {
				out = append(out, float32(m*float64(i-j)))
			}
		}
	}
	return out
}

// decayPow returns gamma_head^|i-j| as (H, L, L) float32 (section 7.2).
func decayPow(gammas []float64, l int) []float32 {
	out := make([]float32, 0, len(gammas)*l*l)
	for _, g := range gammas {
		for i := 0; i < l; i++ {
			for j := 0; j < l; j++ {
				out = append(out, float32(math.Pow(g, math.Abs(float64(i-j)))))
			}
		}
	}
	return out
}

// manhattanBias returns (|dy| + |dx|) * log(gamma_head) over all h*w tokens,
// (H, hw, hw) float32 (section 7.3, RMT's last stage).
func manhattanBias(gammas []float64, h, w int) []float32 {
	n := h * w
	out := make([]float32, 0, len(gammas)*n*n)
	for _, g := range gammas {
		lg := math.Log(g)
		for a := 0; a < n; a++ {
			for b := 0; b < n; b++ {
				d := math.Abs(float64(a/w-b/w)) + math.Abs(float64(a%w-b%w))
				out = append(out, float32(d*lg))
			}
		}
	}
	return out
}

// table is a float32 array and its shape, to become a constant tensor.
type table struct {
	data []float32
	dims []int64
}

// windowTable spreads a per-head table (H, L, L) of one 1-D pass over its
// windows and rows: (nW, H, X, L, L), set to fill wherever the pass mask
// (nW, X, L, L) of windowPassMasks forbids the pair. Without a mask it is
// the per-head table as (1, H, 1, L, L), to broadcast over windows and rows.
func windowTable(perHead []float32, heads, l int, mask []bool, nW, x int, fill float32) table {
	if mask == nil {
		return table{perHead, []int64{1, int64(heads), 1, int64(l), int64(l)}}
	}
	ll := l * l
	out := make([]float32, nW*heads*x*ll)
	for wi := 0; wi < nW; wi++ {
		for hd := 0; hd < heads; hd++ {
			for xi := 0; xi < x; xi++ {
				dst := out[((wi*heads+hd)*x+xi)*ll:][:ll]
				ok := mask[(wi*x+xi)*ll:][:ll]
				for p := range dst {
					dst[p] = fill
					if ok[p] {
						dst[p] = perHead[hd*ll+p]
					}
				}
			}
		}
	}
	return table{out, []int64{int64(nW), int64(heads), int64(x), int64(l), int64(l)}}
}
