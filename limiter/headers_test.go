package limiter

import (
	"math"
	"strconv"
	"testing"
)

// appendDecimal writes what strconv.AppendInt writes, at every boundary
// of its four-digit groups and beyond.
func TestAppendDecimal(t *testing.T) {
	vs := []int64{math.MinInt64, -10_000, -1, math.MaxInt64, 1e8, 1e8 - 1, 1e12 + 7}
	for p := int64(1); p <= 1e8; p *= 10 {
		vs = append(vs, p-1, p, p+1, 9*p/10+3)
	}
	for v := int64(0); v < 20_000; v++ {
		vs = append(vs, v)
	}
	for _, v := range vs {
		if got, want := string(appendDecimal([]byte("x"), v)), "x"+strconv.FormatInt(v, 10); got != want {
			t.Fatalf("appendDecimal(%d) = %q, want %q", v, got, want)
		}
	}
}
