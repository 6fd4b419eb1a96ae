package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxPendingCancels bounds the cancels waiting for Redis to come back.
const maxPendingCancels = 10000

// errCancelled is the error of a spend whose script found its operation
// cancelled already. The Store cancels an operation only after its call
// failed, so no caller should see it; it is handled as a lost answer.
var errCancelled = errors.New("operation cancelled")

// cancel is an operation whose outcome is unknown: the marker that records
// it and the account it may have debited.
type cancel struct {
	account, marker string
}

// ops issues operation ids and cancels the operations whose answers were
// lost, retrying in the background those it could not cancel at once.
type ops struct {
	base    string // random, unique to this Store; starts its operation ids
	seq     atomic.Uint64
	pending chan cancel
	waiting atomic.Int64 // cancels queued or being retried
	dropped atomic.Int64 // cancels given up: the queue was full, or Close
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func newOps() *ops {
	b := make([]byte, 8)
	rand.Read(b)
	return &ops{
		base:    hex.EncodeToString(b) + ".",
		pending: make(chan cancel, maxPendingCancels),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// spendKeys returns the keys of a spend from the account: its hash
// ([Store.AccountRedisKey]), a new operation's marker, in the account's
// hash slot, and its holds ([Store.HoldsRedisKey]), cut from one string
// so that a call allocates once for the three.
func (s *Store) spendKeys(accountID string) []string {
	var seq [16]byte
	id := strconv.AppendUint(seq[:0], s.ops.seq.Add(1), 36)
	var b strings.Builder
	tag := len(s.prefix) + len("{acct:}") + len(accountID)
	b.Grow(3*tag + len(":account:op::holds") + len(s.ops.base) + len(id))
	for _, suffix := range [...]string{":account", ":op:", ":holds"} {
		b.WriteString(s.prefix)
		b.WriteString("{acct:")
		b.WriteString(accountID)
		b.WriteString("}")
		b.WriteString(suffix)
		if suffix == ":op:" {
			b.WriteString(s.ops.base)
			b.Write(id)
		}
	}
	all := b.String()
	m := tag + len(":account")
	h := m + tag + len(":op:") + len(s.ops.base) + len(id)
	return []string{all[:m], all[m:h], all[h:]}
}

// cancelOp cancels the operation recorded by marker after its call failed,
// before the failure is returned: at once if Redis answers, else by queueing
// it for the background retries.
func (s *Store) cancelOp(ctx context.Context, c cancel) {
	cctx, stop := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer stop()
	if s.runCancel(cctx, c) == nil {
		return
	}
	s.ops.waiting.Add(1)
	select {
	case s.ops.pending <- c:
	default:
		s.ops.waiting.Add(-1)
		s.ops.dropped.Add(1)
	}
}

func (s *Store) runCancel(ctx context.Context, c cancel) error {
	return cancelScript.Run(ctx, s.rdb, []string{s.AccountRedisKey(c.account), c.marker}, s.ttlArg).Err()
}

// retryCancels runs until Close, cancelling the queued operations in turn,
// each retried with a growing pause until Redis answers.
func (s *Store) retryCancels() {
	defer close(s.ops.done)
	for {
		select {
		case <-s.ops.stop:
			return
		case c := <-s.ops.pending:
			ok := s.retryCancel(c)
			s.ops.waiting.Add(-1)
			if !ok {
				return
			}
		}
	}
}

// retryCancel retries c until it succeeds (true) or the store is closed.
func (s *Store) retryCancel(c cancel) bool {
	pause := 10 * time.Millisecond
	for {
		ctx, stop := context.WithTimeout(context.Background(), s.timeout)
		err := s.runCancel(ctx, c)
		stop()
		if err == nil {
			return true
		}
		t := time.NewTimer(pause)
		select {
		case <-s.ops.stop:
			t.Stop()
			s.flushCancels(c)
			return false
		case <-t.C:
		}
		pause = min(2*pause, time.Second)
	}
}

// flushCancels makes one last attempt at c and the queued cancels, each
// bounded by the store's timeout; after the first that fails, the rest are
// dropped.
func (s *Store) flushCancels(c cancel) {
	failed := false
	for {
		if !failed {
			ctx, stop := context.WithTimeout(context.Background(), s.timeout)
			failed = s.runCancel(ctx, c) != nil
			stop()
		}
		if failed {
			s.ops.dropped.Add(1)
		}
		select {
		case c = <-s.ops.pending:
			s.ops.waiting.Add(-1)
		default:
			return
		}
	}
}

// Close stops the store's background work: the subscription that keeps
// the lookup caches of replicas in step, and the retries of cancels that
// Redis did not answer. Cancels still waiting get one last attempt each,
// bounded by [Options.Timeout], until one fails; the rest are lost (see the
// package documentation). Close does not close the Redis client. The Store
// must not be used after Close.
func (s *Store) Close() error {
	s.ops.once.Do(func() {
		close(s.ops.stop)
		s.subStop()
		<-s.ops.done
		<-s.subDone
		select {
		case c := <-s.ops.pending:
			s.ops.waiting.Add(-1)
			s.flushCancels(c)
		default:
		}
	})
	return nil
}
