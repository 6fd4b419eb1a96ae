package storetest

import (
	"sync"
	"time"
)

// clockEpoch is what the zero Clock reads.
var clockEpoch = time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)

// Clock is a fake clock for the harnesses of stores that take one: pass
// its Now method to the store and to [Harness.Now], and its Advance method
// to [Harness.Advance]. The zero value reads 2025-01-01T00:00:00Z. A Clock
// is safe for concurrent use and must not be copied after first use.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return clockEpoch.Add(c.offset)
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}
