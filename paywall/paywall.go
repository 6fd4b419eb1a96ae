package paywall

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go402/go402/store"
)

// Paywall holds the configuration shared by the middlewares that
// authenticate keys, check entitlements and charge credits. Create one with
// [New]; its methods return middlewares of type func(http.Handler)
// http.Handler. A Paywall is safe for concurrent use.
type Paywall struct {
	store    store.Store
	shared   store.SharedLookup // store as a SharedLookup, or nil
	refunder store.Refunder     // store as a Refunder, or nil

	realm            string
	keyHeaders       []keyHeader
	query            string
	maxKeyLen        int
	status           map[Code]int
	failOpen         bool
	upgradeURL       string
	paymentURL       string
	retryUnavailable time.Duration
	deny             DenyFunc
	onDecision       func(ctx context.Context, d Decision)
	clock            func() time.Time
	idempotency      *idempotencyCache // nil when IdempotencyWindow is zero

	// Details of the key-extraction denials, computed once from the
	// configuration.
	missingDetail string
	tooLongDetail string
}

// Options configures a [Paywall]. The zero value of every field means the
// documented default; a nil *Options means all defaults.
type Options struct {
	// Realm is the realm of WWW-Authenticate challenges. Default "api".
	// It must be printable ASCII.
	Realm string

	// KeyHeaders lists the headers a key is read from, in order. The
	// Authorization header is read as "Bearer <key>" (RFC 6750; the scheme
	// is case-insensitive, and credentials of any other scheme, such as
	// Basic or Payment, are ignored); any other header carries the bare key.
	// Default: Authorization, X-API-Key. See [Paywall.ExtractKey] for the
	// rules when several are present.
	KeyHeaders []string

	// KeyQueryParam, if set, also reads the key from this URL query
	// parameter, after the headers. Off by default: keys in URLs end up in
	// logs and histories.
	KeyQueryParam string

	// MaxKeyLength is the longest key accepted; longer values are refused as
	// invalid without being hashed or looked up. Default 256 bytes.
	MaxKeyLength int

	// Status overrides the HTTP status for a denial code, for example
	// {CodeFeatureNotInPlan: http.StatusForbidden}. Codes not present keep
	// their defaults. Every status must be in 400–599. A 401 always carries
	// a WWW-Authenticate challenge; other statuses never do.
	Status map[Code]int

	// FailOpen lets requests through when the store fails (returns an error
	// other than not-found), without charging. Default false: such requests
	// are refused with 503 store_unavailable.
	//
	// When a lookup fails open, the request reaches the next handler
	// without a [Caller] ([CallerFromContext] reports false), and
	// [Paywall.Require] and [Paywall.Charge] further down let it through
	// unchecked and uncharged. When a spend fails open, the request passes
	// uncharged with its Caller. Both are reported to OnDecision as allowed
	// with Code [CodeStoreUnavailable].
	FailOpen bool

	// UpgradeURL is where a client can change its plan; PaymentURL is where
	// it can buy credits. When set they appear in 402 responses:
	// UpgradeURL with subscription_inactive, feature_not_in_plan and
	// quota_exhausted; PaymentURL with subscription_inactive,
	// insufficient_credits and quota_exhausted.
	UpgradeURL string
	PaymentURL string

	// RetryAfterUnavailable is the Retry-After sent with 503
	// store_unavailable. Default 1 second.
	RetryAfterUnavailable time.Duration

	// Deny writes every denial. Default [WriteDenial]. The [Denial] it
	// receives has Status already resolved (from the Status overrides or
	// the code's default) and Realm set.
	Deny DenyFunc

	// OnDecision, if set, is called synchronously for every allow and deny
	// decision. It must be safe for concurrent use and should return
	// quickly.
	OnDecision func(ctx context.Context, d Decision)

	// IdempotencyWindow, if positive, makes [Paywall.Charge] honour the
	// Idempotency-Key request header ([HeaderIdempotencyKey]), so that a
	// client can retry a paid request without paying twice: a retry with
	// the same key, from the same account, to the same method and route,
	// within IdempotencyWindow after the first request finished, runs the
	// handler again without being debited (see [Caller.Replay]). Zero, the
	// default, turns this off: the header is ignored and every request is
	// charged. The keys are remembered in this process only; see
	// [Paywall.ChargeWith] for the rules and their limits.
	IdempotencyWindow time.Duration

	// Clock returns the current time. Default time.Now.
	Clock func() time.Time
}

// DefaultMaxKeyLength is the default of [Options.MaxKeyLength].
const DefaultMaxKeyLength = 256

// keyHeader is one header a key is read from.
type keyHeader struct {
	name    string // canonical form, to index http.Header directly
	display string // as configured, for messages
	bearer  bool   // the Authorization header: "Bearer <key>"
}

// New returns a Paywall on s. It reports configuration mistakes (a nil
// store, a negative MaxKeyLength, RetryAfterUnavailable or
// IdempotencyWindow, a status outside
// 400–599, a malformed or repeated header name, a Realm that is not
// printable ASCII, an unparsable URL) as errors prefixed "paywall:". It
// copies what it needs from opts, which the caller may reuse.
func New(s store.Store, opts *Options) (*Paywall, error) {
	if s == nil {
		return nil, errorf("store must not be nil")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	p := &Paywall{
		store:            s,
		realm:            o.Realm,
		query:            o.KeyQueryParam,
		maxKeyLen:        o.MaxKeyLength,
		failOpen:         o.FailOpen,
		upgradeURL:       o.UpgradeURL,
		paymentURL:       o.PaymentURL,
		retryUnavailable: o.RetryAfterUnavailable,
		deny:             o.Deny,
		onDecision:       o.OnDecision,
		clock:            o.Clock,
	}
	p.shared, _ = s.(store.SharedLookup)
	p.refunder, _ = s.(store.Refunder)

	if p.realm == "" {
		p.realm = "api"
	}
	for i := 0; i < len(p.realm); i++ {
		if c := p.realm[i]; c < 0x20 || c > 0x7e {
			return nil, errorf("Realm must be printable ASCII, got %q", p.realm)
		}
	}

	names := o.KeyHeaders
	if len(names) == 0 {
		names = []string{"Authorization", "X-API-Key"}
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if !validHeaderName(n) {
			return nil, errorf("malformed header name %q in KeyHeaders", n)
		}
		c := http.CanonicalHeaderKey(n)
		if seen[c] {
			return nil, errorf("header %q listed twice in KeyHeaders", c)
		}
		seen[c] = true
		p.keyHeaders = append(p.keyHeaders, keyHeader{name: c, display: n, bearer: c == "Authorization"})
	}

	switch {
	case p.maxKeyLen < 0:
		return nil, errorf("MaxKeyLength must be >= 0, got %d", p.maxKeyLen)
	case p.maxKeyLen == 0:
		p.maxKeyLen = DefaultMaxKeyLength
	}
	switch {
	case p.retryUnavailable < 0:
		return nil, errorf("RetryAfterUnavailable must be >= 0, got %v", p.retryUnavailable)
	case p.retryUnavailable == 0:
		p.retryUnavailable = time.Second
	}
	if len(o.Status) > 0 {
		p.status = make(map[Code]int, len(o.Status))
		for c, st := range o.Status {
			if c == "" {
				return nil, errorf("empty code in Status")
			}
			if st < 400 || st > 599 {
				return nil, errorf("Status[%s] must be in 400-599, got %d", c, st)
			}
			p.status[c] = st
		}
	}
	for name, u := range map[string]string{"UpgradeURL": p.upgradeURL, "PaymentURL": p.paymentURL} {
		if u == "" {
			continue
		}
		if _, err := url.Parse(u); err != nil {
			return nil, errorf("%s: %v", name, err)
		}
	}
	if p.deny == nil {
		p.deny = WriteDenial
	}
	if p.clock == nil {
		p.clock = time.Now
	}
	switch {
	case o.IdempotencyWindow < 0:
		return nil, errorf("IdempotencyWindow must be >= 0, got %v", o.IdempotencyWindow)
	case o.IdempotencyWindow > 0:
		p.idempotency = newIdempotencyCache(o.IdempotencyWindow, p.clock, maxIdempotencyKeys)
	}

	var where []string
	for _, h := range p.keyHeaders {
		if h.bearer {
			where = append(where, "the Authorization header (Bearer)")
		} else {
			where = append(where, "the "+h.display+" header")
		}
	}
	if p.query != "" {
		where = append(where, "the "+p.query+" query parameter")
	}
	p.missingDetail = "Send an API key in " + joinOr(where) + "."
	p.tooLongDetail = fmt.Sprintf("The API key is longer than %d bytes.", p.maxKeyLen)
	return p, nil
}

// statusFor returns the status of a denial with code c: the configured
// override, else the code's default.
func (p *Paywall) statusFor(c Code) int {
	if st, ok := p.status[c]; ok {
		return st
	}
	return defaultsFor(c).status
}

// refuse resolves d against the configuration, reports the decision and
// writes the denial.
func (p *Paywall) refuse(w http.ResponseWriter, r *http.Request, step string, d *Denial, accountID, keyPrefix string) {
	if d.Status == 0 {
		d.Status = p.statusFor(d.Code)
	}
	if d.Realm == "" {
		d.Realm = p.realm
	}
	if p.onDecision != nil {
		bal := int64(0)
		if d.HasBalance {
			bal = d.Balance
		}
		p.onDecision(r.Context(), Decision{
			Time:      p.clock(),
			Step:      step,
			Code:      d.Code,
			Status:    d.Status,
			AccountID: accountID,
			KeyPrefix: keyPrefix,
			Route:     route(r),
			Cost:      d.Cost,
			Balance:   bal,
		})
	}
	p.deny(w, r, d)
}

// allow reports an allow decision. code is empty, or CodeStoreUnavailable
// when a store failure was let through by FailOpen.
func (p *Paywall) allow(r *http.Request, step string, code Code, c *Caller, cost, balance int64) {
	if p.onDecision == nil {
		return
	}
	d := Decision{
		Time:    p.clock(),
		Step:    step,
		Allowed: true,
		Code:    code,
		Route:   route(r),
		Cost:    cost,
		Balance: balance,
	}
	if c != nil {
		d.AccountID = c.Account.ID
		d.KeyPrefix = c.Key.Prefix
	}
	p.onDecision(r.Context(), d)
}

// route is the Decision.Route of r.
func route(r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	if r.URL != nil {
		return r.URL.Path
	}
	return ""
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
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
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// errorf formats an error prefixed with the package name.
func errorf(format string, args ...any) error {
	return fmt.Errorf("paywall: "+format, args...)
}
