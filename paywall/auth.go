package paywall

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go402/go402/internal/fuse"
	"github.com/go402/go402/store"
)

// Errors of extractKey, each with its own detail in the 401.
var (
	errMissingKey      = errors.New("paywall: no API key in the request")
	errMalformedKey    = errors.New("paywall: malformed API key")
	errKeyTooLong      = fmt.Errorf("%w: too long", errMalformedKey)
	errConflictingKeys = fmt.Errorf("%w: the request carries different keys", errMalformedKey)
)

// extractKey returns the raw API key in r's headers, then query parameter,
// ignoring Authorization credentials of schemes other than Bearer.
func (p *Paywall) extractKey(r *http.Request) (string, error) {
	var key string
	add := func(v string, bearer bool) error {
		k, ok, err := p.parseValue(v, bearer)
		switch {
		case err != nil || !ok:
			return err
		case key != "" && k != key:
			return errConflictingKeys
		}
		key = k
		return nil
	}
	for _, h := range p.keyHeaders {
		for _, v := range r.Header[h.name] {
			if err := add(v, h.bearer); err != nil {
				return "", err
			}
		}
	}
	if p.opts.KeyQueryParam != "" && r.URL != nil && r.URL.RawQuery != "" {
		for _, v := range r.URL.Query()[p.opts.KeyQueryParam] {
			if err := add(v, false); err != nil {
				return "", err
			}
		}
	}
	if key == "" {
		return "", errMissingKey
	}
	return key, nil
}

// parseValue extracts the key from one header or parameter value. ok is
// false for Authorization credentials of another scheme.
func (p *Paywall) parseValue(v string, bearer bool) (key string, ok bool, err error) {
	const prefix = "Bearer "
	if bearer && len(v) > len(prefix) && v[:len(prefix)] == prefix && v[len(prefix)] != ' ' &&
		v[len(v)-1] != ' ' && v[len(v)-1] != '\t' {
		// The common case, with nothing to cut or trim.
		v = v[len(prefix):]
	} else if v = trimOWS(v); bearer {
		scheme, rest, _ := strings.Cut(v, " ")
		if scheme != "Bearer" && !strings.EqualFold(scheme, "Bearer") {
			if !validHeaderName(scheme) { // empty, or not an auth-scheme token
				return "", false, errMalformedKey
			}
			return "", false, nil
		}
		v = strings.TrimLeft(rest, " ")
	}
	switch {
	case len(v) > p.opts.MaxKeyLength:
		return "", false, errKeyTooLong
	case !validKey(v):
		return "", false, errMalformedKey
	}
	return v, true, nil
}

// keyChars marks the bytes of the RFC 6750 b64token alphabet, '=' aside.
var keyChars = func() (t [256]bool) {
	for _, c := range "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/" {
		t[c] = true
	}
	return t
}()

// validKey reports whether s is an RFC 6750 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func validKey(s string) bool {
	s = strings.TrimRight(s, "=")
	for i := 0; i < len(s); i++ {
		if !keyChars[s[i]] {
			return false
		}
	}
	return s != ""
}

// stackKeyLen is the longest key digested without a heap allocation.
const stackKeyLen = 128

// digestOf is [store.DigestOf], without allocating for short keys.
func digestOf(raw string) store.Digest {
	if len(raw) > stackKeyLen {
		return store.DigestOf(raw)
	}
	var buf [stackKeyLen]byte
	n := copy(buf[:], raw)
	return sha256.Sum256(buf[:n])
}

// Authenticate is a middleware that requires an API key (see
// [Options.KeyHeaders]): 1 to MaxKeyLength bytes of the RFC 6750 token
// alphabet, sent once or several times but never with a different one. It
// refuses missing, malformed, unknown, revoked and expired keys with 401,
// and passes next a copy of the request whose context carries the
// [Caller]. A store failure is a 503 store_unavailable with Retry-After,
// unless [Options.FailOpen] is set. It panics if next is nil.
func (p *Paywall) Authenticate(next http.Handler) http.Handler {
	if next == nil {
		panic("paywall: Authenticate: nil handler")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := p.extractKey(r)
		if err != nil {
			p.refuseKey(w, r, next, decision("authenticate", nil), p.keyDenial(err))
			return
		}
		key, acct, err := p.store.Lookup(r.Context(), digestOf(raw))
		if p.refuseLookup(w, r, next, err, &key) {
			return
		}
		r, s := withState(r)
		s.caller.Key, s.caller.Account, s.caller.Balance = key, acct, acct.Balance
		p.allow(r, "authenticate", &s.caller, 0)
		next.ServeHTTP(w, r)
	})
}

// keyDenial is the denial for a key that extractKey refused with err.
func (p *Paywall) keyDenial(err error) *Denial {
	d := &Denial{Code: CodeInvalidKey}
	switch err {
	case errMissingKey:
		d.Code, d.Detail = CodeMissingKey, p.missingDetail
	case errKeyTooLong:
		d.Detail = "The API key is longer than " + strconv.Itoa(p.opts.MaxKeyLength) + " bytes."
	case errConflictingKeys:
		d.Detail = "The request carries more than one API key, and they differ."
	default:
		d.Detail = "The API key is malformed: it must be a single token of letters, digits and - . _ ~ + /."
	}
	return d
}

// refuseLookup answers a request whose lookup failed or found a revoked or
// expired key, and reports whether it did.
func (p *Paywall) refuseLookup(w http.ResponseWriter, r *http.Request, next http.Handler, err error, key *store.Key) bool {
	e := decision("authenticate", nil)
	switch {
	case err == nil && !key.Revoked && (key.ExpiresAt.IsZero() || p.opts.Clock().Before(key.ExpiresAt)):
		return false
	case errors.Is(err, store.ErrNotFound):
		p.refuseKey(w, r, next, e, &Denial{Code: CodeInvalidKey, Detail: "The API key is not recognised."})
		return true
	case err != nil && p.opts.Shadow && !p.opts.FailOpen:
		e.Err = err
		p.refuseKey(w, r, next, e, p.unavailable(0))
		return true
	case err != nil:
		e.Err = err
		p.storeFailed(w, r, e, next)
		return true
	}
	e.AccountID, e.KeyPrefix = key.AccountID, key.Prefix
	d := &Denial{Code: CodeKeyExpired, Detail: "The API key has expired."}
	if key.Revoked {
		d = &Denial{Code: CodeKeyRevoked, Detail: "The API key has been revoked."}
	}
	p.refuseKey(w, r, next, e, d)
	return true
}

// storeFailed answers a request whose store call failed with e.Err: 503, or
// under FailOpen, next unchecked (after a lookup, with no Caller).
func (p *Paywall) storeFailed(w http.ResponseWriter, r *http.Request, e Decision, next http.Handler) {
	if !p.opts.FailOpen {
		p.refuse(w, r, e, p.unavailable(e.Cost))
		return
	}
	if stateFrom(r.Context()) == nil {
		var s *requestState
		r, s = withState(r)
		s.failedOpen = true
	}
	e.Allowed, e.Code = true, CodeStoreUnavailable
	p.report(r, e)
	next.ServeHTTP(w, r)
}

// unavailable is the denial of a request whose store call failed.
func (p *Paywall) unavailable(cost int64) *Denial {
	return &Denial{
		Code:       CodeStoreUnavailable,
		Detail:     "The service cannot check this request right now. Try again shortly.",
		RetryAfter: p.opts.RetryAfterUnavailable,
		Cost:       cost,
	}
}

// trimOWS trims HTTP's optional white space: spaces and tabs.
func trimOWS(s string) string {
	if s == "" || !isOWS(s[0]) && !isOWS(s[len(s)-1]) {
		return s // the common case, without strings.Trim's set building
	}
	return strings.Trim(s, " \t")
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

// Caller is what the middlewares learned about the request's caller, read
// (and only read) by handlers with [CallerFromContext].
type Caller struct {
	// Key is the authenticated key (its digest and prefix, not the key).
	Key store.Key
	// Account is the key's account as looked up, with its balance then.
	Account store.Account
	// Charged is what charges debited for this request, refunds aside.
	Charged int64
	// Balance is the balance after the last charge, else at the lookup.
	Balance int64
	// Replay is true when a charge let through with no debit a retry of a
	// request charged within [Options.IdempotencyWindow]: answer the same.
	Replay bool
}

// requestState is what [Paywall.Authenticate] adds to a request's context:
// the Caller, which charges update in place, and their Idempotency-Key.
type requestState struct {
	caller     Caller
	failedOpen bool // the lookup failed open (or a shadow paywall refused the key): no Caller
	shadowed   bool // a step of a shadow paywall would have refused the request: later steps pass it
	idem       idemUse
	metered    bool  // a metered charge is serving the request
	meter      Meter // what the metered request's handler reported
}

// withState returns a copy of r whose context carries a new state, and the
// state, in one allocation.
func withState(r *http.Request) (*http.Request, *requestState) {
	a := new(struct {
		state requestState
		req   http.Request
	})
	a.req = *r.WithContext(context.WithValue(r.Context(), fuse.StateKey{}, &a.state))
	return &a.req, &a.state
}

// stateFrom returns the request state in ctx, or nil.
func stateFrom(ctx context.Context) *requestState {
	s, _ := ctx.Value(fuse.StateKey{}).(*requestState)
	return s
}

// CallerFromContext returns the caller that [Paywall.Authenticate] put in
// ctx, or false: no Authenticate ran, or its lookup failed open.
func CallerFromContext(ctx context.Context) (*Caller, bool) {
	s := stateFrom(ctx)
	if s == nil || s.failedOpen {
		return nil, false
	}
	return &s.caller, true
}
