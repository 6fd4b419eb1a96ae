//go:build !race

package limiter

// raceEnabled reports whether the race detector is on; tests that only
// measure scale themselves down under it.
const raceEnabled = false
