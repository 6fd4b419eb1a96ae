package x402

import (
	"crypto/sha256"
	"sync"
	"time"
)

// maxReplayEntries bounds the memory of a replayCache: past it, the oldest
// settled payments are forgotten early (a retry of one is then verified
// again, and a facilitator refuses a payment it already settled).
const maxReplayEntries = 100_000

// retryInProgress is the Retry-After of the 409 for a duplicate payment.
const retryInProgress = time.Second

type replayKey [sha256.Size]byte

// replayKeyOf identifies one payment of one resource: the decoded payment
// header, the method and the path. Encoding variants of the same payload
// (padding, alphabet) map to the same key.
func replayKeyOf(method, path string, payload []byte) replayKey {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(payload)
	var k replayKey
	h.Sum(k[:0])
	return k
}

type replayState int

const (
	replayNew     replayState = iota // first sight: now marked in flight
	replayBusy                       // in flight in another request
	replaySettled                    // settled within the window
)

type replayEntry struct {
	settled bool
	header  string // the encoded SettleResponse sent with the first answer
	payer   string
	expires time.Time
}

type replayItem struct {
	key     replayKey
	entry   *replayEntry
	expires time.Time
}

// replayCache remembers payments in flight and settled payments for a
// window, so that a retried payment is neither settled twice nor verified
// twice concurrently. It is safe for concurrent use.
type replayCache struct {
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	m     map[replayKey]*replayEntry
	order []replayItem // settled entries, oldest first
}

func newReplayCache(window time.Duration, now func() time.Time) *replayCache {
	return &replayCache{window: window, now: now, m: make(map[replayKey]*replayEntry)}
}

// begin looks k up. If it is new it is marked in flight, and the caller must
// call settled or end later.
func (c *replayCache) begin(k replayKey) (replayEntry, replayState) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prune(now)
	if e, ok := c.m[k]; ok {
		if !e.settled {
			return replayEntry{}, replayBusy
		}
		if now.Before(e.expires) {
			return *e, replaySettled
		}
	}
	c.m[k] = &replayEntry{}
	return replayEntry{}, replayNew
}

// settled records that the payment k in flight was settled.
func (c *replayCache) settled(k replayKey, header, payer string) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &replayEntry{settled: true, header: header, payer: payer, expires: now.Add(c.window)}
	c.m[k] = e
	c.order = append(c.order, replayItem{k, e, e.expires})
	c.prune(now)
}

// end forgets the payment k in flight unless it was settled.
func (c *replayCache) end(k replayKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok && !e.settled {
		delete(c.m, k)
	}
}

// prune drops settled entries that expired, and the oldest ones beyond
// maxReplayEntries. c.mu must be held.
func (c *replayCache) prune(now time.Time) {
	n := 0
	for n < len(c.order) && (!now.Before(c.order[n].expires) || len(c.order)-n > maxReplayEntries) {
		it := c.order[n]
		if c.m[it.key] == it.entry {
			delete(c.m, it.key)
		}
		c.order[n] = replayItem{}
		n++
	}
	c.order = c.order[n:]
}
