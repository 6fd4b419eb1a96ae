// Package paywall authenticates API keys, checks plans and features, charges
// credits, and writes the standard 401/402/503 responses (RFC 9457 problem
// details) that clients and agents can act on.
//
// A [Paywall] is built once with [New] on a [store.Store]; its methods return
// middlewares of type func(http.Handler) http.Handler:
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
// [Paywall.Authenticate] looks the key's SHA-256 digest up and puts a
// [Caller] in the request's context, read by handlers with
// [CallerFromContext]; [Paywall.Require] checks the subscription, plan and
// features; [Paywall.Charge] debits credits atomically before the handler
// runs. Require and Charge without Authenticate in front are a wiring
// mistake: they answer 500 misconfigured and log it once.
//
// # Denials
//
// Every refusal is a [Denial] with a stable [Code], written by [WriteDenial]
// (or [Options.Deny]): 401 for keys, 402 for plans and credits, 503 when the
// store fails. Raw keys never leave Authenticate: responses, errors and each
// [Decision] reported to [Options.OnDecision] carry at most the account ID
// and the key's prefix. A store's failure is the Decision's Err, logged by
// [Options.Logger] if set, and never in a response.
//
// # Limit and charge together
//
// A per-account limiter whose buckets are in the paywall's store is wired
// like any middleware, in front of the charge:
//
//	lim, err := limiter.New(5, 10, &limiter.Options{By: limiter.ByAccount(), Store: st})
//	mux.Handle("POST /generate", pw.Authenticate(lim.Handler(pw.Charge(10)(generate))))
//
// With a store that implements [store.BucketSpender] (the memory and Redis
// stores), the tokens and the credits are then taken in one store operation
// — one lock, or one round trip — and neither if either refuses, whatever
// the order (Require may sit between); with buckets elsewhere, the limiter
// simply runs in front. Limits count requests: a free request or an
// idempotent retry still takes its tokens, and a refund gives back credits,
// never tokens.
//
// # Refunds
//
// With [ChargeOptions.Refund], the handler's ResponseWriter records the
// status, unbuffered; it is a [net/http.Flusher] and an [io.ReaderFrom], and
// unwraps for [net/http.ResponseController]. A handler that wrote nothing
// counts as 200; one that panics as 500, refunded before the panic goes on.
// A refund is made at most once per charge, even if the client hung up, and
// reported as Step "refund".
//
// # Metered charges
//
// When a request's cost is known only after the response (tokens generated,
// rows exported), [ChargeOptions.Metered] holds the most it may cost (Cost or
// CostFunc, for example from the request's max_tokens) before the handler
// runs — a hold the balance does not cover is a 402 saying how much was
// needed — and the handler reports the actual cost on [MeterFrom]'s [Meter]
// as it streams or at the end. When it returns (or panics, or the client
// hangs up) the actual cost, at least MinCost and at most the hold unless
// Overdraft, is debited and the rest released; a status the refund rules
// cover settles at zero. Holds and settlements are reported as Steps "hold"
// and "settle". A hold has a lease ([ChargeOptions.Lease]): a process that
// dies holding credits gives them back when it ends, and a settlement after
// it is charged as a plain spend. A metered charge fuses with a limit as a
// fixed one does, with a store that implements [store.BucketHolder] (the
// memory and Redis stores): the tokens are taken with the hold, in one store
// operation, and the settlement is one more.
//
// # Shadow mode
//
// With [Options.Shadow] the paywall refuses nothing and moves no credits,
// so that a new plan, price or key requirement can be watched on live
// traffic before it is enforced. Every step decides as it would —
// authentication, plan and features, lapse and grace, the balance against
// the cost or the hold — and then the request goes on:
//
//   - A request it would have refused carries Paywall-Shadow naming the
//     first refusal, the one an enforcing paywall would have answered, as
//     a Structured Field item: "insufficient_credits";status=402;step="charge".
//     Later steps let it through unchecked, as they would never have run;
//     after a key refusal (or a store failure) the handler sees no [Caller].
//   - A past-due account in its grace gets Payment-Overdue-Shadow instead
//     of Payment-Overdue. No other header of a denial is sent.
//   - Every [Decision] is reported marked Shadow: a would-be refusal with
//     Allowed false and its Code and Status, an admitted charge or hold with
//     the Cost it would have debited, and a metered request's "settle" with
//     what the handler reported (at least MinCost, at most the hold unless
//     Overdraft).
//   - Nothing is debited, held or refunded, for any request: the balance
//     is read as it stands, with a refill due applied ([store.Preview]). So
//     each request is judged alone — earlier requests spent nothing — and
//     the sum of the admitted Costs per account, from OnDecision, is what
//     enforcement would have charged. Idempotency-Key is checked for form
//     only, a charge never fuses with a limiter (which has its own Shadow),
//     and a store failure is named as the 503 it would be unless FailOpen.
//
// Wiring mistakes (Require or Charge without Authenticate) still answer
// 500. A limiter by account behind a shadow paywall sees no account on a
// request whose key was refused, and counts all those together: roll it
// out in shadow too, or key it by client address. Turning Shadow off
// enforces what was reported.
//
// # Idempotency
//
// With [Options.IdempotencyWindow] set, a request with an Idempotency-Key
// header (a Structured Field string, or a bare token, of 1 to 255 printable
// ASCII characters) is debited at most once per key, account, method and
// route within the window: a retry runs the handler again, with
// [Caller.Replay] set and no debit, so the handler must give the same
// answer for the same key (responses are never stored). A key reused for
// another method or route is refused with 422, a retry of a request still
// in flight with 409. A refused or refunded charge leaves the key free.
// Keys are remembered in this process only, at most 100,000 of them; past
// that the oldest are forgotten, which can cost a client a second charge,
// never give it a free request.
package paywall
