package pgstore

import (
	"context"
	"sync"
	"time"
)

// maxPendingCancels bounds the operations waiting to be cancelled. Spends
// that fail before reaching the database (it is down) need none, so the
// queue fills only when answers are lost in flight.
const maxPendingCancels = 1 << 16

// cancelQueue holds the operations whose answer was lost, by ID, with
// their account, until the database confirms their cancellation.
type cancelQueue struct {
	mu      sync.Mutex
	pending map[string]string // operation ID → account ID
	wake    chan struct{}
	dropped int64 // operations not queued because the queue was full
}

func newCancelQueue() *cancelQueue {
	return &cancelQueue{pending: make(map[string]string), wake: make(chan struct{}, 1)}
}

// add queues the cancellation of operation opID of accountID.
func (q *cancelQueue) add(accountID, opID string) {
	q.mu.Lock()
	if len(q.pending) < maxPendingCancels {
		q.pending[opID] = accountID
	} else {
		q.dropped++
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// snapshot returns the pending operations.
func (q *cancelQueue) snapshot() map[string]string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make(map[string]string, len(q.pending))
	for op, acct := range q.pending {
		out[op] = acct
	}
	return out
}

// done removes a cancelled operation.
func (q *cancelQueue) done(opID string) {
	q.mu.Lock()
	delete(q.pending, opID)
	q.mu.Unlock()
}

// len returns the number of pending cancellations.
func (q *cancelQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// runCancels cancels queued operations until ctx ends, retrying failures
// with a backoff of up to five seconds.
func (s *Store) runCancels(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for {
		if s.cancelPending(ctx) {
			backoff = 50 * time.Millisecond
			select {
			case <-ctx.Done():
				return
			case <-s.cancels.wake:
			}
			continue
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// cancelPending tries to cancel every pending operation and reports
// whether none is left.
func (s *Store) cancelPending(ctx context.Context) bool {
	for opID, accountID := range s.cancels.snapshot() {
		if ctx.Err() != nil {
			return false
		}
		if s.cancelOperation(ctx, accountID, opID) == nil {
			s.cancels.done(opID)
		}
	}
	return s.cancels.len() == 0
}

// cancelOperation makes sure operation opID moves no credits of accountID.
func (s *Store) cancelOperation(ctx context.Context, accountID, opID string) error {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, s.sql.cancel, accountID, opID)
	return err
}

// flushCancels tries once more, before the Store closes, to cancel the
// pending operations.
func (s *Store) flushCancels() {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	s.cancelPending(ctx)
}
