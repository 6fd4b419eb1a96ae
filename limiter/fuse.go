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
	lim, pol := l.limitOf(a)
	b := l.remoteBucket(a.ID, a.ID, lim, cost)
	if pol != nil && pol.set != nil {
		b.More = pol.set.moreBuckets(l.opts.Clock(), a)
	}
	return b, true
}

// Admit answers for res, b's take made with a debit, as Handler does.
func (f fused) Admit(w http.ResponseWriter, r *http.Request, b store.Bucket, res store.BucketResult) bool {
	l := f.l
	out := Result{Cost: b.Cost}
	if l.opts.OnDecision != nil {
		out.now = l.opts.Clock() // the decision's time; nothing else needs it
	}
	c, _ := paywall.CallerFromContext(r.Context())
	out.fillStore(res, l.policyOf(c, b))
	ok := l.answer(w, r, c, &out)
	out.release()
	return ok
}

// Take takes b's tokens alone and answers as Handler does.
func (f fused) Take(w http.ResponseWriter, r *http.Request, b store.Bucket) bool {
	l := f.l
	res := Result{Cost: b.Cost, now: l.opts.Clock(), Limit: store.RateLimit{Rate: b.Rate, Burst: b.Burst}}
	c, _ := paywall.CallerFromContext(r.Context())
	if c != nil {
		res.account = &c.Account
	}
	if len(b.More) > 0 {
		res.policy = l.policyOf(c, b)
	}
	if err := l.takeFrom(r.Context(), &res, b.Account, b.Account); err != nil {
		l.refuseError(w, r, c, &res, err)
		return false
	}
	ok := l.answer(w, r, c, &res)
	res.release()
	return ok
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

// policyOf returns the policy of fused bucket b, taken for caller c: c's
// account's (the one Bucket chose), else b's main window's alone.
func (l *Limiter) policyOf(c *paywall.Caller, b store.Bucket) *policy {
	if c != nil {
		if lim, pol := l.limitOf(&c.Account); pol != nil && lim.Rate == b.Rate && lim.Burst == b.Burst {
			return pol
		}
	}
	return l.configured.ofLimit(store.RateLimit{Rate: b.Rate, Burst: b.Burst})
}

// limitOf returns the rate and burst of the main window of a request from
// account a (nil if none) and their policy, nil for a per-account override
// of a policy of one window. The main window's rate is a's RateLimit, else
// its plan's, else the default; the other windows a's Windows, else its
// plan's, else Options.Windows.
func (l *Limiter) limitOf(a *store.Account) (store.RateLimit, *policy) {
	pol := l.configured.def
	if a == nil {
		return pol.limit, pol
	}
	if p := l.configured.byPlan.get(a.Plan); p != nil {
		pol = p
	}
	lim, set := pol.limit, pol.set
	rl := a.RateLimit
	override := rl != nil && rl.Rate > 0 && rl.Burst > 0 && !math.IsInf(rl.Rate, 1)
	if override {
		lim = *rl
	}
	if len(a.Windows) > 0 {
		if own, err := l.accountSets.get(l.opts.Name, a.Windows); err == nil {
			return lim, l.configured.of(lim, own)
		}
	}
	switch {
	case !override:
		return lim, pol
	case set == nil:
		return lim, nil
	}
	return lim, l.configured.of(lim, set)
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
