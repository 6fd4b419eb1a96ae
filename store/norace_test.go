//go:build !race

package store_test

// raceEnabled reports whether the race detector is on, which makes tests
// that run many operations cut their count.
const raceEnabled = false
