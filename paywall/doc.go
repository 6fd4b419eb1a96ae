// Package paywall authenticates API keys, checks plans and features, charges
// credits, and writes the standard 401/402/503 responses (RFC 9457 problem
// details) that clients and agents can act on.
//
// A [Paywall] is built once with [New] on a [store.Store]; its methods return
// middlewares of type func(http.Handler) http.Handler that compose in this
// order:
//
//	pw, err := paywall.New(store.NewMemory(nil), nil)
//	if err != nil {
//		log.Fatal(err)
//	}
//	mux := http.NewServeMux()
//	mux.Handle("GET /hello", pw.Authenticate(hello))
//	mux.Handle("GET /reports", pw.Authenticate(pw.Require(paywall.Requirement{Features: []string{"reports"}})(reports)))
//	mux.Handle("POST /generate", pw.Authenticate(pw.Charge(10)(generate)))
//
// [Paywall.Authenticate] reads the key (see [Paywall.ExtractKey]), looks its
// SHA-256 digest up and puts a [Caller] in the request's context;
// [Paywall.Require] checks the subscription, plan and features;
// [Paywall.Charge] debits credits atomically before the handler runs and can
// refund them when it fails. Handlers read the caller with
// [CallerFromContext].
//
// Authenticate makes one allocation per request it lets through: the
// request's copy that carries the caller (http.Request.WithContext is the
// only way to pass it on) together with the [Caller]. With a store that
// hands out its own read-only records ([store.SharedLookup], as go402's
// memory, callback and Redis stores do), the Caller points to them and the
// allocation is 384 bytes; with any other, it holds copies of the key and
// account (704 bytes).
//
// Every refusal is a [Denial] written by one renderer, [WriteDenial]
// (replaceable with [Options.Deny]): a stable [Code], the status (401 for
// keys, with a WWW-Authenticate Bearer challenge; 402 for plans and credits;
// 503 when the store fails), Cache-Control: no-store, Retry-After where
// waiting helps, and a body in application/problem+json, HTML for browsers,
// or plain text. Handlers can call WriteDenial themselves to refuse a
// request in the same way, with no middleware at all.
//
// A route that is also rate limited per account names its limiter as the
// charge's [ChargeOptions.RateLimit], instead of putting it in the chain;
// with a store that implements [store.BucketSpender] (the memory and
// Redis stores), the tokens and the credits are then taken in one store
// operation — one lock, or one round trip — and neither if either refuses:
//
//	mux.Handle("POST /generate", pw.Authenticate(pw.ChargeWith(paywall.ChargeOptions{Cost: 10, RateLimit: lim})(generate)))
//
// With [Options.IdempotencyWindow] set, a client can retry a paid request
// with the same Idempotency-Key header and is not charged again within the
// window: the handler runs again, with [Caller.Replay] set, so it must give
// the same answer for the same key (responses are never stored). The keys
// are remembered per process; see [Paywall.ChargeWith].
//
// Raw keys never leave [Paywall.ExtractKey]: responses, errors and each
// [Decision] reported to [Options.OnDecision] carry at most the account ID
// and the key's display prefix.
package paywall
