package paywall

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// headerIdempotencyKey lets a client retry a paid request without
	// paying twice (draft-ietf-httpapi-idempotency-key-header).
	headerIdempotencyKey = "Idempotency-Key"
	// maxIdempotencyKeyLength is the longest key, in bytes once unquoted.
	maxIdempotencyKeyLength = 255
	// maxIdempotencyKeys bounds the keys remembered; see the package doc.
	maxIdempotencyKeys = 100_000
	// retryInProgress is the Retry-After of a 409 idempotency_in_progress.
	retryInProgress = time.Second
)

// Errors of parseIdempotencyKey, each with its own detail in the 400.
var (
	errIdemMalformed   = errors.New("paywall: malformed Idempotency-Key")
	errIdemTooLong     = errors.New("paywall: Idempotency-Key too long")
	errIdemConflicting = errors.New("paywall: different Idempotency-Keys")
)

// parseIdempotencyKey returns the key of the Idempotency-Key field lines vs
// (at least one, all the same key): each an sf-string (RFC 9651, without
// parameters) or, leniently, the same key as a bare token (RFC 9110 tchar,
// ':' and '/'), of 1 to maxIdempotencyKeyLength bytes.
func parseIdempotencyKey(vs []string) (string, error) {
	var key string
	for i, v := range vs {
		k, err := parseIdempotencyValue(v)
		switch {
		case err != nil:
			return "", err
		case i > 0 && k != key:
			return "", errIdemConflicting
		}
		key = k
	}
	return key, nil
}

// parseIdempotencyValue parses one field line of Idempotency-Key.
func parseIdempotencyValue(v string) (key string, err error) {
	v = trimOWS(v)
	switch {
	case len(v) > 2*maxIdempotencyKeyLength+2:
		// An escape doubles a character at most: too long, whatever it holds.
		return "", errIdemTooLong
	case strings.HasPrefix(v, `"`):
		key, err = unquote(v)
	default: // a bare token: RFC 9110 tchar, ':' and '/'
		key = v
		for i := 0; i < len(v) && err == nil; i++ {
			if c := v[i]; !isTchar(c) && c != ':' && c != '/' {
				err = errIdemMalformed
			}
		}
	}
	switch {
	case len(key) > maxIdempotencyKeyLength:
		return "", errIdemTooLong
	case err != nil:
		return "", err
	case key == "":
		return "", errIdemMalformed
	}
	return key, nil
}

// unquote returns the content of the sf-string v, which starts with '"'.
func unquote(v string) (string, error) {
	var unescaped []byte // nil until the first escape
	for i := 1; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			if i != len(v)-1 { // parameters, or anything else after the string
				return "", errIdemMalformed
			}
			if unescaped != nil {
				return string(unescaped), nil
			}
			return v[1:i], nil
		case c == '\\':
			if i+1 == len(v) || v[i+1] != '"' && v[i+1] != '\\' {
				return "", errIdemMalformed
			}
			if unescaped == nil {
				unescaped = append(make([]byte, 0, len(v)), v[1:i]...)
			}
			i++
			unescaped = append(unescaped, v[i])
		case c < 0x20 || c > 0x7e:
			return "", errIdemMalformed
		case unescaped != nil:
			unescaped = append(unescaped, c)
		}
	}
	return "", errIdemMalformed // no closing quote
}

// invalidIdempotencyKey is the denial for an Idempotency-Key that err
// refused. It never repeats the value, which may hold anything.
func invalidIdempotencyKey(err error) *Denial {
	d := &Denial{Code: CodeInvalidRequest}
	switch err {
	case errIdemTooLong:
		d.Detail = "The " + headerIdempotencyKey + " header is longer than " + strconv.Itoa(maxIdempotencyKeyLength) + " bytes."
	case errIdemConflicting:
		d.Detail = "The request carries more than one " + headerIdempotencyKey + ", and they differ."
	default:
		d.Detail = "The " + headerIdempotencyKey + ` header must be a quoted string of 1 to ` +
			strconv.Itoa(maxIdempotencyKeyLength) + ` printable ASCII characters, such as "8e03978e-40d5-43e8-bc93-6894a57f9324".`
	}
	return d
}

// idemUse is a request's use of the Idempotency-Key its outermost charge
// holds: kept if a debit stands and none was refused or refunded.
type idemUse struct {
	held    bool // a charge of this request holds a key in flight
	debited bool // a debit was made
	void    bool // a charge was refused, or a debit refunded
}

// idempotencyKey returns the Idempotency-Key this charge is to honour, or
// "". It refuses a malformed key and returns false.
func (c *charge) idempotencyKey() (string, bool) {
	p := c.h.p
	vs := c.r.Header[headerIdempotencyKey]
	if p.idempotency == nil || c.s.idem.held || len(vs) == 0 {
		return "", true
	}
	key, err := parseIdempotencyKey(vs)
	if err != nil {
		c.deny("charge", invalidIdempotencyKey(err))
		return "", false
	}
	return key, true
}

// once debits and serves a request with the Idempotency-Key key, holding
// the key meanwhile; it lets a retry of a charged request through with no
// debit and refuses a key reused elsewhere or still in flight.
func (c *charge) once(key string) {
	p, caller := c.h.p, &c.s.caller
	k := pairDigest(caller.Account.ID, key)
	path := c.r.Pattern
	if path == "" && c.r.URL != nil {
		path = c.r.URL.Path
	}
	switch p.idempotency.begin(k, pairDigest(c.r.Method, path)) {
	case idemReused:
		p.refuse(c.w, c.r, decision("charge", caller), &Denial{
			Code:   CodeIdempotencyKeyReused,
			Detail: "This " + headerIdempotencyKey + " was used for another request (another method or route). Use a new key for a new request.",
		})
		return
	case idemBusy:
		p.refuse(c.w, c.r, decision("charge", caller), &Denial{
			Code:       CodeIdempotencyInProgress,
			Detail:     "A request with this " + headerIdempotencyKey + " is still being processed; send it again when it has finished.",
			RetryAfter: retryInProgress,
		})
		return
	case idemRemembered:
		caller.Replay = true
		c.pass()
		return
	}
	c.s.idem = idemUse{held: true}
	defer func() {
		// Also when next panics: a debit that stands is remembered.
		p.idempotency.end(k, c.s.idem.debited && !c.s.idem.void)
		c.s.idem = idemUse{}
	}()
	c.collect()
}

// idemDigest is the SHA-256 of an account ID and an Idempotency-Key, or of
// a method and route (a fingerprint): fixed-size whatever the client sends.
type idemDigest [sha256.Size]byte

// pairDigest is the digest of a and b, length-prefixed so that no two pairs
// share an input, without allocating for short strings.
func pairDigest(a, b string) idemDigest {
	var buf [320]byte
	data := buf[:0]
	if n := 8 + len(a) + len(b); n > len(buf) {
		data = make([]byte, 0, n)
	}
	data = binary.BigEndian.AppendUint64(data, uint64(len(a)))
	data = append(data, a...)
	data = append(data, b...)
	return sha256.Sum256(data)
}

// idemState is what idempotencyCache.begin found.
type idemState int

const (
	idemNew        idemState = iota // unknown (or expired): now held in flight by the caller
	idemBusy                        // held in flight by another request with the same fingerprint
	idemReused                      // known with another fingerprint
	idemRemembered                  // charged within the window, same fingerprint
)

// idemEntry is a key's fingerprint and its expiry in Unix nanoseconds, zero
// while the key is in flight; with no pointer, the GC need not scan the map.
type idemEntry struct {
	fingerprint idemDigest
	expires     int64
}

type idemItem struct {
	key     idemDigest
	expires int64
}

// idempotencyCache remembers, safely for concurrent use, the keys in flight
// and, for a window, at most max keys of charged requests.
type idempotencyCache struct {
	window time.Duration
	now    func() time.Time
	max    int

	mu    sync.Mutex
	m     map[idemDigest]idemEntry
	order []idemItem // remembered keys, oldest first
}

func newIdempotencyCache(window time.Duration, now func() time.Time, max int) *idempotencyCache {
	return &idempotencyCache{window: window, now: now, max: max, m: make(map[idemDigest]idemEntry)}
}

// begin looks the key k of a request with fingerprint fp up. A new key is
// now held in flight, and the caller must call end.
func (c *idempotencyCache) begin(k, fp idemDigest) idemState {
	now := c.now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prune(now)
	if e, ok := c.m[k]; ok && (e.expires == 0 || now < e.expires) {
		switch {
		case e.fingerprint != fp:
			return idemReused
		case e.expires == 0:
			return idemBusy
		}
		return idemRemembered
	}
	c.m[k] = idemEntry{fingerprint: fp}
	return idemNew
}

// end releases the key k held in flight, remembered for the window if keep.
func (c *idempotencyCache) end(k idemDigest, keep bool) {
	now := c.now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || e.expires != 0 { // not held: cannot happen
		return
	}
	if !keep {
		delete(c.m, k)
		return
	}
	e.expires = now + int64(c.window)
	if e.expires < now { // a window beyond the year 2262
		e.expires = math.MaxInt64
	}
	e.expires = max(e.expires, 1) // a clock at the Unix epoch, with zero meaning in flight
	c.m[k] = e
	c.order = append(c.order, idemItem{k, e.expires})
	c.prune(now)
}

// prune forgets expired keys and the oldest beyond max, never keys in
// flight. c.mu must be held.
func (c *idempotencyCache) prune(now int64) {
	n := 0
	for n < len(c.order) && (now >= c.order[n].expires || len(c.order)-n > c.max) {
		it := c.order[n]
		// The entry may since have expired and been taken again.
		if e, ok := c.m[it.key]; ok && e.expires == it.expires {
			delete(c.m, it.key)
		}
		c.order[n] = idemItem{}
		n++
	}
	c.order = c.order[n:]
}
