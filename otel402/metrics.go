package otel402

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/go402/go402/paywall"
)

// ScopeName is the instrumentation scope of every instrument.
const ScopeName = "github.com/go402/go402/otel402"

// Options configures New. The zero value of every field means the
// documented default; a nil *Options means all defaults.
type Options struct {
	// MeterProvider makes the instruments. Default otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// TracerProvider, if set, makes a span of each decision
	// ("go402.<step>") and of each store call ("go402.store.<operation>"):
	// see the package documentation. Nil, the default, means no tracing,
	// at no cost.
	TracerProvider trace.TracerProvider
	// MaxRoutes is how many distinct http.route values are recorded; later
	// ones become "_OTHER". Default 1000.
	MaxRoutes int
	// MaxPlans is how many distinct go402.plan values are recorded; later
	// ones become "_OTHER". Default 100.
	MaxPlans int
}

// Metrics records go402's decisions and store calls. Create one with New;
// it is safe for concurrent use.
type Metrics struct {
	now    func() time.Time
	tracer trace.Tracer // nil: no tracing

	decisions  metric.Int64Counter
	latency    metric.Float64Histogram
	debited    metric.Int64Counter
	refunded   metric.Int64Counter
	held       metric.Int64Counter
	refusals   metric.Int64Counter
	storeTime  metric.Float64Histogram
	storeFails metric.Int64Counter

	routes, plans *boundedNames
	attrs         attrCache
	ops           [numOperations]operationAttrs
}

// New returns a Metrics whose instruments come from opts.MeterProvider, or
// an error prefixed "otel402:" if one cannot be made or an option is
// negative.
func New(opts *Options) (*Metrics, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxRoutes < 0 || o.MaxPlans < 0 {
		return nil, fmt.Errorf("otel402: MaxRoutes and MaxPlans must be ≥ 0, got %d and %d", o.MaxRoutes, o.MaxPlans)
	}
	if o.MeterProvider == nil {
		o.MeterProvider = otel.GetMeterProvider()
	}
	m := &Metrics{
		now:    time.Now,
		routes: newBoundedNames(defaultTo(o.MaxRoutes, 1000)),
		plans:  newBoundedNames(defaultTo(o.MaxPlans, 100)),
	}
	if err := m.instruments(o.MeterProvider.Meter(ScopeName)); err != nil {
		return nil, fmt.Errorf("otel402: %w", err)
	}
	m.ops = operationTable()
	if o.TracerProvider != nil {
		m.tracer = o.TracerProvider.Tracer(ScopeName)
	}
	return m, nil
}

func defaultTo(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

// instruments makes m's instruments on meter.
func (m *Metrics) instruments(meter metric.Meter) error {
	var errs [8]error
	m.decisions, errs[0] = meter.Int64Counter("go402.decisions", metric.WithUnit("{decision}"),
		metric.WithDescription("Decisions of the go402 middlewares, allowed or denied."))
	m.latency, errs[1] = meter.Float64Histogram("go402.decision.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from the request's arrival at otel402's Handler to its last go402 decision."),
		metric.WithExplicitBucketBoundaries(0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))
	m.debited, errs[2] = meter.Int64Counter("go402.credits.debited", metric.WithUnit("{credit}"),
		metric.WithDescription("Credits debited by charges and metered settlements, idempotent retries excluded."))
	m.refunded, errs[3] = meter.Int64Counter("go402.credits.refunded", metric.WithUnit("{credit}"),
		metric.WithDescription("Credits given back by refunds."))
	m.refusals, errs[4] = meter.Int64Counter("go402.ratelimit.refusals", metric.WithUnit("{request}"),
		metric.WithDescription("Requests refused by a rate limit, by policy."))
	m.storeTime, errs[5] = meter.Float64Histogram("go402.store.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of calls to the go402 store."),
		metric.WithExplicitBucketBoundaries(0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))
	m.storeFails, errs[6] = meter.Int64Counter("go402.store.errors", metric.WithUnit("{error}"),
		metric.WithDescription("Failed calls to the go402 store; unknown keys and accounts excluded."))
	m.held, errs[7] = meter.Int64Counter("go402.credits.held", metric.WithUnit("{credit}"),
		metric.WithDescription("Credits held by metered charges before their settlement."))
	return errors.Join(errs[:]...)
}

// timingKey is the context key of a request's *timing.
type timingKey struct{}

// timing is when Handler received a request, and how long after it the
// request's latest decision came, with that decision's attributes. Atomic,
// in case a decision is made on another goroutine than Handler's.
type timing struct {
	start   time.Time
	elapsed atomic.Int64 // nanoseconds
	last    atomic.Pointer[decisionAttrs]
}

// Handler is a middleware that times each request's decisions, for
// go402.decision.duration: the time from Handler to the request's last
// decision before its handler ran (or its denial), recorded once per
// request with that decision's attributes. Put it in front of the go402
// middlewares (around the whole mux is simplest). Without it, decisions are
// counted but not timed. It panics if next is nil.
func (m *Metrics) Handler(next http.Handler) http.Handler {
	if next == nil {
		panic("otel402: Handler: nil handler")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := &timing{start: m.now()}
		defer m.recordTiming(r.Context(), t)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), timingKey{}, t)))
	})
}

// decided records that a decision with attributes a came at now, and
// returns when the request's previous decision came (or it arrived).
func (t *timing) decided(now time.Time, a *decisionAttrs) (prev time.Time) {
	prev = t.start.Add(time.Duration(t.elapsed.Swap(int64(now.Sub(t.start)))))
	t.last.Store(a)
	return prev
}

// recordTiming records t, in ctx (the request's, as Handler received it),
// if a decision was made.
func (m *Metrics) recordTiming(ctx context.Context, t *timing) {
	if a := t.last.Load(); a != nil {
		m.latency.Record(ctx, time.Duration(t.elapsed.Load()).Seconds(), a.latency...)
	}
}

// count adds d to the credit and refusal counters.
func (m *Metrics) count(ctx context.Context, d paywall.Decision, a *decisionAttrs, plan string) {
	if c := m.creditCounter(d); c != nil {
		c.Add(ctx, d.Cost, a.credits...)
	}
	if d.Step == "limit" && d.Code == paywall.CodeRateLimited {
		r := m.attrs.refusal(m, refusalKey{policy: d.Policy, route: d.Route, plan: plan})
		m.refusals.Add(ctx, 1, r...)
	}
}

// afterHandler reports whether d, a refund or a settlement, comes after
// the request's handler, so is not a decision's latency.
func afterHandler(d paywall.Decision) bool {
	return d.Step == "refund" || d.Step == "settle"
}

// creditCounter is the counter of the credits d moved, or nil: a metered
// request's credits count as held at its hold and as debited at its
// settlement; a shadow decision moves none.
func (m *Metrics) creditCounter(d paywall.Decision) metric.Int64Counter {
	if !d.Allowed || d.Shadow || d.Cost <= 0 {
		return nil
	}
	switch d.Step {
	case "refund":
		return m.refunded
	case "hold":
		return m.held
	case "settle":
		return m.debited
	case "charge":
		if d.Code == "" && !d.Replay {
			return m.debited
		}
	}
	return nil
}

// OnDecision records d: assign it to paywall.Options.OnDecision and to
// the OnDecision of every limiter. The plan is read from the Caller in ctx.
func (m *Metrics) OnDecision(ctx context.Context, d paywall.Decision) {
	plan := ""
	if c, ok := paywall.CallerFromContext(ctx); ok {
		plan = c.Account.Plan
	}
	a := m.attrs.decision(m, decisionKey{step: d.Step, code: string(d.Code), route: d.Route, plan: plan, allowed: d.Allowed})
	m.decisions.Add(ctx, 1, a.decision...)
	m.count(ctx, d, a, plan)
	var t *timing
	if !afterHandler(d) {
		t, _ = ctx.Value(timingKey{}).(*timing)
	}
	if t == nil && m.tracer == nil {
		return
	}
	now := m.now()
	iv := interval{now, now}
	if t != nil {
		iv.start = t.decided(now, a)
	}
	if m.tracer != nil {
		m.traceDecision(ctx, d, a, iv)
	}
}
