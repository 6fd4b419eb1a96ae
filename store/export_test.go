package store

import "time"

// SetBucketLinger sets how long stand-alone buckets linger once full, for
// stores made after the call, and returns a function that restores it.
func SetBucketLinger(d time.Duration) (restore func()) {
	old := bucketLinger
	bucketLinger = d
	return func() { bucketLinger = old }
}

// StandaloneBuckets returns the number of stand-alone buckets m holds,
// expired ones the janitor has not yet removed included.
func (m *Memory) StandaloneBuckets() int { return m.buckets().ItemCount() }
