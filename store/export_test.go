package store

import (
	"context"
	"time"
)

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

// StandaloneExpiry returns when go-cache will drop the stand-alone bucket
// key, and false if it never will or holds no such bucket.
func (m *Memory) StandaloneExpiry(key string) (time.Time, bool) {
	it, ok := m.buckets().Items()[key]
	if !ok || it.Expiration <= 0 {
		return time.Time{}, false
	}
	return time.Unix(0, it.Expiration), true
}

// LookupShared is Lookup returning pointers to copies, for the tests of
// memory_buckets_test.go.
func (m *Memory) LookupShared(ctx context.Context, d Digest) (*Key, *Account, int64, error) {
	k, a, err := m.Lookup(ctx, d)
	return &k, &a, a.Balance, err
}
