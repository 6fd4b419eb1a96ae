package limiter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go402/go402/internal/tokenbucket"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// Limiter admits requests while their token bucket holds enough tokens. Each
// bucket gains a rate of tokens per second up to a burst; a request takes its
// cost in tokens or is refused. Create one with [New] (the zero Limiter is
// not usable); [Limiter.Handler] is the middleware and [Limiter.Take] the
// decision alone. A Limiter is safe for concurrent use.
//
// A request's rate and burst are, in order of precedence, the
// [store.Account.RateLimit] override of the account that
// [paywall.Paywall.Authenticate] put in its context (ignored unless Rate and
// Burst are positive), [Options.Plans] for the account's plan, or those given
// to [New].
type Limiter struct {
	opts             Options  // with defaults set
	byAccount        bool     // opts.By is ByAccount()
	rPrefix          string   // `"name";r=`
	violatedPolicies []string // {name}, the violated-policies of a denial
	configured       *policies
	windows          *windowSet // Options.Windows
	accountSets      *accountSets
	buckets          *table
	inFlight         inFlight
	warnOnce         sync.Once
}

// Options configures a [Limiter]. The zero value of every field means the
// documented default; a nil *Options means all defaults.
type Options struct {
	// Name names the policy in the RateLimit-Policy and RateLimit headers
	// and in a denial's violated-policies: printable ASCII, at most 64
	// bytes. Default "default".
	Name string
	// Plans gives the rate and burst of each plan's main window, by plan
	// name.
	Plans map[string]store.RateLimit
	// Windows are the other windows of every policy but those of
	// PlanWindows: more token buckets, or counts per period (say 10,000 a
	// day besides 10 a second). A request passes only if every window of
	// its policy admits it, and then takes from all of them; one that
	// refuses takes nothing from any. Names must differ from each other's
	// and from Name. Default: none.
	Windows []store.Window
	// PlanWindows gives plans other windows than Windows, by plan name.
	// [store.Account.Windows] overrides both for one account.
	PlanWindows map[string][]store.Window
	// By says whose bucket a request takes tokens from. Default
	// ByClientAddr(): the connection's peer, no proxy trusted. Use
	// [ByAccount] after [paywall.Paywall.Authenticate].
	By Keyer
	// Cost is the tokens a request takes. Default 1; ignored if CostFunc is set.
	Cost int
	// CostFunc, if set, computes the tokens a request takes. An error or a
	// negative cost refuses the request with 400 invalid_request, the
	// error's text as the detail (so no secrets in it). A cost of 0 always
	// passes.
	CostFunc func(r *http.Request) (int, error)
	// DenyStatus is the status of a denial, in 400–499. Default 429; 402
	// suits plans whose answer to "too fast" is "upgrade".
	DenyStatus int
	// LegacyHeaders adds X-RateLimit-Limit (the burst), X-RateLimit-Remaining
	// and X-RateLimit-Reset (seconds from now, not a Unix time) to the
	// RateLimit and RateLimit-Policy headers, which are always sent.
	LegacyHeaders bool
	// Deny writes every denial. Default [paywall.WriteDenial].
	Deny paywall.DenyFunc
	// OnDecision, if set, is called synchronously for every request the
	// limiter allows or denies, with Step "limit", Policy its Name and Cost
	// the tokens taken or asked for. It must be safe for concurrent use and quick.
	OnDecision func(ctx context.Context, d paywall.Decision)
	// Store, if set, holds the buckets instead of this process, so that
	// replicas share one limit (the memory and Redis stores offer it). With
	// [ByAccount] a request takes from its account's bucket named after the
	// policy ([store.Bucket] Account, Key = Name), and a charge with the same
	// store takes the tokens with its debit (see the package documentation);
	// otherwise from the stand-alone bucket Name + ":" + its key.
	Store store.Buckets
	// FailOpen, when Store fails, takes the tokens from an in-process
	// bucket and reports Code store_unavailable to OnDecision. Default:
	// refuse with 503 store_unavailable and Retry-After.
	FailOpen bool
	// RetryAfterUnavailable is the Retry-After of a 503 store_unavailable.
	// Default 1 second.
	RetryAfterUnavailable time.Duration
	// MaxKeys caps the in-process buckets, and their memory at about
	// MaxKeys × (256 + key length) bytes. Default 100,000. A bucket that
	// has filled up again is removed (it equals a new one); when new keys
	// find none, each evicts one not used since the shard's eviction hand
	// last passed. New keys are never refused (a flood would lock everyone
	// out) nor let through unlimited; a client evicted with a partly drained
	// bucket gets a full one: at most one burst extra, only while MaxKeys
	// other keys arrive within its refill time. Size MaxKeys above that.
	MaxKeys int
	// MaxInFlight, if positive, is the most requests of one key (the
	// account with ByAccount, else the client) in flight at once: one more
	// is refused with 429 rate_limited (violated-policies "inflight",
	// Retry-After 1 s) until one returns — also when its handler panics or
	// its client hangs up. With a Store that implements [store.Slots] (the
	// memory and Redis stores do) replicas share the count; otherwise each
	// process counts its own. Default: no limit.
	MaxInFlight int
	// InFlightLease is the lease of a slot in Store: a process that dies
	// with requests in flight has their slots freed after it. It must
	// outlast the longest request. Default 5 minutes.
	InFlightLease time.Duration
	// Shadow evaluates every request and reports the decision, marked
	// Shadow, to OnDecision, but refuses nothing: a request it would refuse
	// goes on. Its headers are named RateLimit-Shadow and
	// RateLimit-Policy-Shadow, so that clients never throttle on them (no
	// legacy headers). A shadow limiter takes tokens as an enforcing one
	// does, never fuses with a charge, and lets a roll-out of new windows
	// be watched before it is enforced.
	Shadow bool
	// Clock returns the current time; tests inject a fake one. Default: New's
	// time.Now plus the monotonic time since, half the cost of time.Now; a
	// step of the system clock then moves neither it nor Decision.Time.
	Clock func() time.Time
}

// Errors returned by [Limiter.Take], for [errors.Is].
var (
	// ErrInvalidCost means CostFunc failed or returned a negative cost.
	ErrInvalidCost = errors.New("limiter: invalid cost")
	// ErrStoreUnavailable means Options.Store failed and FailOpen is off.
	ErrStoreUnavailable = errors.New("limiter: store unavailable")
)

// New returns a Limiter whose buckets gain r tokens per second up to burst,
// for requests whose account has no rate of its own. It reports
// configuration mistakes as errors prefixed "limiter:".
func New(r float64, burst int, opts *Options) (*Limiter, error) {
	l := &Limiter{accountSets: newAccountSets()}
	if opts != nil {
		l.opts = *opts
	}
	o := &l.opts
	def := store.RateLimit{Rate: r, Burst: burst}
	if err := checkRate("", def); err != nil {
		return nil, err
	}
	for _, check := range []func(*Options) error{setName, setCost, setLimits, setInFlight} {
		if err := check(o); err != nil {
			return nil, err
		}
	}
	_, l.byAccount = o.By.(accountKeyer)
	o.By = cmp.Or[Keyer](o.By, ByClientAddr())
	if o.Deny == nil {
		o.Deny = paywall.WriteDenial
	}
	if o.Clock == nil {
		o.Clock = monotonicClock()
	}
	l.rPrefix = quote(o.Name) + ";r="
	l.violatedPolicies = []string{o.Name}
	l.buckets = newTable(o.MaxKeys, o.Clock())
	if err := l.setPolicies(def); err != nil {
		return nil, err
	}
	return l, nil
}

// setName validates the policy name and sets its default.
func setName(o *Options) error {
	if o.Name == "" {
		o.Name = "default"
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

// setCost validates Cost and DenyStatus and sets their defaults.
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

// setLimits validates MaxKeys and RetryAfterUnavailable and sets their defaults.
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

// setPolicies validates the plans' rates and windows and builds the
// policies of def and the plans.
func (l *Limiter) setPolicies(def store.RateLimit) error {
	o := &l.opts
	quoted := quote(o.Name)
	defSet, err := newWindowSet(o.Name, "Windows", o.Windows)
	if err != nil {
		return err
	}
	l.windows = defSet
	ps := &policies{def: newPolicy(quoted, def, o.Cost, defSet), quoted: quoted, cost: o.Cost}
	byPlan := make(map[string]*policy, len(o.Plans))
	byLimit := make(map[policyKey]*policy, len(o.Plans)+1)
	maxBurst := def.Burst
	for name := range o.PlanWindows {
		if _, ok := o.Plans[name]; !ok {
			byPlan[name] = nil // the default rate, the plan's windows
		}
	}
	for name := range o.Plans {
		byPlan[name] = nil
	}
	for name := range byPlan {
		lim, ok := o.Plans[name]
		if !ok {
			lim = def
		} else if err := checkRate(fmt.Sprintf("Plans[%q].", name), lim); err != nil {
			return err
		}
		set := defSet
		if ws, ok := o.PlanWindows[name]; ok {
			if set, err = newWindowSet(o.Name, fmt.Sprintf("PlanWindows[%q]", name), ws); err != nil {
				return err
			}
		}
		byPlan[name] = newPolicy(quoted, lim, o.Cost, set)
		byLimit[policyKey{lim, set}] = byPlan[name]
		maxBurst = max(maxBurst, lim.Burst)
	}
	byLimit[policyKey{def, defSet}] = ps.def
	ps.byPlan, ps.byLimit = newPolicyIndex(byPlan), newPolicyIndex(byLimit)
	if o.CostFunc == nil && o.Cost > maxBurst {
		return fmt.Errorf("limiter: Cost %d exceeds every configured burst (at most %d): no request could pass", o.Cost, maxBurst)
	}
	l.configured, l.buckets.ps = ps, ps
	return nil
}

// monotonicClock returns a clock of the wall time when made plus the
// monotonic time since, which costs half of time.Now.
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
	// Cost is the tokens the request took, or would have taken.
	Cost int
	// Remaining is the whole tokens left in the bucket.
	Remaining int
	// Reset is how long until the bucket gains another whole token (the t
	// of the RateLimit header); zero when the bucket is full.
	Reset time.Duration
	// RetryAfter is, for a refused request, how long until the bucket holds
	// Cost tokens — and every other window that refused too; negative when
	// Cost exceeds the burst of one, so that the request can never pass;
	// zero when Allowed.
	RetryAfter time.Duration
	// Windows holds the outcomes of the policy's other windows, in order
	// (see [Options.Windows]); nil for a policy of one window. Allowed is
	// true only if the main window and each of these held the tokens.
	Windows []WindowResult

	policy     *policy
	account    *store.Account // the request's, if any
	now        time.Time
	held       bool     // the main window held the tokens (with Windows)
	failedOpen bool     // Options.Store failed and the local bucket decided
	scratch    *scratch // holds Windows, if not nil; see release
}

// Take decides whether r may pass and takes its tokens if so: the decision
// of [Limiter.Handler] without the response. It returns an error wrapping
// [ErrInvalidCost] when CostFunc fails, or [ErrStoreUnavailable] when
// Options.Store fails and FailOpen is off; the Result is then meaningless.
func (l *Limiter) Take(r *http.Request) (Result, error) {
	c, _ := paywall.CallerFromContext(r.Context())
	res, err := l.take(r, c)
	if res.scratch != nil {
		ws := slices.Clone(res.Windows)
		res.release()
		res.Windows = ws
	}
	return res, err
}

func (l *Limiter) take(r *http.Request, c *paywall.Caller) (Result, error) {
	res := Result{now: l.opts.Clock()}
	var err error
	if res.Cost, err = l.requestCost(r); err != nil {
		return res, err
	}
	if c != nil {
		res.account = &c.Account
	}
	res.Limit, res.policy = l.limitOf(res.account)
	var key, account string
	switch {
	case !l.byAccount:
		key, _ = l.opts.By.Key(r)
	case c != nil:
		key, account = c.Account.ID, c.Account.ID
	}
	return res, l.takeFrom(r.Context(), &res, account, key)
}

// takeFrom takes res.Cost tokens at rate and burst res.Limit (policy
// res.policy, nil for an override's) from account's bucket, if set, else
// key's, in Options.Store if set, else (or when it fails with FailOpen) in
// the process, and fills res.
func (l *Limiter) takeFrom(ctx context.Context, res *Result, account, key string) error {
	lim, pol := res.Limit, res.policy
	if l.opts.Store != nil {
		b := l.remoteBucket(account, key, lim, res.Cost)
		if pol != nil && pol.set != nil {
			b.More = pol.set.moreBuckets(res.now, res.account)
		}
		br, err := l.opts.Store.TakeTokens(ctx, b)
		if err == nil {
			if pol == nil {
				pol = l.configured.ofLimit(lim)
			}
			res.fillStore(br, pol)
			return nil
		}
		if !l.opts.FailOpen {
			return fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
		}
		res.failedOpen = true
	}
	if pol != nil && pol.set != nil {
		l.takeWindows(res, key)
		return nil
	}
	ok, tokens, pol := l.buckets.take(key, lim, pol, res.Cost, res.now)
	res.fill(ok, tokens, pol)
	return nil
}

// takeWindows takes res.Cost tokens from every window of res.policy in
// key's in-process bucket, or from none, and fills res.
func (l *Limiter) takeWindows(res *Result, key string) {
	set := res.policy.set
	var arr [4]windowTake // a policy of up to five windows, in place
	wins := arr[:0]
	if len(set.ws) > len(arr) {
		wins = make([]windowTake, 0, len(set.ws))
	}
	wins = wins[:len(set.ws)]
	bs := set.boundsAt(res.now, res.account).buckets
	for i := range set.ws {
		if set.ws[i].Period != "" {
			wins[i].start = bs[i].Start.UnixNano() - l.buckets.epochNs
		}
	}
	_, held, tokens := l.buckets.takeWindows(key, res.policy, res.Cost, res.now, wins)
	res.fill(held, tokens, res.policy)
	res.Windows = res.windowResults(len(wins))
	for i := range wins {
		set.ws[i].result(&res.Windows[i], res.Cost, wins[i].held, wins[i].tokens, bs[i].End.Sub(res.now))
	}
	res.combine(held)
}

// fill sets res from a take that left tokens in a bucket of policy pol.
func (res *Result) fill(ok bool, tokens float64, pol *policy) {
	lim := pol.limit
	res.Allowed, res.Limit, res.policy = ok, lim, pol
	whole := max(math.Floor(tokens), 0)
	res.Remaining = int(whole)
	if tokens < float64(lim.Burst) {
		res.Reset = tokenbucket.Duration(whole+1-tokens, lim.Rate)
	}
	switch {
	case ok:
	case res.Cost > lim.Burst:
		res.RetryAfter = -1
	default:
		res.RetryAfter = tokenbucket.Duration(float64(res.Cost)-tokens, lim.Rate)
	}
}

// fillStore sets res from a store's take from a bucket of policy pol; the
// tokens left are Burst − Full·Rate, within the whole ones reported.
func (res *Result) fillStore(br store.BucketResult, pol *policy) {
	if pol.set != nil && len(br.More) == len(pol.set.ws) {
		res.fillStoreWindows(br, pol)
		return
	}
	lim := pol.limit
	tokens := float64(lim.Burst) - br.Full.Seconds()*lim.Rate
	if whole := float64(br.Remaining); tokens < whole || tokens >= whole+1 {
		tokens = whole
	}
	res.fill(br.OK, tokens, pol)
	if !br.OK && br.Wait >= 0 && res.Cost <= lim.Burst {
		res.RetryAfter = max(br.Wait, res.Reset)
	}
}

// costError is the error of a failed CostFunc.
type costError struct{ err error }

func (e *costError) Error() string        { return "limiter: invalid cost: " + e.err.Error() }
func (e *costError) Unwrap() error        { return e.err }
func (e *costError) Is(target error) bool { return target == ErrInvalidCost }

// fillStoreWindows is fillStore for a policy with other windows.
func (res *Result) fillStoreWindows(br store.BucketResult, pol *policy) {
	held := br.OK || br.Wait == 0 // the main window's own answer
	main := br
	main.OK, main.More = held, nil
	res.fillStore(main, pol)
	res.Windows = res.windowResults(len(br.More))
	for i := range br.More {
		pol.set.ws[i].storeResult(&res.Windows[i], res.Cost, &br.More[i])
	}
	res.combine(held)
}
