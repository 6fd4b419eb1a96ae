// Package otel402 records what go402 decides as OpenTelemetry metrics:
// decisions by step, code, route pattern and plan; how long deciding took;
// store calls, their latency and errors; credits debited, refunded and held; and
// rate-limit refusals by policy. Opt in to traces too with
// Options.TracerProvider.
//
// A Metrics is built once on a MeterProvider (the global one by default) and
// wired into a server in three places: its OnDecision method receives the
// paywall's and the limiters' decisions, its Store method wraps the store,
// and its Handler, in front of everything, starts the clock of each request's
// decision latency:
//
//	m, err := otel402.New(nil) // otel.GetMeterProvider()
//	if err != nil {
//		log.Fatal(err)
//	}
//	st := m.Store(store.NewMemory(nil))
//	pw, err := paywall.New(st, &paywall.Options{OnDecision: m.OnDecision})
//	lim, err := limiter.New(5, 10, &limiter.Options{
//		By: limiter.ByAccount(), Store: st.(store.Buckets), OnDecision: m.OnDecision,
//	})
//	mux.Handle("POST /generate", pw.Authenticate(lim.Handler(pw.Charge(10)(generate))))
//	http.ListenAndServe(":8080", m.Handler(mux))
//
// The wrapped store keeps every optional capability of the store it wraps
// (store.Refunder, store.Buckets, store.BucketSpender, store.Admin,
// store.Ledger, store.Holder, store.BucketHolder, store.Slots,
// store.SpendCapper) and no other, so metered charges, in-flight slots
// shared by replicas and spend caps work through it as on the store
// itself. Give the paywall and the limiter the same wrapped value: a
// limiter takes its tokens in the charge's debit only when its
// Options.Store is the paywall's own store.
//
// # Cardinality
//
// Attributes are bounded by construction: the route is the pattern the
// request matched (http.route, such as "POST /generate"), never its path;
// the plan is the account's plan name, never its ID or key. Past
// Options.MaxRoutes distinct routes, or Options.MaxPlans plans, further ones
// are recorded as "_OTHER".
//
// # Traces
//
// With Options.TracerProvider set, each decision is a span named
// "go402.<step>" (go402.authenticate, go402.require, go402.limit,
// go402.charge, go402.hold, go402.settle, go402.refund) and each call of
// the wrapped store one named "go402.store.<operation>"
// (go402.store.lookup, go402.store.spend, …), children of the span in the
// request's context. A decision's span has the attributes of its
// go402.decisions measurement and runs from the request's previous
// decision (or its arrival at Handler) to this one; a refund's or a
// settlement's, made after the handler, and a decision's without Handler,
// is an instant. A store call's span has go402.store.operation and, on
// failure, error.type, the error recorded and an Error status; an unknown
// key or account, or an account that exists, is an answer, not an error.
// A decision carrying an error (a store that failed) records it. Without
// a TracerProvider (the default) nothing is traced, at no cost.
//
// # Instruments
//
//	go402.decisions            counter    {decision}  go402.step, go402.allowed, go402.code, http.route, go402.plan
//	go402.decision.duration    histogram  s           the same, of a request's last decision; from Handler to it
//	go402.credits.debited      counter    {credit}    http.route, go402.plan
//	go402.credits.refunded     counter    {credit}    http.route, go402.plan
//	go402.credits.held         counter    {credit}    http.route, go402.plan
//	go402.ratelimit.refusals   counter    {request}   go402.policy, http.route, go402.plan
//	go402.store.duration       histogram  s           go402.store.operation, error.type (on failure)
//	go402.store.errors         counter    {error}     go402.store.operation, error.type
//
// go402.decision.duration is recorded once per request that passed
// through Metrics.Handler and met a go402 decision: the time until the
// decision that let it reach its handler (or refused it), with that
// decision's attributes. A refund or a settlement, made after the
// handler, is not timed.
//
// go402.store.operation is the store method called, in snake case:
// lookup, spend, refund, take_tokens, spend_with_tokens, hold, settle,
// hold_with_tokens, acquire_slot, release_slot, entries, and those of
// store.Admin (account, create_key, …). KeepsSpendCaps, a marker that
// does nothing, is passed on but not timed.
//
// go402.code is left out of an allowed decision, but for a request let
// through by FailOpen ("store_unavailable"). A store error wrapping
// store.ErrNotFound (an unknown key or account, a normal answer) is timed
// with error.type "not_found" but not counted in go402.store.errors; one
// wrapping store.ErrExists (an account created twice) likewise, with
// error.type "exists".
package otel402
