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
	const timeout = 100 * time.Millisecond
	const slack = 250 * time.Millisecond // scheduling under -race on a loaded two-core machine
	goroutines := runtime.NumGoroutine()

	srv := startServer(t, t.Cleanup)
	c := redis.NewClient(&redis.Options{Addr: srv.addr(), ContextTimeoutEnabled: true})
	s, err := New(c, &Options{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const id = "fault"
	bucket := store.Bucket{Account: id, Key: "default", Rate: 1000, Burst: 1000, Cost: 1}
	seed := func() store.Digest {
		t.Helper()
		if err := s.PutAccount(ctx, store.Account{ID: id, Balance: 10}); err != nil {
			t.Fatal(err)
		}
		raw, _, err := s.CreateKey(ctx, id, "sk_fault_")
		if err != nil {
			t.Fatal(err)
		}
		return store.DigestOf(raw)
	}
	// calls makes one call of each kind; each must succeed or fail as
	// wantErr says, within the timeout.
	calls := func(phase string, wantErr bool) {
		t.Helper()
		ops := map[string]func() error{
			"Spend":           func() error { _, err := s.Spend(ctx, id, 1); return err },
			"Refund":          func() error { _, err := s.Refund(ctx, id, 1); return err },
			"TakeTokens":      func() error { _, err := s.TakeTokens(ctx, bucket); return err },
			"SpendWithTokens": func() error { _, _, err := s.SpendWithTokens(ctx, id, 1, bucket); return err },
			"Lookup":          func() error { _, _, err := s.Lookup(ctx, store.DigestOf("sk_fault_uncached_"+phase)); return err },
			"Account":         func() error { _, err := s.Account(ctx, id); return err },
		}
		var slowest time.Duration
		defer func() { t.Logf("%s: slowest call %v", phase, slowest) }()
		for name, op := range ops {
			start := time.Now()
			err := op()
			took := time.Since(start)
			slowest = max(slowest, took)
			limit := timeout + slack
			if strings.HasPrefix(name, "Spend") {
				limit += timeout
			}
			if took > limit {
				t.Errorf("%s: %s took %v, want at most %v", phase, name, took, limit)
			}
			if !wantErr {
				if err != nil && !(name == "Lookup" && errors.Is(err, store.ErrNotFound)) {
					t.Errorf("%s: %s: %v", phase, name, err)
				}
				continue
			}
			switch {
			case err == nil:
				t.Errorf("%s: %s succeeded against a broken Redis", phase, name)
			case errors.Is(err, store.ErrNotFound):
				t.Errorf("%s: %s: %v reads as not found, not as the store failing", phase, name, err)
			case !strings.HasPrefix(err.Error(), "redisstore: "):
				t.Errorf("%s: %s: error %q lacks the package prefix", phase, name, err)
			}
		}
	}
	// exact checks the store is correct: ten spends of 1 from a balance
	// of 10 succeed and the eleventh is refused.
	exact := func(phase string) {
		t.Helper()
		for i := 0; i < 11; i++ {
			r, err := s.Spend(ctx, id, 1)
			if err != nil || r.OK != (i < 10) || (r.OK && r.Balance != int64(9-i)) {
				t.Fatalf("%s: spend %d = %+v, %v", phase, i, r, err)
			}
		}
	}

	digest := seed()
	calls("healthy", false)
	if err := s.PutAccount(ctx, store.Account{ID: id, Balance: 10}); err != nil {
		t.Fatal(err)
	}
	exact("healthy")
	if _, _, err := s.Lookup(ctx, digest); err != nil { // now cached
		t.Fatal(err)
	}

	// A stalled Redis: the process is alive but answers nothing.
	if err := srv.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	calls("stalled", true)
	// A cached lookup needs no Redis.
	if _, _, err := s.Lookup(ctx, digest); err != nil {
		t.Errorf("stalled: cached lookup: %v", err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// Back: the data survived; nothing was spent while it was stalled
	// except what a stalled call may have left queued in the server, which
	// the client never saw answered. Put a known balance back and check.
	if err := s.PutAccount(ctx, store.Account{ID: id, Balance: 10}); err != nil {
		t.Fatalf("after SIGCONT: %v", err)
	}
	exact("resumed")

	// A dead Redis.
	srv.kill()
	calls("down", true)
	srv.restart(t)
	// The restarted server lost everything (no persistence): seed again,
	// then the same store instance works without any intervention.
	seed()
	calls("restarted", false)
	if err := s.PutAccount(ctx, store.Account{ID: id, Balance: 10}); err != nil {
		t.Fatal(err)
	}
	exact("restarted")

	// No goroutine outlives the calls: once the store and the client are
	// closed, the count returns to what it was before (allowing the
	// server's waiter).
	s.Close()
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= goroutines+1 { // +1: the goroutine waiting for redis-server
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, started with %d:\n%s", n, goroutines, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
