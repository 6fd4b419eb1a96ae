package paywall

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go402/go402/store"
)

// Errors reported by [Paywall.ExtractKey].
var (
	// ErrMissingKey means the request carries no key.
	ErrMissingKey = errors.New("paywall: no API key in the request")
	// ErrMalformedKey means a key header or parameter is present but
	// unusable: empty, too long, not a token, or in conflict with another.
	ErrMalformedKey = errors.New("paywall: malformed API key")

	errKeyTooLong      = fmt.Errorf("%w: too long", ErrMalformedKey)
	errConflictingKeys = fmt.Errorf("%w: the request carries different keys", ErrMalformedKey)
)

// ExtractKey returns the raw API key carried by r, without looking it up.
// It is the pure first step of [Paywall.Authenticate], exported for tests
// and for handlers that authenticate in their own way. The returned key is
// a secret: never log it.
//
// The key is read from each configured header in order, then from the query
// parameter if one is configured. The Authorization header must hold
// "Bearer <key>": the scheme is matched case-insensitively and may be
// followed by several spaces, and credentials of other schemes (Basic,
// Payment, L402, …) are ignored, as if the header were absent, while an
// Authorization value that does not start with a scheme token is malformed. Other headers
// hold the bare key; surrounding spaces and tabs are trimmed.
//
// A key must be 1 to MaxKeyLength bytes of the RFC 6750 token alphabet:
// ASCII letters, digits and - . _ ~ + /, optionally ending in '='s. A value
// that is present but empty, too long (checked first, so an oversized value
// costs nothing more) or outside the alphabet is refused with an error
// wrapping [ErrMalformedKey]. So is a request that carries two different
// keys, in two headers or twice in one: rather than guess which one the
// client meant, both are refused. The same key sent twice is accepted. No
// key at all gives [ErrMissingKey].
func (p *Paywall) ExtractKey(r *http.Request) (string, error) {
	var key string
	found := false
	for _, h := range p.keyHeaders {
		for _, v := range r.Header[h.name] {
			k, ok, err := p.parseValue(v, h.bearer)
			if err != nil {
				return "", err
			}
			if !ok {
				continue
			}
			if found && k != key {
				return "", errConflictingKeys
			}
			key, found = k, true
		}
	}
	if p.query != "" && r.URL != nil && r.URL.RawQuery != "" {
		for _, v := range r.URL.Query()[p.query] {
			k, _, err := p.parseValue(v, false)
			if err != nil {
				return "", err
			}
			if found && k != key {
				return "", errConflictingKeys
			}
			key, found = k, true
		}
	}
	if !found {
		return "", ErrMissingKey
	}
	return key, nil
}

// parseValue extracts the key from one header or parameter value. ok is
// false for Authorization credentials of another scheme.
func (p *Paywall) parseValue(v string, bearer bool) (key string, ok bool, err error) {
	const prefix = "Bearer "
	if bearer && len(v) > len(prefix) && v[:len(prefix)] == prefix && v[len(prefix)] != ' ' &&
		v[len(v)-1] != ' ' && v[len(v)-1] != '\t' {
		// The common case, with nothing to trim: what the general path
		// below would find, without cutting and trimming.
		v = v[len(prefix):]
	} else if v = trimOWS(v); bearer {
		scheme, rest, _ := strings.Cut(v, " ")
		if scheme != "Bearer" && !strings.EqualFold(scheme, "Bearer") {
			if !validHeaderName(scheme) { // empty, or not an auth-scheme token
				return "", false, ErrMalformedKey
			}
			return "", false, nil
		}
		v = strings.TrimLeft(rest, " ")
	}
	if len(v) > p.maxKeyLen {
		return "", false, errKeyTooLong
	}
	if !validKey(v) {
		return "", false, ErrMalformedKey
	}
	return v, true, nil
}

// keyChars marks the bytes of the RFC 6750 b64token alphabet, '=' aside.
var keyChars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~+/" {
		t[c] = true
	}
	return t
}()

// validKey reports whether s is an RFC 6750 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func validKey(s string) bool {
	i := 0
	for i < len(s) && keyChars[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(s) && s[i] == '=' {
		i++
	}
	return i == len(s)
}

// stackKeyLen is the longest key digested without a heap allocation.
const stackKeyLen = 128

// digestOf is [store.DigestOf] without allocating for keys of up to
// stackKeyLen bytes.
func digestOf(raw string) store.Digest {
	if len(raw) > stackKeyLen {
		return store.DigestOf(raw)
	}
	var buf [stackKeyLen]byte
	n := copy(buf[:], raw)
	return sha256.Sum256(buf[:n])
}

// Authenticate is a middleware that requires an API key. It reads the key
// with [Paywall.ExtractKey], looks its digest up in the store, refuses
// missing, malformed, unknown, revoked and expired keys with 401, and passes
// a copy of the request whose context carries the [Caller] to next.
//
// A store failure is a 503 store_unavailable with Retry-After, unless
// [Options.FailOpen] is set. It panics if next is nil.
func (p *Paywall) Authenticate(next http.Handler) http.Handler {
	if next == nil {
		panic("paywall: Authenticate: nil handler")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.authenticate(w, r, next)
	})
}

// authenticate is the handler of Authenticate(next): a method rather than
// the closure, which the compiler may inline into the callers of
// Authenticate, so that its allocations are decided once, here.
func (p *Paywall) authenticate(w http.ResponseWriter, r *http.Request, next http.Handler) {
	raw, err := p.ExtractKey(r)
	if err != nil {
		d := &Denial{Code: CodeInvalidKey}
		switch err {
		case ErrMissingKey:
			d.Code, d.Detail = CodeMissingKey, p.missingDetail
		case errKeyTooLong:
			d.Detail = p.tooLongDetail
		case errConflictingKeys:
			d.Detail = "The request carries more than one API key, and they differ."
		default:
			d.Detail = "The API key is malformed: it must be a single token of letters, digits and - . _ ~ + /."
		}
		p.refuse(w, r, "authenticate", d, "", "")
		return
	}

	var a *authenticated
	if p.shared != nil {
		key, acct, balance, err := p.shared.LookupShared(r.Context(), digestOf(raw))
		if err == nil && (key == nil || acct == nil) {
			err = errNoRecord // a broken store, treated as a failing one
		}
		if p.refuseLookup(w, r, next, err, key) {
			return
		}
		a = newAuthenticated(r, key, acct, balance)
	} else {
		key, acct, err := p.store.Lookup(r.Context(), digestOf(raw))
		if p.refuseLookup(w, r, next, err, &key) {
			return
		}
		a = &newAuthenticatedCopy(r, &key, &acct).authenticated
	}
	c := &a.state.caller
	p.allow(r, "authenticate", "", c, 0, c.Balance)
	next.ServeHTTP(w, &a.req)
}

// errNoRecord stands for the error a store's LookupShared should have
// returned when it returns neither records nor an error.
var errNoRecord = errors.New("paywall: the store's LookupShared returned no record and no error")

// refuseLookup answers a request whose key lookup failed or found a key
// that does not authenticate (revoked or expired), and reports whether it
// did. A failed store is let through to next, without a Caller, if
// Options.FailOpen is set.
func (p *Paywall) refuseLookup(w http.ResponseWriter, r *http.Request, next http.Handler, err error, key *store.Key) bool {
	switch {
	case err == nil && !key.Revoked && (key.ExpiresAt.IsZero() || !key.Expired(p.clock())):
		return false
	case errors.Is(err, store.ErrNotFound):
		p.refuse(w, r, "authenticate", &Denial{Code: CodeInvalidKey, Detail: "The API key is not recognised."}, "", "")
	case err != nil && p.failOpen:
		p.allow(r, "authenticate", CodeStoreUnavailable, nil, 0, 0)
		next.ServeHTTP(w, r.WithContext(&requestState{parent: r, ext: &stateExt{failedOpen: true}}))
	case err != nil:
		p.refuse(w, r, "authenticate", p.unavailable(), "", "")
	case key.Revoked:
		p.refuse(w, r, "authenticate", &Denial{Code: CodeKeyRevoked, Detail: "The API key has been revoked."}, key.AccountID, key.Prefix)
	default:
		p.refuse(w, r, "authenticate", &Denial{Code: CodeKeyExpired, Detail: "The API key has expired."}, key.AccountID, key.Prefix)
	}
	return true
}

// newAuthenticated returns the state of r, which Authenticate lets through
// with key and acct (a store's shared records), together with the copy of
// r that carries it, in one allocation.
func newAuthenticated(r *http.Request, key *store.Key, acct *store.Account, balance int64) *authenticated {
	a := new(authenticated)
	a.init(r, key, acct, balance)
	return a
}

// newAuthenticatedCopy is newAuthenticated for a store whose Lookup returns
// copies: the allocation holds copies of key and acct too, which the Caller
// points to.
func newAuthenticatedCopy(r *http.Request, key *store.Key, acct *store.Account) *authenticatedCopy {
	a := new(authenticatedCopy)
	a.key = *key
	a.account = *acct
	a.init(r, &a.key, &a.account, acct.Balance)
	return a
}

// init fills in a, already allocated, for r and its caller. WithContext is
// inlined, so its copy of r does not escape but is copied into a
// (TestAuthenticateAllocs checks that it stays so). The Caller is set field
// by field: a literal would be built on the stack and copied again.
func (a *authenticated) init(r *http.Request, key *store.Key, acct *store.Account, balance int64) {
	a.req = *r.WithContext(&a.state)
	a.state.parent = r
	a.state.caller.Key = key
	a.state.caller.Account = acct
	a.state.caller.Balance = balance
}

// unavailable is the denial for a failed store.
func (p *Paywall) unavailable() *Denial {
	return &Denial{
		Code:       CodeStoreUnavailable,
		Detail:     "The service cannot check this request right now. Try again shortly.",
		RetryAfter: p.retryUnavailable,
	}
}

// trimOWS trims the optional white space (spaces and tabs) that HTTP allows
// around field values and list elements.
func trimOWS(s string) string {
	if s == "" || !isOWS(s[0]) && !isOWS(s[len(s)-1]) {
		return s // the common case, without strings.Trim's set building
	}
	return strings.Trim(s, " \t")
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }
