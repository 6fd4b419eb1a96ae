package store

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/go402/go402/internal/tokenbucket"
)

// Compile-time checks of the bucket capabilities Memory offers.
var (
	_ Buckets       = (*Memory)(nil)
	_ BucketSpender = (*Memory)(nil)
)

// bucketLinger is how often, at most, a [Memory] sweeps its stand-alone
// buckets for those that are full again, when new ones arrive: a bucket is
// kept at most that long after it is full. A variable only so that a test
// can shorten it.
var bucketLinger = time.Minute

// maxBucketLife is the longest a stand-alone bucket is kept before it is
// full again.
const maxBucketLife = 100 * 365 * 24 * time.Hour

// memoryBucket is a token bucket of a [Memory]: an account's own, kept in
// its memoryAccount under the account's lock, or a stand-alone one (see
// standaloneBucket). Its arithmetic is internal/tokenbucket's, that of
// golang.org/x/time/rate; it is always used under a lock already.
type memoryBucket struct {
	key   string
	limit tokenbucket.Limit // Burst is zero in an account's unused first bucket
	tb    tokenbucket.Bucket
}

// standaloneBucket is a stand-alone bucket, kept in Memory.standalone.
type standaloneBucket struct {
	mu sync.Mutex
	// dead is set once the bucket has left the table, so that a take
	// that still holds it looks the bucket up again.
	dead bool
	// expires is when the bucket is full again, by the store's clock.
	expires int64
	b       memoryBucket
}

// limitOf returns b's rate and burst.
func limitOf(b *Bucket) tokenbucket.Limit {
	return tokenbucket.Limit{Rate: b.Rate, Burst: b.Burst}
}

// newMemoryBucket returns a full bucket with b's key, rate and burst. Its
// times, here and below, are Unix nanoseconds.
func newMemoryBucket(b *Bucket, now int64) memoryBucket {
	l := limitOf(b)
	return memoryBucket{key: b.Key, limit: l, tb: tokenbucket.Full(l, now)}
}

// reconfigure gives the bucket b's rate and burst as of now, if it had
// others (as rate.Limiter's SetLimitAt and SetBurstAt do), and returns
// them.
func (mb *memoryBucket) reconfigure(b *Bucket, now int64) tokenbucket.Limit {
	l := limitOf(b)
	mb.tb.SetLimitAt(mb.limit, l, now)
	mb.limit = l
	return l
}

// accountBucketLocked returns the account's bucket b.Key, creating a full
// one if it has none. e.mu must be held.
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

// TakeTokens implements [Buckets], with the semantics of
// golang.org/x/time/rate, timed by the store's clock.
//
// An account's bucket (b.Account set) is kept with the account, for as long
// as the store holds the account; it is the bucket
// [Memory.SpendWithTokens] takes from too. The bucket of an account the
// store does not hold (a limiter that keeps its buckets here for a paywall
// on another store) is kept like a stand-alone one, as the Redis store
// keeps every bucket whether its account exists or not; an account ID
// longer than 256 is refused. A stand-alone bucket is dropped once it is
// full again, by a sweep that new buckets trigger at most once a minute of
// the store's clock, so the store holds at most the buckets of the keys
// that took tokens within their time to fill up plus a minute (a missing
// bucket is a full one, so dropping it changes no decision). To
// limit requests by client address in one process, the limiter's own
// buckets, whose number is capped, are the better choice.
//
// Rate must be positive (+Inf allows everything), Burst positive and Cost
// non-negative, or the error wraps [ErrInvalidAmount]. Buckets are not
// saved by [Memory.SaveFile].
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
	if b.Account != "" {
		e, err := m.account(b.Account)
		if err != nil { // not an account of this store
			b.Key = "\x00" + b.Account + "\x00" + b.Key // apart from any stand-alone bucket
			return m.takeStandalone(&b)
		}
		now := m.tick()
		e.mu.Lock()
		r := take(e.accountBucketLocked(&b, now), &b, now)
		e.mu.Unlock()
		return r, nil
	}
	return m.takeStandalone(&b)
}

// takeStandalone takes b.Cost tokens from the stand-alone bucket b.Key.
func (m *Memory) takeStandalone(b *Bucket) (BucketResult, error) {
	t := m.buckets()
	for {
		now := m.tick()
		sb := t.get(b, now)
		sb.mu.Lock()
		if sb.dead {
			sb.mu.Unlock()
			continue
		}
		r := take(&sb.b, b, now)
		// Set while locked, so that the latest take sets the expiry. A
		// bucket that takes centuries to fill (a tiny rate) is dropped
		// after one, and the sum must not overflow.
		sb.expires = now + int64(min(r.Full, maxBucketLife))
		sb.mu.Unlock()
		return r, nil
	}
}

// take takes b.Cost tokens from mb at now if it holds them. The caller
// holds mb's lock (the account's, for an account's bucket).
func take(mb *memoryBucket, b *Bucket, now int64) BucketResult {
	l := mb.reconfigure(b, now)
	ok, tokens := mb.tb.AllowN(l, now, b.Cost)
	return bucketResult(l, b.Cost, ok, tokens)
}

// bucketResult is the BucketResult of a take of cost tokens from a bucket
// of limit l that left it holding tokens.
func bucketResult(l tokenbucket.Limit, cost int, ok bool, tokens float64) BucketResult {
	return BucketResult(tokenbucket.ResultOf(l, cost, ok, tokens))
}

// standaloneTable holds a [Memory]'s stand-alone buckets, timed by the
// store's clock. A bucket expires when it is full again (a missing bucket
// is a full one, so dropping it changes no decision); expired buckets are
// removed by a sweep that a new bucket triggers at most once every
// bucketLinger, so that a flood of new keys costs each of them a constant
// share of a sweep, and a store that takes no new keys does no work.
type standaloneTable struct {
	mu        sync.Mutex
	m         map[string]*standaloneBucket
	nextSweep int64 // the store's time of the next sweep
}

// buckets returns the table of stand-alone buckets, making it on first
// use.
func (m *Memory) buckets() *standaloneTable {
	m.bucketsOnce.Do(func() {
		m.standalone = &standaloneTable{m: make(map[string]*standaloneBucket)}
	})
	return m.standalone
}

// get returns the stand-alone bucket b.Key, creating a full one if there
// is none.
func (t *standaloneTable) get(b *Bucket, now int64) *standaloneBucket {
	t.mu.Lock()
	defer t.mu.Unlock()
	if sb := t.m[b.Key]; sb != nil {
		return sb
	}
	if now >= t.nextSweep {
		t.sweep(now)
	}
	sb := &standaloneBucket{b: newMemoryBucket(b, now), expires: now}
	t.m[b.Key] = sb
	return sb
}

// sweep removes the buckets that have expired at now, marking them dead
// so that a take holding one looks again. t.mu must be held.
func (t *standaloneTable) sweep(now int64) {
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

// len returns the number of stand-alone buckets held, expired ones not yet
// swept included.
func (t *standaloneTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// expiry returns when the stand-alone bucket key expires, and false if
// there is no such bucket.
func (t *standaloneTable) expiry(key string) (time.Time, bool) {
	t.mu.Lock()
	sb := t.m[key]
	t.mu.Unlock()
	if sb == nil {
		return time.Time{}, false
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return time.Unix(0, sb.expires), true
}

// SpendWithTokens implements [BucketSpender]: under the account's lock, it
// applies any due refill, then takes b.Cost tokens from the account's
// bucket b (see [Memory.TakeTokens]) and debits cost credits if both
// suffice, and takes nothing from either otherwise. b.Account must be
// accountID.
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
	if math.IsInf(b.Rate, 1) { // a bucket that never refuses: a plain spend
		e.mu.Lock()
		r := e.debitLocked(m.applyRefillLocked(e), cost, true)
		e.mu.Unlock()
		return r, BucketResult{OK: true, Remaining: b.Burst}, nil
	}
	now := m.tick() // read before locking, to keep the lock short
	e.mu.Lock()
	next := m.applyRefillLocked(e)
	mb := e.accountBucketLocked(&b, now)
	l := mb.reconfigure(&b, now)
	bucketOK, tokens := mb.tb.Check(l, now, b.Cost)
	r := e.debitLocked(next, cost, bucketOK)
	if r.OK {
		_, tokens = mb.tb.AllowN(l, now, b.Cost)
	}
	e.mu.Unlock()
	return r, bucketResult(l, b.Cost, bucketOK, tokens), nil
}
