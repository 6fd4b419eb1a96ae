package x402

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go402/go402/paywall"
)

// Payments puts x402 prices on routes. Create one with [New]; its
// [Payments.Route] method returns the middleware for one priced route. A
// Payments is safe for concurrent use.
type Payments struct {
	f    Facilitator
	opts Options
	base string // Options.BaseURL without a trailing slash
	// expose is the Access-Control-Expose-Headers value added to challenge
	// and payment responses.
	expose string
	seen   *memory // nil when ReplayWindow is negative
}

// Options configures [Payments]. The zero value of every field means the
// documented default; a nil *Options means all defaults.
type Options struct {
	// V1 also speaks x402 version 1: a payment may come in X-PAYMENT (its
	// receipt then goes out in X-PAYMENT-RESPONSE), and the JSON body of
	// every challenge carries the version 1 members (x402Version 1, error,
	// accepts with maxAmountRequired, resource, description, …) instead of
	// the version 2 ones. The PAYMENT-REQUIRED header stays version 2. The
	// facilitator then also gets version 1 payments (see [Facilitator]).
	// Default false.
	V1 bool

	// BaseURL is the public scheme, host and optional path prefix of the
	// server, for example "https://api.example.com". The resource URL of a
	// challenge is BaseURL followed by the request's path (never its query,
	// which may hold a key). Default: "https" if the connection is TLS, else
	// "http", then the request's Host. Forwarding headers such as
	// X-Forwarded-Proto are not trusted; behind a proxy, set BaseURL.
	BaseURL string

	// HasKey reports whether a request carries an API key, which sends it
	// down the key chain of a route in mode [Either]. Default: an
	// Authorization header with the Bearer scheme, or a non-empty X-API-Key
	// header — the defaults of [paywall.Options.KeyHeaders]. Set it if the
	// paywall reads keys from elsewhere.
	HasKey func(r *http.Request) bool

	// VerifyTimeout bounds the call to Facilitator.Verify; when it expires
	// the request is refused with 503 before the handler runs. Default 10
	// seconds.
	VerifyTimeout time.Duration

	// SettleTimeout bounds the call to Facilitator.Settle, which happens
	// after the handler chose its status and before any of its response is
	// sent. When it expires the outcome is unknown: the client gets 503
	// [CodeSettlementUnknown] and none of the handler's response, and
	// recovers by sending the same payment again. Default 30 seconds: a
	// facilitator that settles on-chain waits for the transaction.
	SettleTimeout time.Duration

	// RetryAfter is sent with 502 and 503 answers caused by the
	// facilitator. Default 5 seconds.
	RetryAfter time.Duration

	// ReplayWindow is how long the server remembers a payment it sent for
	// settlement: one it settled, so that sending it again is refused
	// without asking the facilitator (one payment buys one response), and
	// one whose settlement went unanswered, so that sending it again finds
	// out what happened (see [CodeSettlementUnknown]). A duplicate that
	// arrives while the first is still being verified or settled gets 409
	// with Retry-After: 1. Default 10 minutes; negative turns this memory
	// off (a payment sent again then goes to the facilitator, which refuses
	// one already settled, and a lost settlement cannot be recovered).
	ReplayWindow time.Duration

	// RetryIdentity, if set, lets a payer retry a paid request within
	// ReplayWindow and be served again without paying again. It names who
	// sends a request (for example the client's address as your proxy
	// reports it, or a session); the retry is served only if its payment
	// carries a payment-identifier id (an x402 extension that challenges
	// then offer), and the payment, method, URL, id and identity are those
	// of the request that paid. Anyone else sending the same payment is
	// refused. Default nil: no retries, as in the reference server.
	RetryIdentity func(r *http.Request) string

	// Deny writes every refusal. Default [paywall.WriteDenial].
	Deny paywall.DenyFunc

	// OnSettle, if set, is called after every settlement attempt with the
	// payment and the facilitator's answer (err is non-nil when there was
	// none). It runs before the response is sent, so it must be quick; it
	// must be safe for concurrent use.
	OnSettle func(ctx context.Context, p Payment, resp SettleResponse, err error)

	// Clock returns the current time. Default time.Now.
	Clock func() time.Time
}

// New returns Payments that verify and settle through f. It reports a nil
// facilitator and invalid options as errors prefixed "x402:". It does no
// I/O.
func New(f Facilitator, opts *Options) (*Payments, error) {
	if f == nil {
		return nil, errors.New("x402: facilitator is nil")
	}
	p := &Payments{f: f}
	if opts != nil {
		p.opts = *opts
	}
	if err := p.opts.validate(); err != nil {
		return nil, err
	}
	p.opts.fill()
	p.base = strings.TrimSuffix(p.opts.BaseURL, "/")
	if p.opts.ReplayWindow > 0 {
		p.seen = newMemory(p.opts.ReplayWindow, p.opts.Clock)
	}
	p.expose = "PAYMENT-REQUIRED, PAYMENT-RESPONSE, WWW-Authenticate, Retry-After"
	if p.opts.V1 {
		p.expose += ", X-PAYMENT-RESPONSE"
	}
	return p, nil
}

// validate reports the first invalid option.
func (o *Options) validate() error {
	if o.BaseURL != "" {
		u, err := url.Parse(o.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("x402: Options.BaseURL must be an absolute http or https URL without query, got %q", o.BaseURL)
		}
	}
	for _, c := range []struct {
		name string
		d    time.Duration
	}{{"VerifyTimeout", o.VerifyTimeout}, {"SettleTimeout", o.SettleTimeout}, {"RetryAfter", o.RetryAfter}} {
		if c.d < 0 {
			return fmt.Errorf("x402: Options.%s must be >= 0, got %v", c.name, c.d)
		}
	}
	return nil
}

// fill replaces zero options with their defaults.
func (o *Options) fill() {
	for _, c := range []struct {
		d   *time.Duration
		def time.Duration
	}{
		{&o.VerifyTimeout, 10 * time.Second},
		{&o.SettleTimeout, 30 * time.Second},
		{&o.RetryAfter, 5 * time.Second},
		{&o.ReplayWindow, 10 * time.Minute},
	} {
		if *c.d == 0 {
			*c.d = c.def
		}
	}
	if o.HasKey == nil {
		o.HasKey = hasKey
	}
	if o.Deny == nil {
		o.Deny = paywall.WriteDenial
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
}

// hasKey is the default Options.HasKey.
func hasKey(r *http.Request) bool {
	// Canonical names: no allocation to look them up.
	if v := r.Header["X-Api-Key"]; len(v) > 0 && v[0] != "" {
		return true
	}
	v := r.Header["Authorization"]
	if len(v) == 0 {
		return false
	}
	scheme, token, ok := strings.Cut(v[0], " ")
	return ok && strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(token) != ""
}

// resourceURL is the URL of the resource r asks for, as the challenge names
// it: scheme and host (from BaseURL, or the connection and Host header),
// then the path as the client sent it, without query.
func (p *Payments) resourceURL(r *http.Request) string {
	path := r.URL.EscapedPath()
	if uri := r.RequestURI; strings.HasPrefix(uri, "/") {
		// The path as sent, even if a StripPrefix handler shortened URL.Path.
		path, _, _ = strings.Cut(uri, "?")
	}
	if p.base != "" {
		return p.base + path
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	return scheme + "://" + host + path
}

// Payment describes the x402 payment of the request being served. Handlers
// read it with [PaymentFromContext].
type Payment struct {
	// Version is the x402 version the client paid with: 1 or 2.
	Version int
	// Requirements is the route's requirement the payment matched (the
	// server's copy, not the client's).
	Requirements PaymentRequirements
	// Payer is the paying address the facilitator reported, if any.
	Payer string
	// Replay is true when the request is the payer's retry of a request
	// it already paid for (see [Options.RetryIdentity]); the payment is not
	// settled again. The handler should answer as it did the first time.
	Replay bool
}

type paymentCtxKey struct{}

// PaymentFromContext returns the payment of the request whose context is
// ctx, and false if the request is not being paid for with x402 (it has an
// API key, say).
func PaymentFromContext(ctx context.Context) (Payment, bool) {
	p, ok := ctx.Value(paymentCtxKey{}).(*Payment)
	if !ok {
		return Payment{}, false
	}
	return *p, true
}
