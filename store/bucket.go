package store

import (
	"context"
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
}

// BucketResult is the outcome of taking tokens from a [Bucket].
type BucketResult struct {
	// OK reports whether the bucket held the tokens, which were then taken
	// (by [BucketSpender.SpendWithTokens], only if the spend succeeded too).
	OK        bool
	Remaining int // whole tokens left after the take
	// Wait is how long until the bucket holds enough tokens for a request
	// of the same cost: zero if it does, negative if Cost exceeds Burst.
	Wait time.Duration
	Full time.Duration // how long until the bucket is full again
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
	if err := tokenbucket.Validate(b.Rate, b.Burst, b.Cost); err != nil {
		return errorf("%w: %w", err, ErrInvalidAmount)
	}
	return nil
}
