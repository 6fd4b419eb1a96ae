package limiter

import (
	"fmt"
	"math"
	"net/http"

	"github.com/go402/go402/internal/fuse"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// fused is a Limiter as the limit a paywall charge decides together with
// its debit: the tokens of the caller's account's own bucket, taken in the
// same store operation.
type fused struct{ l *Limiter }

var _ fuse.Limit = fused{}

func (f fused) Buckets() store.Buckets { return f.l.remote }

func (f fused) Alone(next http.Handler) http.Handler { return &limitHandler{l: f.l, next: next} }

// Bucket returns the account's bucket named after the policy, with the
// account's rate and burst and the request's cost. It answers a request
// whose cost CostFunc cannot compute.
func (f fused) Bucket(w http.ResponseWriter, r *http.Request, a *store.Account) (store.Bucket, bool) {
	l := f.l
	cost := l.cost
	if l.costFunc != nil {
		var err error
		if cost, err = l.requestCost(r); err != nil {
			c, _ := paywall.CallerFromContext(r.Context())
			l.refuseError(w, r, c, &Result{now: l.clock()}, err)
			return store.Bucket{}, false
		}
	}
	lim, _ := l.limitOf(a)
	return l.remoteBucket(a.ID, a.ID, lim, cost), true
}

// Admit answers for res, the take of b made with a debit, as Handler
// answers for a take of its own.
func (f fused) Admit(w http.ResponseWriter, r *http.Request, b store.Bucket, res store.BucketResult) bool {
	l := f.l
	lim := store.RateLimit{Rate: b.Rate, Burst: b.Burst}
	out := Result{Cost: b.Cost}
	if l.onDecision != nil {
		out.now = l.clock() // the decision's time; nothing else needs it
	}
	out.fillStore(res, lim, l.configured.ofLimit(lim))
	return l.answer(w, r, &out)
}

// Take takes b's tokens alone and answers as Handler does.
func (f fused) Take(w http.ResponseWriter, r *http.Request, b store.Bucket) bool {
	l := f.l
	res := Result{Cost: b.Cost, now: l.clock()}
	lim := store.RateLimit{Rate: b.Rate, Burst: b.Burst}
	err := l.takeRemote(r.Context(), &res, b, nil)
	if err != nil && l.failOpen {
		res.failedOpen = true
		ok, tokens, pol := l.buckets.take(b.Account, lim, nil, res.Cost, res.now)
		res.fill(ok, tokens, pol)
		err = nil
	}
	if err != nil {
		c, _ := paywall.CallerFromContext(r.Context())
		l.refuseError(w, r, c, &res, err)
		return false
	}
	return l.answer(w, r, &res)
}

// answer sets the headers of res and reports it, or refuses the request if
// res was refused, and reports whether it was allowed.
func (l *Limiter) answer(w http.ResponseWriter, r *http.Request, res *Result) bool {
	c, _ := paywall.CallerFromContext(r.Context())
	if !res.Allowed {
		l.refuse(w, r, c, res)
		return false
	}
	l.setHeaders(w.Header(), res)
	if l.onDecision != nil {
		l.decide(r, c, res, nil)
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

// limitOf returns the rate and burst of a request from account a (nil if
// none) and their precomputed policy, or a nil policy for a per-account
// override.
func (l *Limiter) limitOf(a *store.Account) (store.RateLimit, *policy) {
	pol := l.configured.def
	if a != nil {
		if rl := a.RateLimit; rl != nil && rl.Rate > 0 && rl.Burst > 0 && !math.IsInf(rl.Rate, 1) {
			return *rl, nil
		}
		if p := l.configured.ofPlan(a.Plan); p != nil {
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
