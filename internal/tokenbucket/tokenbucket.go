// Package tokenbucket is go402's token-bucket arithmetic: that of
// golang.org/x/time/rate's Limiter, as a plain value without a mutex, which
// its owner keeps under a lock of its own (a limiter's bucket, a memory
// store's account). The limiter's in-process buckets and the memory store
// both use it; the Redis store's Lua script is the one other
// implementation, and the store conformance suite checks both against
// golang.org/x/time/rate.
//
// Times are int64 nanoseconds on any timeline the owner chooses (Unix
// nanoseconds, or the time since a fixed epoch), the same for every call on
// one Bucket.
package tokenbucket

import (
	"fmt"
	"math"
	"time"
)

// Limit is a bucket's refill rate, in tokens per second, and its capacity.
// The functions of this package need a positive, finite Rate and a positive
// Burst (see [Validate]); an infinite rate, which admits everything, is for
// the caller to handle.
type Limit struct {
	Rate  float64
	Burst int
}

// Bucket is the state of a token bucket: it held Tokens at time Last. The
// zero Bucket held no tokens at time zero, which is a full one at any time
// long enough after (see [Full] for a bucket that is full now).
type Bucket struct {
	Tokens float64
	Last   int64
}

// Full returns a bucket of limit l that is full at now, as
// rate.NewLimiter's.
func Full(l Limit, now int64) Bucket {
	return Bucket{Tokens: float64(l.Burst), Last: now}
}

// TokensAt returns the tokens b holds at now under limit l, as
// rate.Limiter's TokensAt does: the tokens at Last plus those gained since,
// at most Burst. A now before Last counts as Last.
func (b *Bucket) TokensAt(l Limit, now int64) float64 {
	tokens := b.Tokens
	if now > b.Last {
		tokens += time.Duration(now-b.Last).Seconds() * l.Rate
	}
	if burst := float64(l.Burst); tokens > burst {
		tokens = burst
	}
	return tokens
}

// Check reports whether b holds n tokens at now under limit l, as
// rate.Limiter's AllowN decides, without taking them, and returns the
// tokens b holds at now.
func (b *Bucket) Check(l Limit, now int64, n int) (ok bool, tokens float64) {
	tokens = b.TokensAt(l, now)
	return allows(l, tokens, n), tokens
}

// AllowN takes n tokens from b at now if it holds them, as rate.Limiter's
// AllowN does, and returns whether it did and the tokens left (all of them
// if it did not). Time never runs backwards for a bucket: a now before
// Last (two takes that read a clock before racing for the bucket's lock)
// takes at Last, where rate.Limiter would move its clock back.
func (b *Bucket) AllowN(l Limit, now int64, n int) (ok bool, tokens float64) {
	tokens = b.TokensAt(l, now)
	if !allows(l, tokens, n) {
		return false, tokens
	}
	b.Tokens = tokens - float64(n)
	b.Last = max(b.Last, now)
	return true, b.Tokens
}

// SetLimitAt changes b's limit from old to l as of now, as rate.Limiter's
// SetLimitAt and SetBurstAt do: the tokens gained until now count at the
// old rate, up to the old burst, and those gained after at the new one. It
// does nothing if the limits are equal.
func (b *Bucket) SetLimitAt(old, l Limit, now int64) {
	if old == l {
		return
	}
	b.Tokens = b.TokensAt(old, now)
	b.Last = max(b.Last, now)
}

// allows reports whether a bucket holding tokens admits n, as
// rate.Limiter's reserveN decides: n is at most the burst and the tokens
// missing, if any, would come in less than a nanosecond.
func allows(l Limit, tokens float64, n int) bool {
	// time.Duration(ns) <= 0, without the conversion's overflow.
	ns := (float64(n) - tokens) / l.Rate * float64(time.Second)
	return n <= l.Burst && ns < 1
}

// Result is the outcome of taking tokens from a bucket, in the form stores
// report it (store.BucketResult has the same fields).
type Result struct {
	// OK reports whether the bucket held the tokens.
	OK bool
	// Remaining is the number of whole tokens left.
	Remaining int
	// Wait is how long until the bucket holds the cost again; zero if it
	// does, negative if the cost exceeds the burst.
	Wait time.Duration
	// Full is how long until the bucket is full.
	Full time.Duration
}

// ResultOf is the Result of a take of cost tokens from a bucket of limit l
// that left it holding tokens; ok is whether the bucket held the cost.
func ResultOf(l Limit, cost int, ok bool, tokens float64) Result {
	r := Result{
		OK:        ok,
		Remaining: int(max(0, math.Floor(tokens))),
		Full:      Duration(float64(l.Burst)-tokens, l.Rate),
	}
	switch {
	case cost > l.Burst:
		r.Wait = -1
	case float64(cost) > tokens:
		r.Wait = Duration(float64(cost)-tokens, l.Rate)
	}
	return r
}

// Duration is how long a bucket takes to gain n tokens at rate, rounded up
// to the nanosecond and capped at the largest Duration; zero if n is not
// positive.
func Duration(n, rate float64) time.Duration {
	if !(n > 0) {
		return 0
	}
	ns := math.Ceil(n / rate * float64(time.Second))
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(ns)
}

// Validate returns an error naming the bad field unless rate is positive
// (+Inf included), burst positive and cost non-negative: the buckets a
// store can take from. Callers wrap it with their own sentinel
// (store.ErrInvalidAmount).
func Validate(rate float64, burst, cost int) error {
	switch {
	case !(rate > 0): // also NaN
		return fmt.Errorf("bucket rate must be > 0, got %v", rate)
	case burst <= 0:
		return fmt.Errorf("bucket burst must be > 0, got %d", burst)
	case cost < 0:
		return fmt.Errorf("bucket cost must be >= 0, got %d", cost)
	}
	return nil
}

// A fixed window is a bucket that gains no tokens within a period and is
// full again at the start of the next: at most Burst tokens are taken per
// period. Its Bucket holds the tokens left in the period that starts at
// Last. Periods are the caller's (a calendar day, a billing month); a take
// names the start of the current one.

// FixedAt returns the tokens a fixed window b of capacity burst holds in
// the period that starts at start: all of burst if b last counted an
// earlier period, else those left (a later period's, if b counted one: a
// clock behind the others counts in the newest period, never in an older
// one).
func (b *Bucket) FixedAt(burst int, start int64) float64 {
	if b.Last < start {
		return float64(burst)
	}
	return min(b.Tokens, float64(burst))
}

// TakeFixed takes n tokens from the fixed window b of capacity burst in
// the period that starts at start, if it holds them, and returns whether it
// did and the tokens left.
func (b *Bucket) TakeFixed(burst int, start int64, n int) (ok bool, tokens float64) {
	tokens = b.FixedAt(burst, start)
	if n > burst || float64(n) > tokens {
		return false, tokens
	}
	b.Tokens, b.Last = tokens-float64(n), max(b.Last, start)
	return true, b.Tokens
}

// SetFixedBurst changes the capacity of the fixed window b from old to
// burst, keeping the tokens taken in its period: a plan raised from 1,000
// to 5,000 a day leaves 4,000 more for today.
func (b *Bucket) SetFixedBurst(old, burst int) {
	if old != burst {
		b.Tokens = max(0, b.Tokens+float64(burst-old))
	}
}

// FixedResult is the Result of a take of cost tokens from a fixed window of
// capacity burst that left it holding tokens, with left the time until the
// period ends (at least a nanosecond is waited for).
func FixedResult(burst, cost int, ok bool, tokens float64, left time.Duration) Result {
	left = max(left, 1)
	r := Result{OK: ok, Remaining: int(max(0, math.Floor(tokens)))}
	if tokens < float64(burst) {
		r.Full = left
	}
	switch {
	case cost > burst:
		r.Wait = -1
	case float64(cost) > tokens:
		r.Wait = left
	}
	return r
}
