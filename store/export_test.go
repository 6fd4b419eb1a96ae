package store

import (
	"time"
)

// SetBucketLinger sets how often stand-alone buckets are swept, and
// returns a function that restores it.
func SetBucketLinger(d time.Duration) (restore func()) {
	old := bucketLinger
	bucketLinger = d
	return func() { bucketLinger = old }
}

// StandaloneBuckets returns the number of stand-alone buckets m holds,
// expired ones not yet swept included.
func (m *Memory) StandaloneBuckets() int {
	m.standalone.mu.Lock()
	defer m.standalone.mu.Unlock()
	return len(m.standalone.m)
}

// StandaloneExpiry returns when the stand-alone bucket key expires, and
// false if m holds no such bucket.
func (m *Memory) StandaloneExpiry(key string) (time.Time, bool) {
	m.standalone.mu.Lock()
	sb := m.standalone.m[key]
	m.standalone.mu.Unlock()
	if sb == nil {
		return time.Time{}, false
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return time.Unix(0, sb.expires), true
}
