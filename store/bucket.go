package store

import (
	"context"
	"math"
	"time"
)

// Bucket names a token bucket and the request made of it: take Cost tokens
// from the bucket Key, which holds at most Burst tokens and gains Rate tokens
// per second. The semantics are those of golang.org/x/time/rate: a full
// bucket starts with Burst tokens, and a take that finds too few tokens takes
// none.
//
// A bucket either belongs to an account (Account set) or stands alone. An
// account's bucket is kept beside the account by stores that shard their
// data — on Redis, in the account's Cluster hash slot — so that
// [BucketSpender.SpendWithTokens] can take its tokens and debit the account
// in one atomic operation. Every take of the same Account and Key, whether
// by [Buckets.TakeTokens] or by SpendWithTokens, draws on the same tokens.
type Bucket struct {
	// Account, if set, is the ID of the account the bucket belongs to. The
	// limiter sets it when it keys a request by its caller's account (see
	// limiter.ByAccount).
	Account string
	// Key identifies the bucket: among the account's buckets if Account is
	// set (the limiter uses its policy name, such as "default"), else among
	// all stand-alone buckets (for example "default:192.0.2.1").
	Key string
	// Rate is the refill rate in tokens per second.
	Rate float64
	// Burst is the bucket's capacity.
	Burst int
	// Cost is the number of tokens this request takes.
	Cost int
}

// BucketResult is the outcome of taking tokens from a [Bucket].
type BucketResult struct {
	// OK reports whether the bucket held the tokens, which were then taken
	// (by [BucketSpender.SpendWithTokens], only if the spend succeeded too).
	OK bool
	// Remaining is the number of whole tokens left after the take.
	Remaining int
	// Wait is how long until the bucket holds enough tokens for a request of
	// the same cost (zero if it already does). When Cost exceeds Burst the
	// request can never succeed and Wait is negative.
	Wait time.Duration
	// Full is how long until the bucket is full again.
	Full time.Duration
}

// Buckets is implemented by stores that keep token buckets themselves, so
// that several replicas share one limit (the Redis store does). The limiter
// uses it instead of its in-process buckets when its store offers it.
type Buckets interface {
	TakeTokens(ctx context.Context, b Bucket) (BucketResult, error)
}

// BucketSpender is implemented by stores that can take tokens from a bucket
// and debit credits in one atomic operation — one round trip for the whole
// decision. If either the bucket or the balance refuses, nothing is taken
// from either. The paywall uses it for a charge with a rate limit
// (paywall.ChargeOptions.RateLimit).
type BucketSpender interface {
	// SpendWithTokens takes b.Cost tokens from the bucket b and debits cost
	// credits from the account, applying any due periodic refill first,
	// as [Store.Spend] does. The bucket must belong to the account:
	// b.Account must equal accountID, or the call fails with an error
	// (whatever the store's topology, so that the mistake shows up at
	// once). An unknown account yields an error wrapping [ErrNotFound] and
	// takes no tokens; a negative cost one wrapping [ErrInvalidAmount].
	//
	// Read the results in this order: if the BucketResult's OK is false
	// the bucket refused (answer 429; no credits were debited); else if
	// the SpendResult's OK is false the balance refused (answer 402; the
	// tokens were not taken, and the BucketResult describes the bucket as
	// it is); else both were taken.
	SpendWithTokens(ctx context.Context, accountID string, cost int64, b Bucket) (SpendResult, BucketResult, error)
}

// Validate returns an error wrapping [ErrInvalidAmount] unless b's rate is
// positive, its burst positive and its cost non-negative: the buckets a
// store can take from.
func (b *Bucket) Validate() error {
	switch {
	case !(b.Rate > 0): // also NaN
		return errorf("bucket rate must be > 0, got %v: %w", b.Rate, ErrInvalidAmount)
	case b.Burst <= 0:
		return errorf("bucket burst must be > 0, got %d: %w", b.Burst, ErrInvalidAmount)
	case b.Cost < 0:
		return errorf("bucket cost must be >= 0, got %d: %w", b.Cost, ErrInvalidAmount)
	}
	return nil
}

// Result is the outcome of a take of b that left the bucket holding tokens
// (fractional); ok is whether the bucket held enough for the take. Stores
// that keep buckets compute their results with it, so that every store
// reports Remaining, Wait and Full alike.
func (b *Bucket) Result(ok bool, tokens float64) BucketResult {
	r := BucketResult{
		OK:        ok,
		Remaining: int(max(0, math.Floor(tokens))),
		Full:      tokensDuration(float64(b.Burst)-tokens, b.Rate),
	}
	switch {
	case b.Cost > b.Burst:
		r.Wait = -1
	case float64(b.Cost) > tokens:
		r.Wait = tokensDuration(float64(b.Cost)-tokens, b.Rate)
	}
	return r
}

// tokensDuration is how long a bucket takes to gain n tokens at rate,
// rounded up to the nanosecond and capped at the largest Duration.
func tokensDuration(n, rate float64) time.Duration {
	if n <= 0 {
		return 0
	}
	ns := math.Ceil(n / rate * float64(time.Second))
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(ns)
}
