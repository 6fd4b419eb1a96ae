package limiter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// Limiter admits requests while their token bucket holds enough tokens. Each
// bucket gains a rate of tokens per second up to a burst; a request takes its
// cost in tokens or is refused. Create one with [New] (the zero Limiter is
// not usable); [Limiter.Handler] is the middleware and [Limiter.Take] the
// decision alone. A Limiter is safe for concurrent use.
//
// The rate and burst of a request come, in order of precedence, from the
// [store.Account.RateLimit] override of the caller's account, from
// [Options.Plans] for the account's plan, or from the rate and burst given to
// [New]. The caller is the one [paywall.Paywall.Authenticate] put in the
// request's context; without one the limiter's own rate and burst apply. An
// override whose Rate or Burst is not positive (which stores that validate
// accounts refuse anyway) is ignored.
type Limiter struct {
	name    string // policy name
	rPrefix string // `"name";r=`
	// configured are the default's policy and the plans'.
	configured *policies

	by        Keyer
	byAccount bool // by is ByAccount()
	cost      int
	costFunc  func(r *http.Request) (int, error)

	status           int
	legacy           bool
	deny             paywall.DenyFunc
	onDecision       func(ctx context.Context, d paywall.Decision)
	violatedPolicies []string // {name}, the violated-policies of a denial

	buckets          *table
	remote           store.Buckets
	failOpen         bool
	retryUnavailable time.Duration
	clock            func() time.Time
	warnOnce         sync.Once
}

// Options configures a [Limiter]. The zero value of every field means the
// documented default; a nil *Options means all defaults.
type Options struct {
	// Name names the policy in the RateLimit-Policy and RateLimit headers
	// and in the violated-policies member of a denial. It must be printable
	// ASCII, at most 64 bytes. Default "default".
	Name string

	// Plans gives the rate and burst of each plan, by plan name. An
	// account's own RateLimit override beats its plan's entry; accounts on
	// plans not listed, and requests without an account, get the rate and
	// burst given to [New].
	Plans map[string]store.RateLimit

	// By says whose bucket a request takes tokens from. Default
	// ByClientAddr() — the connection's peer address, no proxy trusted. Use
	// [ByAccount] after [paywall.Paywall.Authenticate].
	By Keyer

	// Cost is the number of tokens a request takes. Default 1. Ignored if
	// CostFunc is set.
	Cost int
	// CostFunc, if set, computes the number of tokens a request takes. An
	// error (or a negative cost) refuses the request with 400
	// invalid_request, the error's text as the detail, so it must not
	// contain secrets. A cost of 0 is always admitted.
	CostFunc func(r *http.Request) (int, error)

	// DenyStatus is the status of a rate-limit denial. Default 429 Too Many
	// Requests; 402 Payment Required suits plans whose answer to "too fast"
	// is "upgrade for a higher limit". It must be in 400–499.
	DenyStatus int

	// LegacyHeaders adds X-RateLimit-Limit (the burst),
	// X-RateLimit-Remaining and X-RateLimit-Reset (seconds from now, not a
	// Unix time) to the draft-10 RateLimit and RateLimit-Policy headers,
	// which are always sent.
	LegacyHeaders bool

	// Deny writes every denial. Default [paywall.WriteDenial], so a 429
	// looks like every other go402 denial.
	Deny paywall.DenyFunc

	// OnDecision, if set, is called synchronously for every request the
	// limiter allows or denies, with Step "limit" and Cost the tokens the
	// request took or would have taken. It must be safe for concurrent use
	// and should return quickly.
	OnDecision func(ctx context.Context, d paywall.Decision)

	// Store, if set, holds the buckets instead of this process, so that
	// replicas share one limit (the Redis store offers it, and so does the
	// memory store). With [ByAccount], a request takes from its account's
	// bucket named after the policy ([store.Bucket] Account, and Key =
	// Name); otherwise from the stand-alone bucket Name + ":" + its key.
	// With ByAccount and the paywall's own store, a charge next to the
	// limiter takes the tokens together with its debit (see the package
	// documentation).
	Store store.Buckets
	// FailOpen, when Store fails, takes the tokens from an in-process
	// bucket instead, and reports the decision to OnDecision with Code
	// store_unavailable. Default false: the request is refused with 503
	// store_unavailable and Retry-After.
	FailOpen bool
	// RetryAfterUnavailable is the Retry-After of a 503 store_unavailable.
	// Default 1 second.
	RetryAfterUnavailable time.Duration

	// MaxKeys caps the number of in-process buckets, and with it their
	// memory: about MaxKeys × (256 + key length) bytes. Default 100,000.
	//
	// A bucket is removed once it has filled up again, since a full bucket
	// is the same as a new one: idle keys cost nothing. When a flood of new
	// keys finds no full bucket to remove, the new key evicts a bucket not
	// used since the shard's eviction hand last passed it. New keys are never refused (that
	// would let a flood of addresses lock everyone else out) nor let
	// through unlimited (a bypass); the price is that a client evicted
	// while its bucket was partly drained starts again with a full one —
	// at most one burst extra, and only while MaxKeys other keys are
	// arriving within the time its bucket takes to refill. Size MaxKeys
	// above the number of clients active in that time.
	MaxKeys int

	// Clock returns the current time; tests inject a fake one. Default: the
	// time.Now of New plus the monotonic time elapsed since, which reads one
	// clock where time.Now reads two, and never jumps when the system clock
	// is set (Decision.Time then differs from time.Now by such a step).
	Clock func() time.Time
}

// defaultName is the default policy name, [Options.Name].
const defaultName = "default"

// Errors returned by [Limiter.Take], for [errors.Is].
var (
	// ErrInvalidCost means the cost of the request could not be computed:
	// CostFunc failed or returned a negative cost.
	ErrInvalidCost = errors.New("limiter: invalid cost")
	// ErrStoreUnavailable means Options.Store failed and FailOpen is off.
	ErrStoreUnavailable = errors.New("limiter: store unavailable")
)

// New returns a Limiter whose buckets gain r tokens per second up to burst,
// for requests whose account has no rate of its own. It reports
// configuration mistakes as errors prefixed "limiter:".
func New(r float64, burst int, opts *Options) (*Limiter, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	def := store.RateLimit{Rate: r, Burst: burst}
	if err := checkRate("", def); err != nil {
		return nil, err
	}
	for _, check := range []func(*Options) error{setName, setCost, setLimits} {
		if err := check(&o); err != nil {
			return nil, err
		}
	}
	l := &Limiter{
		name:             o.Name,
		rPrefix:          quote(o.Name) + ";r=",
		by:               cmpOr[Keyer](o.By, ByClientAddr()),
		byAccount:        isByAccount(o.By),
		cost:             o.Cost,
		costFunc:         o.CostFunc,
		status:           o.DenyStatus,
		legacy:           o.LegacyHeaders,
		deny:             o.Deny,
		onDecision:       o.OnDecision,
		violatedPolicies: []string{o.Name},
		remote:           o.Store,
		failOpen:         o.FailOpen,
		retryUnavailable: o.RetryAfterUnavailable,
		clock:            o.Clock,
	}
	if l.deny == nil {
		l.deny = paywall.WriteDenial
	}
	if l.clock == nil {
		l.clock = monotonicClock()
	}
	l.buckets = newTable(o.MaxKeys, l.clock())
	if err := l.setPolicies(def, &o); err != nil {
		return nil, err
	}
	return l, nil
}

// isByAccount reports whether k is ByAccount().
func isByAccount(k Keyer) bool {
	_, ok := k.(accountKeyer)
	return ok
}

// cmpOr returns v, or def if v is the zero value (nil).
func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// setName validates the policy name and sets its default.
func setName(o *Options) error {
	if o.Name == "" {
		o.Name = defaultName
	}
	if len(o.Name) > 64 {
		return fmt.Errorf("limiter: Name longer than 64 bytes")
	}
	for i := 0; i < len(o.Name); i++ {
		if c := o.Name[i]; c < ' ' || c > '~' {
			return fmt.Errorf("limiter: Name must be printable ASCII, got %q", o.Name)
		}
	}
	return nil
}

// setCost validates the cost and the status of a denial, and sets their
// defaults.
func setCost(o *Options) error {
	switch {
	case o.Cost < 0:
		return fmt.Errorf("limiter: Cost must be >= 0, got %d", o.Cost)
	case o.Cost == 0:
		o.Cost = 1
	}
	switch {
	case o.DenyStatus == 0:
		o.DenyStatus = http.StatusTooManyRequests
	case o.DenyStatus < 400 || o.DenyStatus > 499:
		return fmt.Errorf("limiter: DenyStatus must be in 400–499, got %d", o.DenyStatus)
	}
	return nil
}

// setLimits validates MaxKeys and RetryAfterUnavailable and sets their
// defaults.
func setLimits(o *Options) error {
	switch {
	case o.MaxKeys == 0:
		o.MaxKeys = defaultMaxKeys
	case o.MaxKeys < 0:
		return fmt.Errorf("limiter: MaxKeys must be > 0, got %d", o.MaxKeys)
	}
	switch {
	case o.RetryAfterUnavailable == 0:
		o.RetryAfterUnavailable = time.Second
	case o.RetryAfterUnavailable < 0:
		return fmt.Errorf("limiter: RetryAfterUnavailable must be >= 0, got %v", o.RetryAfterUnavailable)
	}
	return nil
}

// setPolicies validates the plans' rates and builds the policies of def
// and the plans.
func (l *Limiter) setPolicies(def store.RateLimit, o *Options) error {
	quoted := quote(l.name)
	maxBurst := def.Burst
	plans := make(map[string]*policy, len(o.Plans))
	for name, lim := range o.Plans {
		if err := checkRate(fmt.Sprintf("Plans[%q].", name), lim); err != nil {
			return err
		}
		plans[name] = newPolicy(quoted, lim, o.Cost)
		maxBurst = max(maxBurst, lim.Burst)
	}
	if o.CostFunc == nil && o.Cost > maxBurst {
		return fmt.Errorf("limiter: Cost %d exceeds every configured burst (at most %d): no request could pass", o.Cost, maxBurst)
	}
	l.configured = newPolicies(newPolicy(quoted, def, o.Cost), plans, quoted, o.Cost)
	l.buckets.ps = l.configured
	return nil
}

// monotonicClock returns a clock that reads only the monotonic clock: the
// wall time when it was made plus the time elapsed since. A rate decision
// needs only elapsed time, and time.Since of a time with a monotonic reading
// costs half of time.Now.
func monotonicClock() func() time.Time {
	start := time.Now()
	return func() time.Time { return start.Add(time.Since(start)) }
}

// checkRate validates a rate and burst; field prefixes the names in errors.
func checkRate(field string, lim store.RateLimit) error {
	switch {
	case !(lim.Rate > 0) || math.IsInf(lim.Rate, 1):
		return fmt.Errorf("limiter: %sRate must be a positive number of tokens per second, got %v", field, lim.Rate)
	case lim.Burst <= 0:
		return fmt.Errorf("limiter: %sBurst must be > 0, got %d", field, lim.Burst)
	}
	return nil
}

// Result is the outcome of [Limiter.Take].
type Result struct {
	// Allowed reports whether the tokens were taken.
	Allowed bool
	// Limit is the rate and burst of the request's bucket.
	Limit store.RateLimit
	// Cost is the number of tokens the request took, or would have taken.
	Cost int
	// Remaining is the number of whole tokens left in the bucket.
	Remaining int
	// Reset is how long until the bucket gains another whole token: the t
	// parameter of the RateLimit header. It is zero when the bucket is
	// full.
	Reset time.Duration
	// RetryAfter is, for a refused request, how long until the bucket holds
	// Cost tokens. It is negative when Cost exceeds the burst: the request
	// can never succeed. It is zero when Allowed.
	RetryAfter time.Duration

	policy     *policy
	now        time.Time
	failedOpen bool // Options.Store failed and the local bucket decided
}

// Never reports whether the request was refused because its cost exceeds
// the bucket's burst, so that no amount of waiting lets it through.
func (res *Result) Never() bool { return !res.Allowed && res.RetryAfter < 0 }

// Take decides whether r may pass and takes its tokens if so. It is the
// whole decision of [Limiter.Handler] without the response: it keys the
// request with [Options.By], finds its rate and burst, and takes its cost
// from the bucket.
//
// Take returns an error wrapping [ErrInvalidCost] when CostFunc fails, and
// one wrapping [ErrStoreUnavailable] when Options.Store fails and FailOpen is
// off; the Result is then meaningless.
func (l *Limiter) Take(r *http.Request) (Result, error) {
	c, _ := paywall.CallerFromContext(r.Context())
	return l.take(r, c)
}

func (l *Limiter) take(r *http.Request, c *paywall.Caller) (Result, error) {
	res := Result{Cost: l.cost, now: l.clock()}
	if l.costFunc != nil {
		n, err := l.requestCost(r)
		if err != nil {
			return res, err
		}
		res.Cost = n
	}
	var a *store.Account
	if c != nil {
		a = &c.Account
	}
	lim, pol := l.limitOf(a)
	var key, account string
	switch {
	case !l.byAccount:
		key, _ = l.by.Key(r)
	case c != nil:
		key, account = c.Account.ID, c.Account.ID
	}
	if l.remote != nil {
		err := l.takeRemote(r.Context(), &res, l.remoteBucket(account, key, lim, res.Cost), pol)
		if err == nil || !l.failOpen {
			return res, err
		}
		res.failedOpen = true
	}
	ok, tokens, pol := l.buckets.take(key, lim, pol, res.Cost, res.now)
	res.fill(ok, tokens, pol)
	return res, nil
}

// fill sets the Result's fields from a take that left tokens in a bucket
// with policy pol.
func (res *Result) fill(ok bool, tokens float64, pol *policy) {
	lim := pol.limit
	res.Allowed, res.Limit, res.policy = ok, lim, pol
	whole := math.Floor(tokens)
	if whole < 0 {
		whole = 0
	}
	res.Remaining = int(whole)
	if tokens < float64(lim.Burst) {
		res.Reset = tokenTime(whole+1-tokens, lim.Rate)
	}
	switch {
	case ok:
	case res.Cost > lim.Burst:
		res.RetryAfter = -1
	default:
		res.RetryAfter = tokenTime(float64(res.Cost)-tokens, lim.Rate)
	}
}

// tokenTime returns how long rate takes to add n tokens, rounded up to the
// nanosecond and capped at about 290 years.
func tokenTime(n, rate float64) time.Duration {
	d := math.Ceil(n / rate * float64(time.Second))
	if d >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(d)
}

// takeRemote takes the tokens of b from Options.Store; pol is the policy
// of b's rate and burst, or nil for an override's.
func (l *Limiter) takeRemote(ctx context.Context, res *Result, b store.Bucket, pol *policy) error {
	br, err := l.remote.TakeTokens(ctx, b)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	lim := store.RateLimit{Rate: b.Rate, Burst: b.Burst}
	if pol == nil {
		pol = l.configured.ofLimit(lim)
	}
	res.fillStore(br, lim, pol)
	return nil
}

// costError is the error of a failed CostFunc.
type costError struct{ err error }

func (e *costError) Error() string        { return "limiter: invalid cost: " + e.err.Error() }
func (e *costError) Unwrap() error        { return e.err }
func (e *costError) Is(target error) bool { return target == ErrInvalidCost }
