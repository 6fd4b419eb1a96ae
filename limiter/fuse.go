package limiter

import (
	"fmt"
	"math"
	"net/http"

	"github.com/go402/go402/internal/fuse"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// fused is a Limiter as the limit a paywall charge takes from the
// account's own bucket in the store operation of its debit.
type fused struct{ l *Limiter }

var _ fuse.Limit = fused{}

func (f fused) Buckets() store.Buckets { return f.l.opts.Store }

func (f fused) Alone(next http.Handler) http.Handler { return &limitHandler{l: f.l, next: next} }

// Bucket returns a's bucket for r, or answers r if CostFunc fails.
func (f fused) Bucket(w http.ResponseWriter, r *http.Request, a *store.Account) (store.Bucket, bool) {
	l := f.l
	cost, err := l.requestCost(r)
	if err != nil {
		c, _ := paywall.CallerFromContext(r.Context())
		l.refuseError(w, r, c, &Result{now: l.opts.Clock()}, err)
		return store.Bucket{}, false
	}
	lim, _ := l.limitOf(a)
	return l.remoteBucket(a.ID, a.ID, lim, cost), true
}

// Admit answers for res, b's take made with a debit, as Handler does.
func (f fused) Admit(w http.ResponseWriter, r *http.Request, b store.Bucket, res store.BucketResult) bool {
	l := f.l
	out := Result{Cost: b.Cost}
	if l.opts.OnDecision != nil {
		out.now = l.opts.Clock() // the decision's time; nothing else needs it
	}
	out.fillStore(res, l.configured.ofLimit(store.RateLimit{Rate: b.Rate, Burst: b.Burst}))
	c, _ := paywall.CallerFromContext(r.Context())
	return l.answer(w, r, c, &out)
}

// Take takes b's tokens alone and answers as Handler does.
func (f fused) Take(w http.ResponseWriter, r *http.Request, b store.Bucket) bool {
	l := f.l
	res := Result{Cost: b.Cost, now: l.opts.Clock(), Limit: store.RateLimit{Rate: b.Rate, Burst: b.Burst}}
	c, _ := paywall.CallerFromContext(r.Context())
	if err := l.takeFrom(r.Context(), &res, b.Account, b.Account); err != nil {
		l.refuseError(w, r, c, &res, err)
		return false
	}
	return l.answer(w, r, c, &res)
}

// requestCost returns the tokens r takes.
func (l *Limiter) requestCost(r *http.Request) (int, error) {
	if l.opts.CostFunc == nil {
		return l.opts.Cost, nil
	}
	n, err := l.opts.CostFunc(r)
	if err == nil && n < 0 {
		err = fmt.Errorf("negative cost %d", n)
	}
	if err != nil {
		return 0, &costError{err}
	}
	return n, nil
}

// limitOf returns the rate and burst of a request from account a (nil if
// none) and their policy, nil for a per-account override.
func (l *Limiter) limitOf(a *store.Account) (store.RateLimit, *policy) {
	pol := l.configured.def
	if a != nil {
		if rl := a.RateLimit; rl != nil && rl.Rate > 0 && rl.Burst > 0 && !math.IsInf(rl.Rate, 1) {
			return *rl, nil
		}
		if p := l.configured.byPlan.get(a.Plan); p != nil {
			pol = p
		}
	}
	return pol.limit, pol
}

// remoteBucket is the bucket in Options.Store that takes cost tokens at
// rate and burst lim: account's own named after the policy, if account is
// set, else "<Name>:<key>".
func (l *Limiter) remoteBucket(account, key string, lim store.RateLimit, cost int) store.Bucket {
	b := store.Bucket{Account: account, Key: l.opts.Name, Rate: lim.Rate, Burst: lim.Burst, Cost: cost}
	if account == "" {
		b.Key = l.opts.Name + ":" + key
	}
	return b
}
