package limiter

import (
	"math/rand"
	"strconv"
	"testing"
)

// Random puts and removals, with hashes crowded into few home slots so
// that probe runs are long and wrap around, leave the index finding
// exactly what a map holds.
func TestIndexMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for _, max := range []int{1, 3, 64, 1000} {
		var x index
		x.init(max)
		want := map[string]*bucket{}
		hashOf := func(k string) uint64 { // few distinct homes, shared by several keys
			n, _ := strconv.Atoi(k)
			return keyHash(uint64(n%7) << 8 * uint64(len(x.slots)/7+1))
		}
		for step := 0; step < 20_000; step++ {
			k := strconv.Itoa(rng.Intn(2 * max))
			h := hashOf(k)
			b, i := x.find(h, k)
			if b != want[k] {
				t.Fatalf("max %d step %d: find(%s) = %p, want %p", max, step, k, b, want[k])
			}
			switch {
			case b == nil && x.live < max:
				b = &bucket{key: k}
				x.put(i, h, b)
				want[k] = b
			case b != nil && rng.Intn(2) == 0:
				x.remove(i)
				delete(want, k)
			}
			if x.live != len(want) {
				t.Fatalf("max %d step %d: %d live, want %d", max, step, x.live, len(want))
			}
		}
		for k, b := range want {
			if got, _ := x.find(hashOf(k), k); got != b {
				t.Fatalf("max %d: find(%s) = %p at the end, want %p", max, k, got, b)
			}
		}
	}
}
