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
// After key authentication, keyed by account, with rates per plan (and the
// per-account [store.Account.RateLimit] override), the buckets in the
// paywall's store st:
//
//	lim, err := limiter.New(1, 5, &limiter.Options{
//		By:    limiter.ByAccount(),
//		Plans: map[string]store.RateLimit{"pro": {Rate: 50, Burst: 100}},
//		Store: st,
//	})
//	h := pw.Authenticate(lim.Handler(pw.Charge(1)(api)))
//
// Every response the limiter passes or refuses carries
//
//	RateLimit-Policy: "default";q=20;w=2
//	RateLimit: "default";r=19;t=1
//
// (draft-ietf-httpapi-ratelimit-headers-10): quota q is the burst, window w
// the seconds an empty bucket takes to fill, r the whole tokens left and t
// the seconds until the next one (0 when full). A refused request gets 429
// with Retry-After and an RFC 9457 problem of type quota-exceeded.
//
// A policy may have several windows — its token bucket and, in
// [Options.Windows], [Options.PlanWindows] or [store.Account.Windows], more
// token buckets or counts per second, minute, hour, day or month (a month
// anchored on the account's refill anchor, its billing cycle):
//
//	Windows: []store.Window{{Name: "daily", Burst: 10000, Period: store.PeriodDay}},
//
// A request passes only if every window admits it and then takes from all;
// one that refuses takes nothing from any (one lock in the process, one
// operation in a store, one round trip on Redis). RateLimit-Policy and
// RateLimit list every window; a 429 names those that refused in
// violated-policies. [Options.MaxInFlight] limits the requests in flight
// per key, and [Options.Shadow] reports every decision without refusing.
//
// Buckets live in the process, in a sharded map capped by [Options.MaxKeys],
// or with [Options.Store] in a shared store — keyed by account, in each
// account's own bucket ([store.Bucket] Account).
//
// On a route both limited and charged, with ByAccount and the buckets in
// the paywall's store (memory or Redis), the limiter goes anywhere in the
// chain (in front of the charge, behind it, or with Require between). The
// charge then takes the tokens and debits the credits in one store
// operation — under one lock of the account in memory, one round trip on
// Redis, nothing taken if either refuses — with the same headers and
// denials as the limiter alone. A request that costs nothing, or a retry
// let through by an Idempotency-Key, still takes its tokens: limits count
// requests, not charges.
package limiter
