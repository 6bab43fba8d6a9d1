package gsrmt

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestGammasOfSpec(t *testing.T) {
	// MODEL.md section 10: H = 4, a = 2, r = 4.
	want := []float64{0.75, 0.875, 0.9375, 0.96875}
	for i, g := range Gammas(4, 2, 4) {
		if math.Abs(g-want[i]) > 1e-15 {
			t.Errorf("gamma[%d] = %v, want %v", i, g, want[i])
		}
	}
}

func TestAlibiSlopesOfSpec(t *testing.T) {
	// MODEL.md section 7.2: H = 8.
	want := []float64{-0.5, -0.25, -0.125, -0.0625, 0.5, 0.25, 0.125, 0.0625}
	got := AlibiSlopes(8)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("slopes(8) = %v, want %v", got, want)
	}
	// Odd H: ceil(H/2) negative slopes first.
	if got, want := fmt.Sprint(AlibiSlopes(3)), fmt.Sprint([]float64{-0.5, -0.25, 0.5}); got != want {
		t.Errorf("slopes(3) = %v, want %v", got, want)
	}
}

func TestRopeTablesByHand(t *testing.T) {
	// d = 4: angles 1/10000^0 = 1 and 1/10000^1 = 1e-4, each twice.
	cos, sin := RopeTables(1, 3, 4)
	l := 2 // position (0, 2)
	wantCos := []float64{math.Cos(2), math.Cos(2), math.Cos(2e-4), math.Cos(2e-4)}
	wantSin := []float64{-math.Sin(2), math.Sin(2), -math.Sin(2e-4), math.Sin(2e-4)}
	for c := 0; c < 4; c++ {
		if float32(wantCos[c]) != cos[l*4+c] || float32(wantSin[c]) != sin[l*4+c] {
			t.Errorf("channel %d: cos %v sin %v, want %v %v", c, cos[l*4+c], sin[l*4+c], wantCos[c], wantSin[c])
		}
	}
}

func idsString(ids []int, w int) string {
	var b strings.Builder
	for i, v := range ids {
		if v == padID {
			b.WriteByte('.')
		} else {
			b.WriteByte(byte('0' + v))
		}
		if i%w == w-1 {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func TestRegionIDsShifted14(t *testing.T) {
	// 14 x 14 map, M = 7, shift 3: bands [0, 7), [7, 11), [11, 14) per axis.
	ids, hp, wp := RegionIDs(14, 14, 7, 3)
	if hp != 14 || wp != 14 {
		t.Fatalf("padded size %dx%d, want 14x14", hp, wp)
	}
	want := strings.Repeat("00000001111222\n", 7) +
		strings.Repeat("33333334444555\n", 4) +
		strings.Repeat("66666667777888\n", 3)
	if got := idsString(ids, wp); got != want {
		t.Errorf("region ids:\n%s\nwant:\n%s", got, want)
	}
}

func TestRegionIDsPaddedShifted(t *testing.T) {
	// 12 x 12 map, M = 7 -> padded to 14; padding rows/cols 12, 13 roll by -3 to 9, 10.
	ids, hp, wp := RegionIDs(12, 12, 7, 3)
	if hp != 14 || wp != 14 {
		t.Fatalf("padded size %dx%d", hp, wp)
	}
	row := func(a, b, c byte) string { // regions per column band, padding at cols 9, 10
		return strings.Repeat(string(a), 7) + string(b) + string(b) + ".." + strings.Repeat(string(c), 3) + "\n"
	}
	want := strings.Repeat(row('0', '1', '2'), 7) +
		strings.Repeat(row('3', '4', '5'), 2) +
		strings.Repeat("..............\n", 2) +
		strings.Repeat(row('6', '7', '8'), 3)
	if got := idsString(ids, wp); got != want {
		t.Errorf("region ids:\n%s\nwant:\n%s", got, want)
	}
}

func TestRegionIDsPaddedUnshifted(t *testing.T) {
	ids, hp, wp := RegionIDs(5, 6, 4, 0)
	want := "000000..\n000000..\n000000..\n000000..\n000000..\n........\n........\n........\n"
	if hp != 8 || wp != 8 || idsString(ids, wp) != want {
		t.Errorf("region ids %dx%d:\n%s\nwant:\n%s", hp, wp, idsString(ids, wp), want)
	}
}

func TestAllowedPairs(t *testing.T) {
	// Ids 0 0 1 pad: 0-0 pairs allowed, 1 alone, the padded query only itself.
	got := allowedPairs([]int{0, 0, 1, padID})
	want := []bool{
		true, true, false, false,
		true, true, false, false,
		false, false, true, false,
		false, false, false, true,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("allowed pairs %v, want %v", got, want)
	}
}

func TestTablesByHand(t *testing.T) {
	g := []float64{0.5}
	if got := decayBias(g, 3); math.Abs(float64(got[2])-2*math.Log(0.5)) > 1e-7 || got[4] != 0 {
		t.Errorf("decay bias %v", got)
	}
	if got := alibiBias([]float64{-0.5}, 2); got[0] != 0 || got[1] != 0.5 || got[2] != -0.5 || got[3] != 0 {
		t.Errorf("alibi bias %v, want m*(i-j) = [0 0.5 -0.5 0]", got)
	}
	if got := decayPow(g, 3); fmt.Sprint(got) != "[1 0.5 0.25 0.5 1 0.5 0.25 0.5 1]" {
		t.Errorf("gamma^|delta| %v", got)
	}
	// 2 x 2 map: Manhattan distances 0 1 1 2 from token 0.
	if got := manhattanBias(g, 2, 2); math.Abs(float64(got[3])-2*math.Log(0.5)) > 1e-7 || math.Abs(float64(got[1])-math.Log(0.5)) > 1e-7 {
		t.Errorf("manhattan bias %v", got)
	}
}
