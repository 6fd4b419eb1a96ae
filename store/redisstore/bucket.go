package redisstore

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

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
	if unlimited(&b) {
		return store.BucketResult{OK: true, Remaining: b.Burst}, nil
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	args := windowArgs(&b, s.timeArg(), b.Cost, len(b.More)+1)
	v, err := takeScript.Run(ctx, s.rdb, []string{s.BucketRedisKey(b)}, args...).Slice()
	if err != nil {
		return store.BucketResult{}, backendError("take tokens", err)
	}
	if len(v) != 2+2*(len(b.More)+1) {
		return store.BucketResult{}, errReply("take tokens")
	}
	ok, _ := v[0].(int64)
	return windowResults(&b, ok == 1, v[1], v[2:])
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
	if err := checkAccountBucket("spend with tokens", accountID, &b); err != nil {
		return store.SpendResult{}, store.BucketResult{}, err
	}
	if unlimited(&b) {
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
	n := 7 + 2*(len(b.More)+1)
	if len(v) != n && len(v) != n+7 {
		return store.SpendResult{}, store.BucketResult{}, errReply("spend with tokens")
	}
	sr, err := decodeSpend(v, n)
	if err != nil {
		return store.SpendResult{}, store.BucketResult{}, err
	}
	bok, _ := v[5].(int64)
	br, err := windowResults(&b, bok == 1, v[6], v[7:n])
	if err != nil {
		return store.SpendResult{}, store.BucketResult{}, err
	}
	return sr, br, nil
}

// spendTokens runs the spend-with-tokens script as a new operation and
// returns its reply, cancelling the operation if the reply is lost.
func (s *Store) spendTokens(ctx context.Context, accountID string, cost int64, b store.Bucket) ([]any, error) {
	keys := s.spendKeys(accountID)
	op := cancel{account: accountID, marker: keys[1]}
	rctx, stop := s.withTimeout(ctx)
	args := windowArgs(&b, s.timeArg(), cost, s.ttlArg, b.Cost, len(b.More)+1)
	v, err := spendTokensScript.Run(rctx, s.rdb, keys, args...).Slice()
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

// windowArgs returns the scripts' arguments: head, then the windows of b
// (see windowLib).
func windowArgs(b *store.Bucket, head ...any) []any {
	args := make([]any, 0, len(head)+5*(len(b.More)+1))
	args = append(args, head...)
	for i := range len(b.More) + 1 {
		w, field := b, bucketField(*b)
		if i > 0 {
			w, field = &b.More[i-1], "bucket:"+b.More[i-1].Key
		}
		if w.End.IsZero() {
			args = append(args, field, formatRate(w.Rate), w.Burst, 0, 0)
		} else {
			args = append(args, field, "f", w.Burst, micros(w.Start), micros(w.End))
		}
	}
	return args
}

// micros returns t in Unix microseconds, the zero time as the earliest
// the scripts compare exactly.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return -1 << 53
	}
	return t.UnixMicro()
}

// unlimited reports whether b admits everything: one token bucket of
// infinite rate.
func unlimited(b *store.Bucket) bool {
	return len(b.More) == 0 && b.End.IsZero() && math.IsInf(b.Rate, 1)
}

// windowResults decodes the windows' part of a script's reply: ok for all,
// the server time, then held and tokens per window.
func windowResults(b *store.Bucket, ok bool, nowReply any, windows []any) (store.BucketResult, error) {
	nowUs, isInt := nowReply.(int64)
	if !isInt {
		return store.BucketResult{}, errReply("take tokens")
	}
	now := time.UnixMicro(nowUs)
	var r store.BucketResult
	for i := range len(b.More) + 1 {
		w := b
		if i > 0 {
			w = &b.More[i-1]
		}
		held, _ := windows[2*i].(int64)
		wr, err := windowResult(w, b.Cost, held == 1, windows[2*i+1], now)
		if err != nil {
			return store.BucketResult{}, err
		}
		if i == 0 {
			r = wr
		} else {
			if r.More == nil {
				r.More = make([]store.BucketResult, len(b.More))
			}
			r.More[i-1] = wr
		}
	}
	r.OK = ok
	return r, nil
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

// windowResult computes the result of a take of cost tokens from window w
// at now from the tokens left in it (a float formatted by the script).
func windowResult(w *store.Bucket, cost int, held bool, tokensReply any, now time.Time) (store.BucketResult, error) {
	str, isStr := tokensReply.(string)
	if !isStr {
		return store.BucketResult{}, errReply("take tokens")
	}
	tokens, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return store.BucketResult{}, errReply("take tokens")
	}
	var r tokenbucket.Result
	if w.End.IsZero() {
		r = tokenbucket.ResultOf(tokenbucket.Limit{Rate: w.Rate, Burst: w.Burst}, cost, held, tokens)
	} else {
		r = tokenbucket.FixedResult(w.Burst, cost, held, tokens, w.End.Sub(now))
	}
	return store.BucketResult{OK: r.OK, Remaining: r.Remaining, Wait: r.Wait, Full: r.Full}, nil
}

// checkAccountBucket checks that b is a valid bucket of the account
// accountID, which op debits.
func checkAccountBucket(op, accountID string, b *store.Bucket) error {
	if b.Account != accountID {
		return fmt.Errorf("redisstore: %s: bucket %q belongs to account %q, not %q: set its Account to the account it debits",
			op, b.Key, b.Account, accountID)
	}
	return validateBucket(b)
}

// validateBucket returns an error wrapping [store.ErrInvalidAmount] unless
// b is a bucket a store can take from.
func validateBucket(b *store.Bucket) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("redisstore: %w: %w", err, store.ErrInvalidAmount)
	}
	return nil
}
