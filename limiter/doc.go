// Package limiter limits request rates with token buckets (the semantics of
// golang.org/x/time/rate), per account or per client address, and answers
// with the standard RateLimit headers and go402's one renderer for denials.
//
// Standalone, keyed by the connection's peer address:
//
//	lim, err := limiter.New(10, 20, nil) // 10 requests a second, bursts of 20
//	if err != nil {
//		log.Fatal(err)
//	}
//	http.ListenAndServe(":8080", lim.Handler(mux))
//
// After key authentication, keyed by account, with rates per plan and the
// per-account [store.Account.RateLimit] override:
//
//	lim, err := limiter.New(1, 5, &limiter.Options{
//		By:    limiter.ByAccount(),
//		Plans: map[string]store.RateLimit{"pro": {Rate: 50, Burst: 100}},
//	})
//	h := pw.Authenticate(lim.Handler(pw.Charge(1)(api)))
//
// Every response the limiter passes or refuses carries
//
//	RateLimit-Policy: "default";q=20;w=2
//	RateLimit: "default";r=19;t=1
//
// (draft-ietf-httpapi-ratelimit-headers-10): the policy's quota q is the
// burst and its window w the seconds an empty bucket takes to fill; r is the
// whole tokens left and t the seconds until the next one (0 when the bucket
// is full). A refused request gets 429 with Retry-After and an RFC 9457
// problem of type quota-exceeded.
//
// Buckets live in the process, in a sharded map whose size is capped by
// [Options.MaxKeys]; see there for what happens at the cap. With
// [Options.Store] they live in a shared store instead — keyed by account,
// in each account's own bucket ([store.Bucket] Account).
//
// On a route that is both limited and charged, with the buckets in the
// paywall's store (the memory store or the Redis store), wire the limiter
// as any middleware, in front of the charge (or behind it, or with Require
// between them — the order does not matter):
//
//	lim, err := limiter.New(10, 20, &limiter.Options{By: limiter.ByAccount(), Store: st})
//	h := pw.Authenticate(lim.Handler(pw.Charge(1)(api)))
//
// The charge then takes the tokens and debits the credits in one store
// operation — under one lock of the account in memory, in one round trip
// on Redis, nothing taken if either refuses — with the same headers and
// denials as the limiter alone. A request that costs nothing, or a retry
// let through by an Idempotency-Key, still takes its tokens: limits count
// requests, not charges.
package limiter
