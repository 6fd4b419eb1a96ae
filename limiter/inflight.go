package limiter

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// inFlightPolicy names the concurrency limit in a denial's violated-policies.
const inFlightPolicy = "inflight"

// defaultInFlightLease is the default of [Options.InFlightLease].
const defaultInFlightLease = 5 * time.Minute

// inFlight counts the requests in flight per key in the process; a key
// with none takes no memory.
type inFlight struct {
	mu sync.Mutex
	n  map[string]int
}

// acquire counts one more request of key if fewer than max are in flight.
func (f *inFlight) acquire(key string, max int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n[key] >= max {
		return false
	}
	if f.n == nil {
		f.n = make(map[string]int)
	}
	f.n[key]++
	return true
}

// release counts one request of key fewer.
func (f *inFlight) release(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n[key] <= 1 {
		delete(f.n, key)
		return
	}
	f.n[key]--
}

// setInFlight validates MaxInFlight and InFlightLease and sets the default.
func setInFlight(o *Options) error {
	switch {
	case o.MaxInFlight < 0:
		return fmt.Errorf("limiter: MaxInFlight must be >= 0, got %d", o.MaxInFlight)
	case o.InFlightLease < 0:
		return fmt.Errorf("limiter: InFlightLease must be >= 0, got %v", o.InFlightLease)
	case o.InFlightLease == 0:
		o.InFlightLease = defaultInFlightLease
	}
	return nil
}

// inFlightHandler limits the requests in flight in front of next.
type inFlightHandler struct {
	l    *Limiter
	next http.Handler
}

func (h *inFlightHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l := h.l
	c, _ := paywall.CallerFromContext(r.Context())
	var key string
	switch {
	case !l.byAccount:
		key, _ = l.opts.By.Key(r)
	case c != nil:
		key = c.Account.ID
	default: // no caller: next answers (misconfigured, or a limit alone)
		h.next.ServeHTTP(w, r)
		return
	}
	release, ok, err := l.acquireSlot(r.Context(), key)
	switch {
	case err != nil && !l.opts.Shadow && !l.opts.FailOpen:
		l.refuseError(w, r, c, &Result{now: l.opts.Clock()}, fmt.Errorf("%w: %w", ErrStoreUnavailable, err))
		return
	case err != nil:
	case !ok:
		l.refuseInFlight(w, r, c)
		if !l.opts.Shadow {
			return
		}
	default:
		defer release() // also when next panics, or returns as its client hangs up
	}
	h.next.ServeHTTP(w, r)
}

// acquireSlot takes a slot of key, in Options.Store if it keeps
// [store.Slots], else in the process, and returns the function that gives
// it back (whatever the request's context: a client that hung up still
// frees its slot).
func (l *Limiter) acquireSlot(ctx context.Context, key string) (release func(), ok bool, err error) {
	max := l.opts.MaxInFlight
	slots, shared := l.opts.Store.(store.Slots)
	if !shared {
		if !l.inFlight.acquire(key, max) {
			return nil, false, nil
		}
		return func() { l.inFlight.release(key) }, true, nil
	}
	key = l.opts.Name + ":" + inFlightPolicy + ":" + key
	slot, ok, err := slots.AcquireSlot(ctx, key, max, l.opts.InFlightLease)
	if err != nil || !ok {
		return nil, false, err
	}
	return func() { slots.ReleaseSlot(context.WithoutCancel(ctx), key, slot) }, true, nil
}

// refuseInFlight refuses a request over MaxInFlight (in shadow mode, only
// reports it).
func (l *Limiter) refuseInFlight(w http.ResponseWriter, r *http.Request, c *paywall.Caller) {
	n := strconv.Itoa(l.opts.MaxInFlight)
	d := &paywall.Denial{
		Code:       paywall.CodeRateLimited,
		Status:     l.opts.DenyStatus,
		Type:       quotaExceeded,
		Title:      "Quota Exceeded",
		Extensions: map[string]any{"violated-policies": []string{inFlightPolicy}},
		RetryAfter: time.Second,
		Detail:     "Too many requests in flight: at most " + n + " at once. Retry when one of them completes.",
	}
	l.decide(r, c, &Result{now: l.opts.Clock(), Cost: 1}, d)
	if !l.opts.Shadow {
		l.opts.Deny(w, r, d)
	}
}
