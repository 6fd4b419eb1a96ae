package store

import (
	"time"
)

// SetBucketLinger sets how often stand-alone buckets are swept, for
// stores made after the call, and returns a function that restores it.
func SetBucketLinger(d time.Duration) (restore func()) {
	old := bucketLinger
	bucketLinger = d
	return func() { bucketLinger = old }
}

// StandaloneBuckets returns the number of stand-alone buckets m holds,
// expired ones not yet swept included.
func (m *Memory) StandaloneBuckets() int { return m.buckets().len() }

// StandaloneExpiry returns when the stand-alone bucket key expires, and
// false if m holds no such bucket.
func (m *Memory) StandaloneExpiry(key string) (time.Time, bool) {
	return m.buckets().expiry(key)
}
