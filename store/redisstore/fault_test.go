package redisstore

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go402/go402/store"
	"github.com/redis/go-redis/v9"
)

// TestFaults runs a store on a test-owned redis-server and breaks it: a
// stalled server (SIGSTOP) and a dead one (killed, then restarted on the
// same port with its data gone). Every call must fail within the timeout
// (twice the timeout for a spend, which then cancels its operation) with a
// back-end error (not ErrNotFound), leave no goroutine behind once the
// store is closed, and the store must work correctly again once Redis is
// back.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and stops redis-server")
	}
	goroutines := runtime.NumGoroutine()
	srv := startServer(t, t.Cleanup)
	c := redis.NewClient(&redis.Options{Addr: srv.addr(), ContextTimeoutEnabled: true})
	s, err := New(c, &Options{Timeout: faultTimeout})
	if err != nil {
		t.Fatal(err)
	}
	f := &faults{t: t, s: s}
	digest := f.seed()
	f.calls("healthy", false)
	f.exact("healthy")
	if _, _, err := s.Lookup(f.ctx(), digest); err != nil { // now cached
		t.Fatal(err)
	}

	// A stalled Redis: the process is alive but answers nothing.
	if err := srv.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	f.calls("stalled", true)
	// A cached lookup needs no Redis.
	if _, _, err := s.Lookup(f.ctx(), digest); err != nil {
		t.Errorf("stalled: cached lookup: %v", err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// Back: the data survived; what the stalled calls left queued in the
	// server was cancelled. Put a known balance back and check.
	f.exact("resumed")

	// A dead Redis.
	srv.kill()
	f.calls("down", true)
	srv.restart(t)
	// The restarted server lost everything (no persistence): seed again,
	// then the same store instance works without any intervention.
	f.seed()
	f.calls("restarted", false)
	f.exact("restarted")

	// No goroutine outlives the calls: once the store and the client are
	// closed, the count returns to what it was before (allowing the
	// server's waiter).
	s.Close()
	c.Close()
	within(t, 5*time.Second, "goroutines end", func() bool { return runtime.NumGoroutine() <= goroutines+1 })
}

const (
	faultTimeout = 100 * time.Millisecond
	faultSlack   = 250 * time.Millisecond // scheduling under -race on a loaded two-core machine
	faultID      = "fault"
)

// faults breaks a store's Redis and checks the store's calls.
type faults struct {
	t *testing.T
	s *Store
}

func (f *faults) ctx() context.Context { return context.Background() }

// seed stores the account and a key for it, and returns the key's digest.
func (f *faults) seed() store.Digest {
	f.t.Helper()
	if err := f.s.PutAccount(f.ctx(), store.Account{ID: faultID, Balance: 10}); err != nil {
		f.t.Fatal(err)
	}
	raw, _, err := f.s.CreateKey(f.ctx(), faultID, "sk_fault_")
	if err != nil {
		f.t.Fatal(err)
	}
	return store.DigestOf(raw)
}

// calls makes one call of each kind; each must succeed or fail as wantErr
// says, within the timeout (a spend, which cancels its operation after a
// failure, within twice the timeout).
func (f *faults) calls(phase string, wantErr bool) {
	f.t.Helper()
	ctx, s, id := f.ctx(), f.s, faultID
	bucket := store.Bucket{Account: id, Key: "default", Rate: 1000, Burst: 1000, Cost: 1}
	ops := map[string]func() error{
		"Spend":           func() error { _, err := s.Spend(ctx, id, 1); return err },
		"Refund":          func() error { _, err := s.Refund(ctx, id, 1); return err },
		"TakeTokens":      func() error { _, err := s.TakeTokens(ctx, bucket); return err },
		"SpendWithTokens": func() error { _, _, err := s.SpendWithTokens(ctx, id, 1, bucket); return err },
		"Lookup":          func() error { _, _, err := s.Lookup(ctx, store.DigestOf("sk_fault_uncached_"+phase)); return err },
		"Account":         func() error { _, err := s.Account(ctx, id); return err },
	}
	var slowest time.Duration
	defer func() { f.t.Logf("%s: slowest call %v", phase, slowest) }()
	for name, op := range ops {
		start := time.Now()
		err := op()
		took := time.Since(start)
		slowest = max(slowest, took)
		limit := faultTimeout + faultSlack
		if strings.HasPrefix(name, "Spend") {
			limit += faultTimeout
		}
		if took > limit {
			f.t.Errorf("%s: %s took %v, want at most %v", phase, name, took, limit)
		}
		f.check(phase, name, err, wantErr)
	}
}

func (f *faults) check(phase, name string, err error, wantErr bool) {
	f.t.Helper()
	switch {
	case !wantErr:
		if err != nil && !(name == "Lookup" && errors.Is(err, store.ErrNotFound)) {
			f.t.Errorf("%s: %s: %v", phase, name, err)
		}
	case err == nil:
		f.t.Errorf("%s: %s succeeded against a broken Redis", phase, name)
	case errors.Is(err, store.ErrNotFound):
		f.t.Errorf("%s: %s: %v reads as not found, not as the store failing", phase, name, err)
	case !strings.HasPrefix(err.Error(), "redisstore: "):
		f.t.Errorf("%s: %s: error %q lacks the package prefix", phase, name, err)
	}
}

// exact puts a balance of 10 and checks the store is correct: ten spends
// of 1 succeed and the eleventh is refused.
func (f *faults) exact(phase string) {
	f.t.Helper()
	if err := f.s.PutAccount(f.ctx(), store.Account{ID: faultID, Balance: 10}); err != nil {
		f.t.Fatalf("%s: %v", phase, err)
	}
	for i := 0; i < 11; i++ {
		r, err := f.s.Spend(f.ctx(), faultID, 1)
		if err != nil || r.OK != (i < 10) || (r.OK && r.Balance != int64(9-i)) {
			f.t.Fatalf("%s: spend %d = %+v, %v", phase, i, r, err)
		}
	}
}
