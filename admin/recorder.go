package admin

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// defaultRecorderSize bounds the keys a Recorder holds between flushes.
const defaultRecorderSize = 100000

// Recorder keeps each key's last-use time cheaply: its [Recorder.Record]
// method, given to paywall's Options.OnDecision, notes the time of each
// authenticated request in memory (one map write under a lock, no store
// call), and [Recorder.Flush] writes the latest time of every key used
// since the last flush to the store with one [store.Admin].TouchKeys call.
// [Recorder.Run] flushes periodically. Between flushes it holds at most
// Size keys; uses of further keys are dropped until the next flush, so a
// last-use time is late, never wrong. A Recorder is safe for concurrent
// use.
type Recorder struct {
	st   store.Admin
	size int

	mu       sync.Mutex
	uses     map[store.Digest]time.Time
	refusals []Refusal // a ring of the most recent, at next when full
	next     int
}

// NewRecorder returns a Recorder flushing to st, holding at most size keys
// between flushes (100,000 if ≤ 0).
func NewRecorder(st store.Admin, size int) (*Recorder, error) {
	if st == nil {
		return nil, errors.New("admin: NewRecorder: nil store")
	}
	if size <= 0 {
		size = defaultRecorderSize
	}
	return &Recorder{st: st, size: size, uses: make(map[store.Digest]time.Time)}, nil
}

// Record notes the use of the key of an allowed authentication, read from
// the request context the paywall passes, and keeps the most recent
// refusals for the console ([Recorder.Refusals]); it ignores other
// decisions. Its signature is that of paywall's Options.OnDecision.
func (rec *Recorder) Record(ctx context.Context, d paywall.Decision) {
	if !d.Allowed {
		rec.mu.Lock()
		rec.noteRefusal(d)
		rec.mu.Unlock()
		return
	}
	if d.Step != "authenticate" {
		return
	}
	c, ok := paywall.CallerFromContext(ctx)
	if !ok {
		return
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	t, seen := rec.uses[c.Key.Digest]
	if !seen && len(rec.uses) >= rec.size {
		return
	}
	if d.Time.After(t) {
		rec.uses[c.Key.Digest] = d.Time
	}
}

// pending returns the last use of d noted since the last flush.
func (rec *Recorder) pending(d store.Digest) (time.Time, bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	t, ok := rec.uses[d]
	return t, ok
}

// Flush writes the uses noted since the last flush with one TouchKeys call.
// If it fails, they are noted again, to be written by the next flush.
func (rec *Recorder) Flush(ctx context.Context) error {
	rec.mu.Lock()
	uses := rec.uses
	rec.uses = make(map[store.Digest]time.Time, len(uses))
	rec.mu.Unlock()
	if len(uses) == 0 {
		return nil
	}
	err := rec.st.TouchKeys(ctx, uses)
	if err != nil {
		rec.mu.Lock()
		for d, t := range uses {
			if cur, ok := rec.uses[d]; (ok && t.After(cur)) || (!ok && len(rec.uses) < rec.size) {
				rec.uses[d] = t
			}
		}
		rec.mu.Unlock()
	}
	return err
}

// Run flushes every interval until ctx ends, then flushes once more with
// a context that is not cancelled, and returns. Flush errors go to
// onError, if not nil.
func (rec *Recorder) Run(ctx context.Context, interval time.Duration, onError func(error)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	flush := func(ctx context.Context) {
		if err := rec.Flush(ctx); err != nil && onError != nil {
			onError(err)
		}
	}
	for {
		select {
		case <-tick.C:
			flush(ctx)
		case <-ctx.Done():
			flush(context.WithoutCancel(ctx))
			return
		}
	}
}
