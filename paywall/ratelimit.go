package paywall

import (
	"context"
	"errors"
	"net/http"
	"reflect"

	"github.com/go402/go402/store"
)

// RateLimiter is a rate limit that [Paywall.ChargeWith] can decide in the
// same store operation as its debit, set as [ChargeOptions.RateLimit].
// *limiter.Limiter implements it. Implementations must be comparable (a
// pointer type, as *limiter.Limiter is): [ClaimRateLimit] compares them.
type RateLimiter interface {
	// Handler is the rate limit as a middleware. The charge uses it
	// whenever the decision cannot be fused; it must call
	// [ClaimRateLimit] before taking tokens.
	Handler(next http.Handler) http.Handler

	// Buckets returns the store that keeps the limiter's buckets, or nil
	// if the limiter keeps them itself. A charge fuses its decisions only
	// when this is the Paywall's own store: otherwise Handler decides, so
	// that every route the limiter guards draws on the same buckets.
	Buckets() store.Buckets

	// AccountBucket returns the token bucket r takes from and reports
	// true, if it is the own bucket of r's account (the [Caller]'s; the
	// bucket's Account is the account's ID) kept in the Paywall's store.
	// It reports false when the decision cannot be fused: no Caller, a
	// bucket keyed by something else, buckets kept elsewhere, or a request
	// the limiter would refuse before taking anything (such as one whose
	// cost it cannot compute). Handler then decides r instead.
	AccountBucket(r *http.Request) (b store.Bucket, ok bool)

	// Admit answers for res, the outcome of the take of b (from
	// AccountBucket(r)) that the store made together with the debit: it
	// sets the rate-limit headers on w and reports the decision as
	// Handler would. If the bucket refused, it writes the limiter's denial
	// and returns false; else it returns true and writes nothing else.
	Admit(w http.ResponseWriter, r *http.Request, b store.Bucket, res store.BucketResult) bool
}

// ClaimRateLimit records that rl decides the rate limit of the request
// whose context is ctx, and reports whether it still has to: false if rl
// has already decided it further out in the handler chain. The Handler of
// a [RateLimiter] calls it before taking tokens and passes a request it
// returns false for straight on, and [Paywall.ChargeWith] records its fused
// decisions here, so that a route wired with both rl.Handler and a charge
// with RateLimit rl — a mistake — takes the tokens once.
//
// A request remembers the first limiter that claimed it and the latest,
// which recognises a limiter applied twice in any chain of up to three
// limiter applications. Only requests that
// [Paywall.Authenticate] passed have a place to record claims; for any
// other request ClaimRateLimit returns true. It must be called from the
// goroutine serving the request.
func ClaimRateLimit(ctx context.Context, rl RateLimiter) bool {
	s := stateFrom(ctx)
	if s == nil {
		return true
	}
	return s.claimRateLimit(rl)
}

// rateLimited reports whether rl has claimed the request's rate limit.
func (s *requestState) rateLimited(rl RateLimiter) bool {
	return s.rateLimit == rl || s.ext != nil && s.ext.lastRateLimit == rl
}

// claimRateLimit records that rl decides the request's rate limit and
// reports whether it had not yet. It remembers the first limiter and the
// latest one.
func (s *requestState) claimRateLimit(rl RateLimiter) bool {
	switch {
	case s.rateLimited(rl):
		return false
	case s.rateLimit == nil:
		s.rateLimit = rl
	default:
		s.extra().lastRateLimit = rl
	}
	return true
}

// fusion is a [ChargeOptions.RateLimit] that a charge decides in the same
// store operation as its debit, with the handlers it falls back on, built
// once by ChargeWith.
type fusion struct {
	rl      RateLimiter
	spender store.BucketSpender

	// unfused is rl.Handler in front of the charge without rl: the whole
	// route as if wired unfused, for requests that cannot be fused.
	unfused http.Handler
	// limited is rl.Handler in front of next: the limiter alone, for a
	// request that is let through uncharged after a store failure.
	limited http.Handler
	// free and replay are rl.Handler in front of next, for a request that
	// the charge lets through without a debit: one that costs nothing,
	// and a retry with a remembered Idempotency-Key.
	free   http.Handler
	replay http.Handler
}

// newFusion returns the fusion of rl into a charge in front of next whose
// unfused form is plain, or nil if the Paywall's store cannot take tokens
// and debit credits in one operation.
func (p *Paywall) newFusion(rl RateLimiter, next, plain http.Handler) *fusion {
	spender, ok := p.store.(store.BucketSpender)
	if !ok || !sameStore(rl.Buckets(), p.store) {
		return nil
	}
	return &fusion{
		rl:      rl,
		spender: spender,
		unfused: rl.Handler(plain),
		limited: rl.Handler(next),
		free: rl.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := &stateFrom(r.Context()).caller
			p.allow(r, "charge", "", c, 0, c.Balance)
			next.ServeHTTP(w, r)
		})),
		replay: rl.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.allowReplay(r, &stateFrom(r.Context()).caller)
			next.ServeHTTP(w, r)
		})),
	}
}

// sameStore reports whether a and b are the same store: equal values of
// one comparable type (a pointer, for every store go402 has).
func sameStore(a, b any) bool {
	t := reflect.TypeOf(a)
	return t != nil && t == reflect.TypeOf(b) && t.Comparable() && a == b
}

// spendWithTokens is the store operation of a fused charge: it takes the
// tokens of b and debits cost in one call. If the bucket refused, the
// limiter writes its denial; if the store failed and the Paywall fails
// open, the request is passed on uncharged through the limiter alone. done
// reports that the request has been answered so; otherwise the caller
// answers for res and err as for a plain spend.
func (p *Paywall) spendWithTokens(w http.ResponseWriter, r *http.Request, s *requestState, f *fusion, b *store.Bucket, cost int64) (res store.SpendResult, done bool, err error) {
	c := &s.caller
	res, br, err := f.spender.SpendWithTokens(r.Context(), c.Account.ID, cost, *b)
	switch {
	case err != nil:
		if !p.failOpen || errors.Is(err, store.ErrNotFound) {
			return res, false, err
		}
		// Uncharged, as every spend that fails open; the limiter decides
		// alone, with its own fallback for a failing store.
		p.allow(r, "charge", CodeStoreUnavailable, c, cost, c.Balance)
		f.limited.ServeHTTP(w, r)
		return res, true, nil
	case !f.rl.Admit(w, r, *b, br): // 429, no credits debited
		s.voidIdem()
		return res, true, nil
	}
	s.claimRateLimit(f.rl) // the tokens are decided
	return res, false, nil
}
