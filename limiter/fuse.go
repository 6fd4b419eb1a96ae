package limiter

import (
	"fmt"
	"math"
	"net/http"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// A Limiter is a [paywall.RateLimiter]: a charge can take its tokens and
// debit credits in one store operation.
var _ paywall.RateLimiter = (*Limiter)(nil)

// Buckets returns [Options.Store], the store that keeps the limiter's
// buckets, or nil if the limiter keeps them in the process. A charge with
// this limiter as its [paywall.ChargeOptions.RateLimit] takes the tokens
// together with its debit only when this is the paywall's store.
func (l *Limiter) Buckets() store.Buckets { return l.remote }

// AccountBucket returns the bucket that r takes its tokens from in
// [Options.Store], and true, when that is the own bucket of r's account:
// when the Limiter keys requests with [ByAccount] and r has a
// [paywall.Caller]. The bucket has Account set to the account's ID and Key
// to the policy name ([Options.Name]), its rate and burst are the caller's
// (see [Limiter]), and its Cost is the request's. It is the bucket that
// [Limiter.Handler] and [Limiter.Take] take from too, so every route this
// Limiter guards, fused or not, draws on the same tokens.
//
// It reports false without a store, without a caller, with any other
// KeyFunc, and for a request whose cost CostFunc cannot compute (which
// [Limiter.Handler] refuses). AccountBucket takes no tokens: it is what a
// charge asks before it takes them together with its debit (see
// [paywall.ChargeOptions.RateLimit]), answering with [Limiter.Admit].
func (l *Limiter) AccountBucket(r *http.Request) (store.Bucket, bool) {
	if l.remote == nil || !l.byAccount {
		return store.Bucket{}, false
	}
	c, ok := paywall.CallerFromContext(r.Context())
	if !ok || c.Account.ID == "" {
		return store.Bucket{}, false
	}
	cost := l.cost
	if l.costFunc != nil {
		var err error
		if cost, err = l.requestCost(r); err != nil {
			return store.Bucket{}, false
		}
	}
	lim, _ := l.limitOf(c)
	return l.remoteBucket(c.Account.ID, c.Account.ID, lim, cost), true
}

// Admit answers for res, the outcome of a take of b — a bucket from
// [Limiter.AccountBucket](r) — that the store made together with a debit
// ([store.BucketSpender.SpendWithTokens]), exactly as [Limiter.Handler]
// answers for a take of its own: it sets the RateLimit headers on w and
// reports the decision to [Options.OnDecision]; if the bucket refused, it
// writes the denial (429 or [Options.DenyStatus], Retry-After) and returns
// false. It returns true, having written nothing but the headers, if the
// bucket had the tokens.
func (l *Limiter) Admit(w http.ResponseWriter, r *http.Request, b store.Bucket, res store.BucketResult) bool {
	// b carries the rate and burst AccountBucket chose; their policy is
	// found by them, so the caller is needed only to report the decision.
	lim := store.RateLimit{Rate: b.Rate, Burst: b.Burst}
	out := Result{Cost: b.Cost}
	if l.onDecision != nil {
		out.now = l.clock() // the decision's time; nothing else needs it
	}
	out.fillStore(res, lim, l.configured.ofLimit(lim))
	if !out.Allowed {
		c, _ := paywall.CallerFromContext(r.Context())
		l.refuse(w, r, c, &out)
		return false
	}
	l.setHeaders(w.Header(), &out)
	if l.onDecision != nil {
		c, _ := paywall.CallerFromContext(r.Context())
		l.decide(r, c, &out, nil)
	}
	return true
}

// requestCost returns the cost of r from CostFunc, which must be set.
func (l *Limiter) requestCost(r *http.Request) (int, error) {
	n, err := l.costFunc(r)
	if err == nil && n < 0 {
		err = fmt.Errorf("negative cost %d", n)
	}
	if err != nil {
		return 0, &costError{err}
	}
	return n, nil
}

// limitOf returns the rate and burst of a request from caller c (nil if
// none) and their precomputed policy, or a nil policy for a per-account
// override.
func (l *Limiter) limitOf(c *paywall.Caller) (store.RateLimit, *policy) {
	pol := l.configured.def
	if c != nil {
		if rl := c.Account.RateLimit; rl != nil && rl.Rate > 0 && rl.Burst > 0 && !math.IsInf(rl.Rate, 1) {
			return *rl, nil
		}
		if p := l.configured.ofPlan(c.Account.Plan); p != nil {
			pol = p
		}
	}
	return pol.limit, pol
}

// remoteBucket is the bucket in Options.Store of a request that takes
// cost tokens at the rate and burst lim: the account's own bucket, named
// after the policy, if account is set; else the stand-alone bucket
// "<Name>:<key>".
func (l *Limiter) remoteBucket(account, key string, lim store.RateLimit, cost int) store.Bucket {
	b := store.Bucket{Account: account, Key: l.name, Rate: lim.Rate, Burst: lim.Burst, Cost: cost}
	if account == "" {
		b.Key = l.name + ":" + key
	}
	return b
}

// fillStore sets the Result's fields from the outcome of a take of the
// bucket with rate and burst lim made by a store; pol is lim's policy.
func (res *Result) fillStore(br store.BucketResult, lim store.RateLimit, pol *policy) {
	// The store reports whole tokens left and the time until full; the
	// tokens themselves are Burst − Full·Rate.
	tokens := float64(lim.Burst) - br.Full.Seconds()*lim.Rate
	if whole := float64(br.Remaining); tokens < whole || tokens >= whole+1 {
		tokens = whole
	}
	res.fill(br.OK, tokens, pol)
	if !br.OK && br.Wait >= 0 && res.Cost <= lim.Burst {
		res.RetryAfter = max(br.Wait, res.Reset)
	}
}
