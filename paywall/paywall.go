package paywall

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/go402/go402/store"
)

// Paywall makes the middlewares that authenticate keys, check entitlements
// and charge credits. Create one with [New]; it is safe for concurrent use.
type Paywall struct {
	store         store.Store
	refunder      store.Refunder    // store as a Refunder, or nil
	holder        store.Holder      // store as a Holder, or nil
	ledger        bool              // the store is a store.Ledger: charges carry a store.Operation
	opts          Options           // with defaults; its Status and KeyHeaders unused
	status        map[Code]int      // opts.Status, copied
	keyHeaders    []keyHeader       // from opts.KeyHeaders
	idempotency   *idempotencyCache // nil when IdempotencyWindow is zero
	missingDetail string            // the detail of a missing_key denial
	warned        sync.Map          // configuration errors already logged
}

// Options configures a [Paywall]. The zero value of every field means the
// documented default; a nil *Options means all defaults.
type Options struct {
	// Realm is the printable ASCII realm of challenges. Default "api".
	Realm string
	// KeyHeaders lists the headers a key is read from, in order: the
	// Authorization header as "Bearer <key>" (other schemes are ignored),
	// any other as the bare key. Default: Authorization, X-API-Key.
	KeyHeaders []string
	// KeyQueryParam, if set, is a URL query parameter read after the
	// headers. Off by default: keys in URLs end up in logs and histories.
	KeyQueryParam string
	// MaxKeyLength is the longest key accepted; longer values are refused
	// as invalid without being hashed or looked up. Default 256 bytes.
	MaxKeyLength int
	// Status overrides the status (400–599) of denial codes, for example
	// {CodeFeatureNotInPlan: http.StatusForbidden}.
	Status map[Code]int
	// FailOpen lets requests through, uncharged, when the store fails.
	// Default false: 503 store_unavailable. A request whose lookup failed
	// open has no [Caller], and Require and Charge pass it unchecked.
	FailOpen bool
	// UpgradeURL (where to change plan) and PaymentURL (where to buy
	// credits) appear in 402 responses when set.
	UpgradeURL string
	PaymentURL string
	// RetryAfterUnavailable is the Retry-After of a 503. Default 1 second.
	RetryAfterUnavailable time.Duration
	// Deny writes every denial, with Status resolved and Realm set.
	// Default [WriteDenial].
	Deny DenyFunc
	// OnDecision, if set, is called synchronously for every decision. It
	// must be safe for concurrent use and should return quickly.
	OnDecision func(ctx context.Context, d Decision)
	// OnThreshold, if set, is called synchronously after a charge whose
	// spend crossed one of the account's [store.Threshold]s, once for each:
	// the store reports each crossing once per period, across requests
	// and replicas. It must be safe for concurrent use.
	OnThreshold func(ctx context.Context, t store.Threshold)
	// Logger, if set, logs every decision that carries an error at level
	// Error. Configuration mistakes found while serving are logged once
	// each, to Logger or else to [slog.Default].
	Logger *slog.Logger
	// Shadow makes the paywall refuse nothing and debit nothing, for a
	// roll-out watched before it is enforced: every step decides as it
	// would, a refusal is named in the Paywall-Shadow header and reported
	// (like every decision) marked Shadow, and the request goes on. See
	// "Shadow mode" in the package documentation. Default false.
	Shadow bool
	// IdempotencyWindow, if positive, makes charges honour the
	// Idempotency-Key header for this long after a request finished (see
	// [Caller.Replay] and the package documentation). Default 0: off.
	IdempotencyWindow time.Duration
	// Clock returns the current time. Default time.Now.
	Clock func() time.Time
}

// keyHeader is one header a key is read from.
type keyHeader struct {
	name   string // canonical form, to index http.Header directly
	bearer bool   // the Authorization header: "Bearer <key>"
}

// New returns a Paywall on s, or an error prefixed "paywall:" for a
// configuration mistake (a nil store, a negative duration or length, a
// status outside 400–599, a malformed or repeated header name, a Realm that
// is not printable ASCII, an unparsable URL). opts may be reused after.
func New(s store.Store, opts *Options) (*Paywall, error) {
	if isNil(s) {
		return nil, errorf("store must not be nil")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	o.Deny, o.Clock = cmpOr(o.Deny, WriteDenial), cmpOr(o.Clock, time.Now)
	p := &Paywall{store: s, opts: o}
	p.refunder, _ = s.(store.Refunder)
	p.holder, _ = s.(store.Holder)
	_, p.ledger = s.(store.Ledger)
	for _, set := range []func(*Options) error{p.setRealm, p.setKeyHeaders, p.setLimits, p.setStatus, p.setURLs} {
		if err := set(&p.opts); err != nil {
			return nil, err
		}
	}
	p.opts.Status, p.opts.KeyHeaders = nil, nil // copied, not shared with the caller
	if o.IdempotencyWindow > 0 {
		p.idempotency = newIdempotencyCache(o.IdempotencyWindow, o.Clock, maxIdempotencyKeys)
	}
	return p, nil
}

// isNil reports whether v is nil or holds a nil pointer, map, channel,
// function, slice or interface: a store such as (*store.Memory)(nil).
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Chan, reflect.Func, reflect.Slice, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// cmpOr returns v, or def if v is nil.
func cmpOr[F any](v, def F) F {
	if isNil(v) {
		return def
	}
	return v
}

// setRealm validates and sets the realm.
func (p *Paywall) setRealm(o *Options) error {
	o.Realm = cmp.Or(o.Realm, "api")
	for i := 0; i < len(o.Realm); i++ {
		if c := o.Realm[i]; c < 0x20 || c > 0x7e {
			return errorf("Realm must be printable ASCII, got %q", o.Realm)
		}
	}
	return nil
}

// setKeyHeaders validates and sets where keys are read, and says so in
// missingDetail.
func (p *Paywall) setKeyHeaders(o *Options) error {
	names := o.KeyHeaders
	if len(names) == 0 {
		names = []string{"Authorization", "X-API-Key"}
	}
	var where []string
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		c := http.CanonicalHeaderKey(n)
		switch {
		case !validHeaderName(n):
			return errorf("malformed header name %q in KeyHeaders", n)
		case seen[c]:
			return errorf("header %q listed twice in KeyHeaders", c)
		}
		seen[c] = true
		p.keyHeaders = append(p.keyHeaders, keyHeader{name: c, bearer: c == "Authorization"})
		where = append(where, "the "+n+" header")
		if c == "Authorization" {
			where[len(where)-1] = "the Authorization header (Bearer)"
		}
	}
	if o.KeyQueryParam != "" {
		where = append(where, "the "+o.KeyQueryParam+" query parameter")
	}
	p.missingDetail = "Send an API key in " + joinOr(where) + "."
	return nil
}

// setLimits validates and sets the numeric options.
func (p *Paywall) setLimits(o *Options) error {
	switch {
	case o.MaxKeyLength < 0:
		return errorf("MaxKeyLength must be >= 0, got %d", o.MaxKeyLength)
	case o.RetryAfterUnavailable < 0:
		return errorf("RetryAfterUnavailable must be >= 0, got %v", o.RetryAfterUnavailable)
	case o.IdempotencyWindow < 0:
		return errorf("IdempotencyWindow must be >= 0, got %v", o.IdempotencyWindow)
	}
	o.MaxKeyLength = cmp.Or(o.MaxKeyLength, defaultMaxKeyLength)
	o.RetryAfterUnavailable = cmp.Or(o.RetryAfterUnavailable, time.Second)
	return nil
}

const defaultMaxKeyLength = 256 // the default of Options.MaxKeyLength

// setStatus validates and copies the status overrides.
func (p *Paywall) setStatus(o *Options) error {
	p.status = make(map[Code]int, len(o.Status))
	for c, st := range o.Status {
		switch {
		case c == "":
			return errorf("empty code in Status")
		case st < 400 || st > 599:
			return errorf("Status[%s] must be in 400-599, got %d", c, st)
		}
		p.status[c] = st
	}
	return nil
}

// setURLs validates the upgrade and payment URLs.
func (p *Paywall) setURLs(o *Options) error {
	for name, u := range map[string]string{"UpgradeURL": o.UpgradeURL, "PaymentURL": o.PaymentURL} {
		if _, err := url.Parse(u); u != "" && err != nil {
			return errorf("%s: %v", name, err)
		}
	}
	return nil
}

// Decision is one allow or deny of a go402 middleware, reported to
// [Options.OnDecision]. It never contains the raw key.
type Decision struct {
	// Time is when the decision was made, by [Options.Clock].
	Time time.Time
	// Step is the deciding middleware: "authenticate", "require", "charge",
	// "refund" (Allowed if the credits were given back), "hold" and
	// "settle" (of a metered charge), or "limit".
	Step string
	// Allowed reports whether the request was let through.
	Allowed bool
	// Code is the denial code: empty when Allowed, but for
	// [CodeStoreUnavailable] when [Options.FailOpen] let a failure through.
	Code Code
	// Status is the HTTP status of a denial; zero when Allowed.
	Status int
	// AccountID and KeyPrefix identify the caller, once a key was found.
	AccountID string
	KeyPrefix string
	// Route is the request's Pattern as the middleware saw it (empty
	// outside a ServeMux); never the raw path, so metrics stay bounded.
	Route string
	// Cost is what the request cost or would have cost (or the refund);
	// Balance is the balance after the decision, when known.
	Cost    int64
	Balance int64
	// Replay marks a "charge" that let a retry through; see [Caller.Replay].
	Replay bool
	// Policy is the limiter's policy name (its Options.Name) for Step
	// "limit", so that one OnDecision can tell several limits apart.
	Policy string
	// Overdue marks a "require" that let a past-due account through in its
	// grace ([store.Account.GraceUntil]).
	Overdue bool
	// Shadow marks the decision of a middleware in shadow mode, which
	// reports what it would decide but refuses nothing: a request it would
	// have refused (Allowed false) went on. A shadow paywall debits
	// nothing: Cost is what it would have debited, Balance the balance as
	// it stands.
	Shadow bool
	// Err is the store failure or configuration mistake behind it, if any.
	Err error
}

// attrs returns the fields of d to log.
func (d *Decision) attrs() []slog.Attr {
	a := []slog.Attr{
		slog.Bool("allowed", d.Allowed),
		slog.String("code", string(d.Code)),
		slog.Int("status", d.Status),
		slog.String("route", d.Route),
		slog.String("account", d.AccountID),
		slog.String("key_prefix", d.KeyPrefix),
		slog.Int64("cost", d.Cost),
	}
	if d.Err != nil {
		a = append(a, slog.String("error", d.Err.Error()))
	}
	return a
}

// refuse resolves d against the configuration, reports the decision e (its
// step, caller and error) and writes the denial.
func (p *Paywall) refuse(w http.ResponseWriter, r *http.Request, e Decision, d *Denial) {
	p.resolve(&e, d)
	p.report(r, e)
	p.opts.Deny(w, r, d)
}

// resolve completes d against the configuration (its status and realm) and
// e with d's code, status, cost and balance.
func (p *Paywall) resolve(e *Decision, d *Denial) {
	if d.Status == 0 {
		d.Status = cmp.Or(p.status[d.Code], defaultsFor(d.Code).status)
	}
	d.Realm = cmp.Or(d.Realm, p.opts.Realm)
	e.Code, e.Status, e.Cost, e.Balance = d.Code, d.Status, d.Cost, 0
	if d.HasBalance {
		e.Balance = d.Balance
	}
}

// report completes e with the time and route and passes it to OnDecision
// and, if it carries an error, to the Logger.
func (p *Paywall) report(r *http.Request, e Decision) {
	if p.opts.OnDecision == nil && (e.Err == nil || p.opts.Logger == nil) {
		return
	}
	e.Time = p.opts.Clock()
	e.Route = r.Pattern
	e.Shadow = p.opts.Shadow
	if p.opts.OnDecision != nil {
		p.opts.OnDecision(r.Context(), e)
	}
	if e.Err != nil && p.opts.Logger != nil && e.Code != CodeMisconfigured { // logged once, apart
		p.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "go402: "+e.Step, e.attrs()...)
	}
}

// decision returns the Decision of step for caller c (nil if unknown).
func decision(step string, c *Caller) Decision {
	d := Decision{Step: step}
	if c != nil {
		d.AccountID, d.KeyPrefix, d.Balance = c.Account.ID, c.Key.Prefix, c.Balance
	}
	return d
}

// allow reports that step let the request of caller c through.
func (p *Paywall) allow(r *http.Request, step string, c *Caller, cost int64) {
	if p.opts.OnDecision == nil {
		return
	}
	d := decision(step, c)
	d.Allowed, d.Cost = true, cost
	p.report(r, d)
}

// misconfigured answers a request that reached step ("charge", "require")
// without Authenticate in front: a 500 misconfigured, logged once.
func (p *Paywall) misconfigured(w http.ResponseWriter, r *http.Request, step string) {
	err := fmt.Errorf("paywall: %s reached without Authenticate in front of it: wrap the route in Authenticate first",
		strings.ToUpper(step[:1])+step[1:])
	if _, logged := p.warned.LoadOrStore(err.Error(), true); !logged {
		cmpOr(p.opts.Logger, slog.Default()).Error(err.Error(), "route", r.Pattern)
	}
	e := decision(step, nil)
	e.Err = err
	p.refuse(w, r, e, &Denial{Code: CodeMisconfigured, Detail: "The service is misconfigured."})
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return s != ""
}

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// joinOr joins items as "a, b or c".
func joinOr(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// errorf formats an error prefixed with the package name.
func errorf(format string, args ...any) error {
	return fmt.Errorf("paywall: "+format, args...)
}
