package store

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/patrickmn/go-cache"
)

// Compile-time checks of the bucket capabilities Memory offers.
var (
	_ Buckets       = (*Memory)(nil)
	_ BucketSpender = (*Memory)(nil)
)

// bucketLinger is how long a stand-alone bucket of a [Memory] is kept after
// it is full again. A missing bucket is a full one, so dropping it then
// changes no decision; the margin absorbs any difference between the
// store's clock (MemoryOptions.Clock) and the wall clock that go-cache
// expires entries by. Its go-cache janitor runs as often. A variable only
// so that a test can shorten it.
var bucketLinger = time.Minute

// maxBucketLife is the longest a stand-alone bucket is kept before it is
// full again.
const maxBucketLife = 100 * 365 * 24 * time.Hour

// memoryBucket is a token bucket of a [Memory]: an account's own, kept in
// its memoryAccount under the account's lock, or a stand-alone one (see
// standaloneBucket). Its arithmetic is that of golang.org/x/time/rate's
// Limiter, step for step, without the Limiter's own mutex: the bucket is
// always used under a lock already.
type memoryBucket struct {
	key    string
	rate   float64
	burst  int     // zero in an account's unused first bucket
	tokens float64 // the tokens at last
	last   int64   // when tokens was last updated, in Unix nanoseconds
}

// standaloneBucket is a stand-alone bucket, kept in Memory.standalone.
type standaloneBucket struct {
	mu sync.Mutex
	// dead is set once go-cache has dropped the bucket, so that a take
	// that still holds it looks the bucket up again.
	dead bool
	b    memoryBucket
}

// newMemoryBucket returns a full bucket with b's key, rate and burst. Its
// times, here and below, are Unix nanoseconds.
func newMemoryBucket(b *Bucket, now int64) memoryBucket {
	return memoryBucket{key: b.Key, rate: b.Rate, burst: b.Burst, tokens: float64(b.Burst), last: now}
}

// advance returns the tokens the bucket holds at now (rate.Limiter's
// advance). A now before the last update counts as no time passing.
func (mb *memoryBucket) advance(now int64) float64 {
	last := min(mb.last, now)
	tokens := mb.tokens + time.Duration(now-last).Seconds()*mb.rate
	if burst := float64(mb.burst); tokens > burst {
		tokens = burst
	}
	return tokens
}

// tokensAt returns the tokens the bucket holds at now, after giving it
// b's rate and burst as of now if it had others (as rate.Limiter's
// SetLimitAt and SetBurstAt do).
func (mb *memoryBucket) tokensAt(b *Bucket, now int64) float64 {
	if mb.rate != b.Rate || mb.burst != b.Burst {
		mb.tokens = mb.advance(now)
		mb.last = max(mb.last, now)
		mb.rate, mb.burst = b.Rate, b.Burst
	}
	return mb.advance(now)
}

// holds reports whether a bucket holding tokens has room for a take of
// cost, as rate.Limiter's AllowN decides: the cost is at most the burst and
// the tokens missing, if any, would take less than a nanosecond to come.
func (mb *memoryBucket) holds(tokens float64, cost int) bool {
	// time.Duration(ns) <= 0, without the conversion's overflow.
	ns := (float64(cost) - tokens) / mb.rate * float64(time.Second)
	return cost <= mb.burst && ns < 1
}

// takeAt takes cost tokens from a bucket that holds tokens at now, which
// holds must have allowed, and returns the tokens left. Time never runs
// backwards for a bucket: a now before its last update (two takes that
// read the clock before racing for the lock) leaves that time in place.
func (mb *memoryBucket) takeAt(now int64, tokens float64, cost int) float64 {
	mb.tokens = tokens - float64(cost)
	mb.last = max(mb.last, now)
	return mb.tokens
}

// accountBucketLocked returns the account's bucket b.Key, creating a full
// one if it has none. e.mu must be held.
func (e *memoryAccount) accountBucketLocked(b *Bucket, now int64) *memoryBucket {
	switch {
	case e.bucket.key == b.Key && e.bucket.burst != 0:
		return &e.bucket
	case e.bucket.burst == 0:
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
// longer than [MaxIDLength] is refused. A stand-alone bucket is kept until a minute
// after it is full again, so the store holds at most the buckets of the
// keys that took tokens within their time to fill up plus a minute (a
// missing bucket is a full one, so dropping it changes no decision). To
// limit requests by client address in one process, the limiter's own
// buckets, whose number is capped, are the better choice.
//
// Rate must be positive (+Inf allows everything), Burst positive and Cost
// non-negative, or the error wraps [ErrInvalidAmount]. Buckets are not
// saved by [Memory.SaveFile].
func (m *Memory) TakeTokens(_ context.Context, b Bucket) (BucketResult, error) {
	if err := b.Validate(); err != nil {
		return BucketResult{}, err
	}
	if math.IsInf(b.Rate, 1) {
		return BucketResult{OK: true, Remaining: b.Burst}, nil
	}
	if len(b.Account) > MaxIDLength {
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
	for {
		sb := m.standaloneBucket(b)
		now := m.tick()
		sb.mu.Lock()
		if sb.dead {
			sb.mu.Unlock()
			continue
		}
		r := take(&sb.b, b, now)
		// Set while locked, so that the latest take sets the expiry. A
		// bucket that takes centuries to fill (a tiny rate) is dropped
		// after one: Full+bucketLinger must not overflow, which go-cache
		// would take for "never".
		m.buckets().Set(b.Key, sb, min(r.Full, maxBucketLife)+bucketLinger)
		sb.mu.Unlock()
		return r, nil
	}
}

// take takes b.Cost tokens from mb at now if it holds them. The caller
// holds mb's lock (the account's, for an account's bucket).
func take(mb *memoryBucket, b *Bucket, now int64) BucketResult {
	tokens := mb.tokensAt(b, now)
	ok := mb.holds(tokens, b.Cost)
	if ok {
		tokens = mb.takeAt(now, tokens, b.Cost)
	}
	return b.Result(ok, tokens)
}

// buckets returns the cache of stand-alone buckets, making it on first use
// (its janitor is a goroutine, which a store that never needs it should not
// start).
func (m *Memory) buckets() *cache.Cache {
	m.bucketsOnce.Do(func() {
		m.standalone = cache.New(cache.NoExpiration, bucketLinger)
		m.standalone.OnEvicted(func(_ string, v any) {
			sb := v.(*standaloneBucket)
			sb.mu.Lock()
			sb.dead = true
			sb.mu.Unlock()
		})
	})
	return m.standalone
}

// standaloneBucket returns the stand-alone bucket b.Key, creating a full
// one if there is none.
func (m *Memory) standaloneBucket(b *Bucket) *standaloneBucket {
	c := m.buckets()
	if v, ok := c.Get(b.Key); ok {
		return v.(*standaloneBucket)
	}
	sb := &standaloneBucket{b: newMemoryBucket(b, m.tick())}
	if err := c.Add(b.Key, sb, bucketLinger); err != nil {
		// Another take created it first.
		if v, ok := c.Get(b.Key); ok {
			return v.(*standaloneBucket)
		}
	}
	// Add replaces an entry that has expired but that the janitor has not
	// dropped yet, without marking it dead: a take that found it just
	// before is lost. That bucket had been full for bucketLinger, so the
	// lost take is of a full bucket, like this one's.
	return sb
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
	if err := b.Validate(); err != nil {
		return SpendResult{}, BucketResult{}, err
	}
	e, err := m.accountFor(ctx, accountID)
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
	tokens := mb.tokensAt(&b, now)
	bucketOK := mb.holds(tokens, b.Cost)
	r := e.debitLocked(next, cost, bucketOK)
	if r.OK {
		tokens = mb.takeAt(now, tokens, b.Cost)
	}
	e.mu.Unlock()
	return r, b.Result(bucketOK, tokens), nil
}
