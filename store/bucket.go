package store

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/go402/go402/internal/tokenbucket"
)

// Bucket names a token bucket and a request of it: take Cost tokens from the
// bucket Key, which holds at most Burst tokens and gains Rate per second, as
// golang.org/x/time/rate does: a new bucket is full, and a take that finds too
// few tokens takes none.
//
// A bucket belongs to an account (Account set) or stands alone. Stores that
// shard keep an account's bucket beside it (on Redis, in its Cluster hash
// slot), so that [BucketSpender.SpendWithTokens] takes its tokens and debits
// the account atomically. Every take of the same Account and Key, by
// [Buckets.TakeTokens] or SpendWithTokens, draws on the same tokens.
type Bucket struct {
	Account string // if set, the ID of the account the bucket belongs to
	// Key identifies the bucket among the account's (the limiter uses its
	// policy name, such as "default"), else among all stand-alone buckets
	// ("default:192.0.2.1").
	Key   string
	Rate  float64 // tokens gained per second
	Burst int     // the bucket's capacity
	Cost  int     // the tokens this request takes
	// Start and End, if End is set, make the bucket a fixed window rather
	// than a token bucket: Rate is ignored, and at most Burst tokens are
	// taken in the period [Start, End) (a calendar day, a billing month,
	// which the caller computes), all back in the next period. A store
	// counts in the latest period a take has named, so a replica whose
	// clock lags counts in its peers' newer period, never resets it.
	Start, End time.Time
	// More lists the other windows of the same limit, each a Bucket with a
	// Key of its own (distinct from b's and from each other's), belonging
	// to b's Account: a take needs Cost tokens from every window and takes
	// them from all or none, atomically. Their Account, Cost and More are
	// ignored. At most [MaxWindows] − 1. A store only reads them: callers
	// may share one slice between requests.
	More []Bucket
}

// MaxWindows is the most windows a [Bucket] may have, itself included.
const MaxWindows = 16

// fixed reports whether b is a fixed window.
func (b *Bucket) fixed() bool { return !b.End.IsZero() }

// BucketResult is the outcome of taking tokens from a [Bucket].
type BucketResult struct {
	// OK reports whether the bucket held the tokens, which were then taken
	// (by [BucketSpender.SpendWithTokens], only if the spend succeeded too).
	// With [Bucket.More], it reports whether every window held them; if
	// not, nothing was taken, and the windows that refused are those whose
	// Wait is not zero.
	OK        bool
	Remaining int // whole tokens left after the take
	// Wait is how long until the bucket holds enough tokens for a request
	// of the same cost: zero if it does, negative if Cost exceeds Burst.
	Wait time.Duration
	Full time.Duration // how long until the bucket is full again
	// More holds the outcomes of [Bucket.More]'s windows, in order (their
	// OK each window's own); nil without More.
	More []BucketResult
}

// Buckets is implemented by stores that keep token buckets, so that replicas
// share one limit (as on Redis); the limiter then uses them, not its own.
type Buckets interface {
	// TakeTokens takes b.Cost tokens from the bucket b if it holds them.
	TakeTokens(ctx context.Context, b Bucket) (BucketResult, error)
}

// BucketSpender is implemented by stores that can take tokens from a bucket
// and debit credits in one atomic operation (one round trip), taking
// nothing if either refuses. The paywall uses it to charge with a limit.
type BucketSpender interface {
	// SpendWithTokens takes b.Cost tokens from the bucket b and debits cost
	// credits as [Store.Spend] does. b.Account must be accountID, or the
	// call fails, whatever the store's topology, so that the mistake shows
	// at once. An unknown account yields an error wrapping [ErrNotFound]
	// and takes no tokens; a negative cost one wrapping [ErrInvalidAmount].
	//
	// If the BucketResult's OK is false the bucket refused (429; nothing
	// debited); else if the SpendResult's OK is false the balance refused
	// (402; no tokens taken, the BucketResult describing the bucket as it
	// is); else both were taken.
	SpendWithTokens(ctx context.Context, accountID string, cost int64, b Bucket) (SpendResult, BucketResult, error)
}

// validateBucket returns an error wrapping [ErrInvalidAmount] for a bad b.
func validateBucket(b *Bucket) error {
	if err := b.Validate(); err != nil {
		return errorf("%w: %w", err, ErrInvalidAmount)
	}
	return nil
}

// Validate returns an error naming the problem unless b and its More are
// windows a store can take from: each with a positive rate (+Inf included)
// or a fixed period (End after Start), a positive Burst, a Key distinct
// from the others', and a non-negative Cost; at most [MaxWindows] in all.
// Stores wrap it with [ErrInvalidAmount].
func (b *Bucket) Validate() error {
	if len(b.More) >= MaxWindows {
		return fmt.Errorf("bucket has %d windows, more than %d", len(b.More)+1, MaxWindows)
	}
	if err := validateWindow(b, b.Cost); err != nil {
		return err
	}
	for i := range b.More {
		w := &b.More[i]
		if err := validateWindow(w, b.Cost); err != nil {
			return fmt.Errorf("window %q: %w", w.Key, err)
		}
		if w.Key == b.Key || slices.ContainsFunc(b.More[:i], func(o Bucket) bool { return o.Key == w.Key }) {
			return fmt.Errorf("window key %q used twice", w.Key)
		}
	}
	return nil
}

// validateWindow checks one window of a take of cost tokens.
func validateWindow(w *Bucket, cost int) error {
	if !w.fixed() {
		return tokenbucket.Validate(w.Rate, w.Burst, cost)
	}
	if !w.End.After(w.Start) {
		return fmt.Errorf("bucket period must end after it starts, got %v to %v", w.Start, w.End)
	}
	return tokenbucket.Validate(1, w.Burst, cost)
}

// unlimited reports whether b admits everything: one token bucket of
// infinite rate.
func (b *Bucket) unlimited() bool {
	return len(b.More) == 0 && !b.fixed() && math.IsInf(b.Rate, 1)
}

// bucketResultOf is r as a BucketResult.
func bucketResultOf(r tokenbucket.Result) BucketResult {
	return BucketResult{OK: r.OK, Remaining: r.Remaining, Wait: r.Wait, Full: r.Full}
}
