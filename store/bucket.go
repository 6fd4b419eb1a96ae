package store

import (
	"context"
	"time"

	"github.com/go402/go402/internal/tokenbucket"
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

// validateBucket returns an error wrapping [ErrInvalidAmount] unless b's
// rate is positive, its burst positive and its cost non-negative: the
// buckets a store can take from.
func validateBucket(b *Bucket) error {
	if err := tokenbucket.Validate(b.Rate, b.Burst, b.Cost); err != nil {
		return errorf("%w: %w", err, ErrInvalidAmount)
	}
	return nil
}
