package store

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/go402/go402/internal/tokenbucket"
)

// bucketLinger is the least time between sweeps; a test shortens it.
var bucketLinger = time.Minute

// maxBucketLife caps a stand-alone bucket's expiry, against overflow.
const maxBucketLife = 100 * 365 * 24 * time.Hour

// memoryBucket is a token bucket of a [Memory], used under its owner's lock
// (the account's, for an account's bucket). Times are Unix nanoseconds.
type memoryBucket struct {
	key   string
	limit tokenbucket.Limit // Burst is zero in an account's unused first bucket
	tb    tokenbucket.Bucket
}

// standaloneBucket is a bucket of Memory.standalone.
type standaloneBucket struct {
	mu      sync.Mutex
	dead    bool  // it left the table: a take holding it looks again
	expires int64 // when it is full again
	b       memoryBucket
}

// newMemoryBucket returns a full bucket with b's key, rate and burst.
func newMemoryBucket(b *Bucket, now int64) memoryBucket {
	l := tokenbucket.Limit{Rate: b.Rate, Burst: b.Burst}
	return memoryBucket{key: b.Key, limit: l, tb: tokenbucket.Full(l, now)}
}

// reconfigure gives mb b's rate and burst as of now, as rate.Limiter does.
func (mb *memoryBucket) reconfigure(b *Bucket, now int64) tokenbucket.Limit {
	l := tokenbucket.Limit{Rate: b.Rate, Burst: b.Burst}
	mb.tb.SetLimitAt(mb.limit, l, now)
	mb.limit = l
	return l
}

// take takes b.Cost tokens from mb at now if it holds them.
func (mb *memoryBucket) take(b *Bucket, now int64) BucketResult {
	l := mb.reconfigure(b, now)
	ok, tokens := mb.tb.AllowN(l, now, b.Cost)
	return BucketResult(tokenbucket.ResultOf(l, b.Cost, ok, tokens))
}

// accountBucketLocked returns e's bucket b.Key, a full one if new; e.mu is held.
func (e *memoryAccount) accountBucketLocked(b *Bucket, now int64) *memoryBucket {
	switch {
	case e.bucket.key == b.Key && e.bucket.limit.Burst != 0:
		return &e.bucket
	case e.bucket.limit.Burst == 0:
		e.bucket = newMemoryBucket(b, now)
		return &e.bucket
	}
	for _, mb := range e.buckets {
		if mb.key == b.Key {
			return mb
		}
	}
	mb := newMemoryBucket(b, now)
	e.buckets = append(e.buckets, &mb)
	return &mb
}

// TakeTokens implements [Buckets], timed by the store's clock. Rate must be
// positive (+Inf allows everything), Burst positive and Cost non-negative, or
// the error wraps [ErrInvalidAmount]; an Account over 256 bytes is refused.
// Buckets are not saved by [Memory.SaveFile].
//
// An account's bucket lives as long as the account, and is the one
// [Memory.SpendWithTokens] takes from. Other buckets (of unknown accounts too,
// as on Redis) stand alone, dropped at most a minute after they are full again,
// which changes no decision. To limit by client address in one process, prefer
// the limiter's own buckets, whose number is capped.
func (m *Memory) TakeTokens(_ context.Context, b Bucket) (BucketResult, error) {
	if err := validateBucket(&b); err != nil {
		return BucketResult{}, err
	}
	if math.IsInf(b.Rate, 1) {
		return BucketResult{OK: true, Remaining: b.Burst}, nil
	}
	if len(b.Account) > maxIDLength {
		return BucketResult{}, errBadAccountID
	}
	if e, err := m.account(b.Account); err == nil {
		now := m.tick()
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.accountBucketLocked(&b, now).take(&b, now), nil
	}
	if b.Account != "" { // an unknown account's: apart from other stand-alone buckets
		b.Key = "\x00" + b.Account + "\x00" + b.Key
	}
	return m.standalone.take(&b, m.tick), nil
}

// standaloneTable holds a [Memory]'s stand-alone buckets.
type standaloneTable struct {
	mu        sync.Mutex
	m         map[string]*standaloneBucket
	nextSweep int64
}

// take takes b.Cost tokens from the stand-alone bucket b.Key at tick().
func (t *standaloneTable) take(b *Bucket, tick func() int64) BucketResult {
	for {
		now := tick()
		sb := t.get(b, now)
		sb.mu.Lock()
		if sb.dead {
			sb.mu.Unlock()
			continue
		}
		r := sb.b.take(b, now)
		// Set under the lock, so that the latest take sets the expiry.
		sb.expires = now + int64(min(r.Full, maxBucketLife))
		sb.mu.Unlock()
		return r
	}
}

// get returns the stand-alone bucket b.Key, making a full one if need be,
// which sweeps if bucketLinger has passed: a flood pays a constant share.
func (t *standaloneTable) get(b *Bucket, now int64) *standaloneBucket {
	t.mu.Lock()
	defer t.mu.Unlock()
	if sb := t.m[b.Key]; sb != nil {
		return sb
	}
	if now >= t.nextSweep {
		t.nextSweep = now + int64(bucketLinger)
		for k, sb := range t.m {
			sb.mu.Lock()
			if sb.expires <= now {
				sb.dead = true
				delete(t.m, k)
			}
			sb.mu.Unlock()
		}
	}
	sb := &standaloneBucket{b: newMemoryBucket(b, now), expires: now}
	t.m[b.Key] = sb
	return sb
}

// SpendWithTokens implements [BucketSpender] with the account's bucket b.
func (m *Memory) SpendWithTokens(ctx context.Context, accountID string, cost int64, b Bucket) (SpendResult, BucketResult, error) {
	if cost < 0 {
		return SpendResult{}, BucketResult{}, errNegativeCost
	}
	if b.Account != accountID {
		return SpendResult{}, BucketResult{}, errorf(
			"spend with tokens: bucket %q belongs to account %q, not %q: set its Account to the account it debits",
			b.Key, b.Account, accountID)
	}
	if err := validateBucket(&b); err != nil {
		return SpendResult{}, BucketResult{}, err
	}
	e, err := m.account(accountID)
	if err != nil {
		return SpendResult{}, BucketResult{}, err
	}
	now := m.tick() // read before locking, to keep the lock short
	e.mu.Lock()
	defer e.mu.Unlock()
	next := m.applyRefillLocked(e)
	if math.IsInf(b.Rate, 1) { // a bucket that never refuses: a plain spend
		return e.debitLocked(next, cost, true), BucketResult{OK: true, Remaining: b.Burst}, nil
	}
	mb := e.accountBucketLocked(&b, now)
	l := mb.reconfigure(&b, now)
	bucketOK, tokens := mb.tb.Check(l, now, b.Cost)
	r := e.debitLocked(next, cost, bucketOK)
	if r.OK {
		_, tokens = mb.tb.AllowN(l, now, b.Cost)
	}
	return r, BucketResult(tokenbucket.ResultOf(l, b.Cost, bucketOK, tokens)), nil
}
