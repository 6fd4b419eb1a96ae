package redisstore

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/go402/go402/internal/tokenbucket"
	"github.com/go402/go402/store"
)

// TakeTokens takes b.Cost tokens from the token bucket b if it holds that
// many, with the semantics of golang.org/x/time/rate (see [store.Bucket]),
// atomically in one round trip. The bucket lives in Redis (see
// [Store.BucketRedisKey]), so every replica draws on the same tokens, and
// it is timed by the Redis server's clock. An account's bucket (b.Account
// set) is a field of the account's hash, the one [Store.SpendWithTokens]
// takes from too; any other bucket is a hash of its own, deleted once it
// would be full again, since a missing bucket is a full one.
//
// Rate must be positive (+Inf allows everything without a round trip),
// Burst positive and Cost non-negative, or the error wraps
// [store.ErrInvalidAmount].
func (s *Store) TakeTokens(ctx context.Context, b store.Bucket) (store.BucketResult, error) {
	if err := validateBucket(&b); err != nil {
		return store.BucketResult{}, err
	}
	if math.IsInf(b.Rate, 1) {
		return store.BucketResult{OK: true, Remaining: b.Burst}, nil
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	v, err := takeScript.Run(ctx, s.rdb, []string{s.BucketRedisKey(b)},
		s.timeArg(), formatRate(b.Rate), b.Burst, b.Cost, bucketField(b)).Slice()
	if err != nil {
		return store.BucketResult{}, backendError("take tokens", err)
	}
	if len(v) != 2 {
		return store.BucketResult{}, errReply("take tokens")
	}
	ok, _ := v[0].(int64)
	return bucketResult(b, ok == 1, v[1])
}

// SpendWithTokens takes b.Cost tokens from the bucket b and debits cost
// credits from the account, applying any due refill first, in one atomic
// script — one round trip for the whole decision. If the bucket holds too
// few tokens or the balance is too small, nothing is taken from either.
//
// The results say which refused: the BucketResult's OK reports whether the
// bucket had the tokens (they were taken only if the spend succeeded too),
// and the SpendResult's OK whether the whole operation succeeded. So a
// caller answers 429 if the bucket refused, else 402 if the spend did.
//
// The bucket must be the account's own: b.Account must be accountID, which
// puts it in the account's Redis Cluster hash slot (see
// [Store.BucketRedisKey]). Any other bucket is refused with an error on
// every topology, so a mistake shows up in development on a single Redis
// rather than in production on a Cluster.
func (s *Store) SpendWithTokens(ctx context.Context, accountID string, cost int64, b store.Bucket) (store.SpendResult, store.BucketResult, error) {
	if cost < 0 {
		return store.SpendResult{}, store.BucketResult{}, fmt.Errorf("redisstore: spend %d: %w", cost, store.ErrInvalidAmount)
	}
	if b.Account != accountID {
		return store.SpendResult{}, store.BucketResult{}, fmt.Errorf(
			"redisstore: spend with tokens: bucket %q belongs to account %q, not %q: set its Account to the account it debits",
			b.Key, b.Account, accountID)
	}
	if err := validateBucket(&b); err != nil {
		return store.SpendResult{}, store.BucketResult{}, err
	}
	if math.IsInf(b.Rate, 1) {
		r, err := s.Spend(ctx, accountID, cost)
		return r, store.BucketResult{OK: err == nil, Remaining: b.Burst}, err
	}
	v, err := s.spendTokens(ctx, accountID, cost, b)
	if err != nil {
		return store.SpendResult{}, store.BucketResult{}, err
	}
	if notFound(v) {
		return store.SpendResult{}, store.BucketResult{},
			fmt.Errorf("redisstore: spend with tokens: account %q: %w", accountID, store.ErrNotFound)
	}
	if len(v) != 7 {
		return store.SpendResult{}, store.BucketResult{}, errReply("spend with tokens")
	}
	sr, err := decodeSpend(v)
	if err != nil {
		return store.SpendResult{}, store.BucketResult{}, err
	}
	bok, _ := v[5].(int64)
	br, err := bucketResult(b, bok == 1, v[6])
	if err != nil {
		return store.SpendResult{}, store.BucketResult{}, err
	}
	return sr, br, nil
}

// spendTokens runs the spend-with-tokens script as a new operation and
// returns its reply, cancelling the operation if the reply is lost.
func (s *Store) spendTokens(ctx context.Context, accountID string, cost int64, b store.Bucket) ([]any, error) {
	op := cancel{account: accountID, marker: s.markerKey(accountID)}
	rctx, stop := s.withTimeout(ctx)
	v, err := spendTokensScript.Run(rctx, s.rdb, []string{s.AccountRedisKey(accountID), op.marker},
		s.timeArg(), strconv.FormatInt(cost, 10), formatRate(b.Rate), b.Burst, b.Cost,
		bucketField(b), s.ttlArg()).Slice()
	stop()
	if err == nil && cancelled(v) {
		err = errCancelled
	}
	if err != nil {
		s.cancelOp(ctx, op)
		return nil, backendError("spend with tokens", err)
	}
	return v, nil
}

// bucketField returns the name of the hash field that holds bucket b.
func bucketField(b store.Bucket) string {
	if b.Account != "" {
		return "bucket:" + b.Key
	}
	return "bucket"
}

func formatRate(r float64) string {
	return strconv.FormatFloat(r, 'g', -1, 64)
}

// bucketResult computes the result of a take from the tokens left in the
// bucket (a float formatted by the script).
func bucketResult(b store.Bucket, ok bool, tokensReply any) (store.BucketResult, error) {
	str, isStr := tokensReply.(string)
	if !isStr {
		return store.BucketResult{}, errReply("take tokens")
	}
	tokens, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return store.BucketResult{}, errReply("take tokens")
	}
	l := tokenbucket.Limit{Rate: b.Rate, Burst: b.Burst}
	return store.BucketResult(tokenbucket.ResultOf(l, b.Cost, ok, tokens)), nil
}

// validateBucket returns an error wrapping [store.ErrInvalidAmount] unless
// b is a bucket a store can take from.
func validateBucket(b *store.Bucket) error {
	if err := tokenbucket.Validate(b.Rate, b.Burst, b.Cost); err != nil {
		return fmt.Errorf("redisstore: %w: %w", err, store.ErrInvalidAmount)
	}
	return nil
}
