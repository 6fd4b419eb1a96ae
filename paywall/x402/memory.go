package x402

import (
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// maxRemembered bounds the memory of payments: past it, the oldest are
// forgotten early (sending one of them again then goes to the facilitator,
// which refuses a payment it already settled).
const maxRemembered = 100_000

// retryInProgress is the Retry-After of the 409 for a duplicate payment.
const retryInProgress = time.Second

type paymentKey [sha256.Size]byte

// paymentKeyOf identifies one payment of one resource: the decoded payment
// header, the method and the path. Encoding variants of the same payload
// (padding, alphabet) map to the same key.
func paymentKeyOf(method, path string, payload []byte) paymentKey {
	return sum(method, path, string(payload))
}

func sum(parts ...string) [sha256.Size]byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// outcome is what became of a payment this server sent for settlement.
type outcome uint8

const (
	unsettled outcome = iota // not sent, or refused: forgotten once out of flight
	unknown                  // sent, and the facilitator's answer was lost
	settled
)

// record is what the server remembers of a payment.
type record struct {
	outcome outcome
	header  string // settled: the PAYMENT-RESPONSE sent
	payer   string
	retry   [sha256.Size]byte // settled: who may retry (retryKey); zero if nobody
	expires time.Time
}

type memoryEntry struct {
	record
	busy bool // a request is verifying, serving or settling the payment
}

type memoryItem struct {
	key     paymentKey
	expires time.Time
}

// memory remembers payments in flight, settled, or with an unknown
// outcome, for a window. It is safe for concurrent use.
type memory struct {
	window time.Duration
	now    func() time.Time
	max    int // maxRemembered

	mu    sync.Mutex
	m     map[paymentKey]*memoryEntry
	order []memoryItem // remembered outcomes, oldest first
}

func newMemory(window time.Duration, now func() time.Time) *memory {
	return &memory{window: window, now: now, max: maxRemembered, m: make(map[paymentKey]*memoryEntry)}
}

// begin returns what is remembered of k and marks it in flight, or reports
// busy if it already is. Unless busy, the caller must call finish.
func (c *memory) begin(k paymentKey) (rec record, busy bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prune(now)
	e, ok := c.m[k]
	switch {
	case !ok:
		c.m[k] = &memoryEntry{busy: true}
		return record{}, false
	case e.busy:
		return record{}, true
	case !now.Before(e.expires):
		*e = memoryEntry{busy: true}
		return record{}, false
	}
	e.busy = true
	return e.record, false
}

// finish takes k out of flight and remembers rec until rec.expires, or
// forgets k if rec is unsettled.
func (c *memory) finish(k paymentKey, rec record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		e = &memoryEntry{}
		c.m[k] = e
	}
	if rec.outcome == unsettled {
		delete(c.m, k)
		return
	}
	if e.expires != rec.expires {
		c.order = append(c.order, memoryItem{k, rec.expires})
	}
	e.record, e.busy = rec, false
}

// remember returns rec with the window's expiry from now.
func (c *memory) remember(rec record) record {
	rec.expires = c.now().Add(c.window)
	return rec
}

// prune forgets outcomes that expired, and the oldest ones beyond
// c.max. c.mu must be held.
func (c *memory) prune(now time.Time) {
	n := 0
	for n < len(c.order) && (!now.Before(c.order[n].expires) || len(c.order)-n > c.max) {
		it := c.order[n]
		if e, ok := c.m[it.key]; ok && !e.busy && e.expires.Equal(it.expires) {
			delete(c.m, it.key)
		}
		c.order[n] = memoryItem{}
		n++
	}
	c.order = c.order[n:]
}

// paymentIdentifier is the name of the x402 extension that carries a
// client-chosen payment id, and paymentIdentifierOffer what a challenge
// says of it when retries are on.
const paymentIdentifier = "payment-identifier"

var paymentIdentifierOffer = map[string]any{
	"info": map[string]any{"required": false},
	"schema": map[string]any{
		"$schema": "https://json-schema.org/draft/2020-12/schema",
		"type":    "object",
		"properties": map[string]any{
			"required": map[string]any{"type": "boolean"},
			"id":       map[string]any{"type": "string", "minLength": 16, "maxLength": 128},
		},
		"required": []string{"required"},
	},
}

// paymentID returns the payment-identifier id of a payment's extensions,
// or "" if there is none or it is not 16 to 128 letters, digits, '-' or
// '_'.
func paymentID(ext json.RawMessage) string {
	if len(ext) == 0 {
		return ""
	}
	var e struct {
		P struct {
			Info struct {
				ID string `json:"id"`
			} `json:"info"`
		} `json:"payment-identifier"`
	}
	if json.Unmarshal(ext, &e) != nil {
		return ""
	}
	id := e.P.Info.ID
	if len(id) < 16 || len(id) > 128 {
		return ""
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return ""
		}
	}
	return id
}

// noRetry is the retryKey of a payment nobody may retry.
var noRetry [sha256.Size]byte

// retryKey names the requests that may retry a payment with id: the same
// identity, method and URL. It is zero if retries are off or the payment
// has no id.
func (p *Payments) retryKey(r *http.Request, id string) (k [sha256.Size]byte) {
	if p.opts.RetryIdentity == nil || id == "" {
		return k
	}
	who := p.opts.RetryIdentity(r)
	if who == "" {
		return k
	}
	return sum(who, r.Method, r.RequestURI, id)
}
