package store

import (
	"context"
	"time"
)

// Bucket names a token bucket and the request made of it: take Cost tokens
// from the bucket Key, which holds at most Burst tokens and gains Rate tokens
// per second. The semantics are those of golang.org/x/time/rate: a full
// bucket starts with Burst tokens, and a take that finds too few tokens takes
// none.
type Bucket struct {
	// Key identifies the bucket, for example "acct:42" or "ip:192.0.2.1".
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
	// OK reports whether the tokens were taken.
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
// from either.
type BucketSpender interface {
	SpendWithTokens(ctx context.Context, accountID string, cost int64, b Bucket) (SpendResult, BucketResult, error)
}
