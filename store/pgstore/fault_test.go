package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go402/go402/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestLostAnswersAreNeverCharged spends under load through a proxy that
// drops the database's answers (the spends commit, but no one hears it)
// and cuts every connection, and checks afterwards that the credits
// debited are exactly those of the spends that reported success: what the
// middlewares would have served. Spends whose answer was lost were
// cancelled, and refunded if they had committed.
func TestLostAnswersAreNeverCharged(t *testing.T) {
	p := newProxy(t)
	direct := newPool(t, nil)
	schema := newSchema(t, direct)
	s := newStore(t, p.pool(t), Options{Schema: schema, Timeout: 200 * time.Millisecond})
	const balance, cost, workers = 1_000_000, 3, 8
	putAccount(t, s, "acct", balance)

	ctx, stop := context.WithCancel(context.Background())
	var served, failed atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				op := store.WithOperation(context.Background(), store.Operation{ID: fmt.Sprintf("w%d-%d", w, i)})
				res, err := s.Spend(op, "acct", cost)
				switch {
				case err != nil:
					failed.Add(1)
				case res.OK:
					served.Add(1)
				default:
					t.Errorf("spend refused at balance %d", res.Balance)
				}
			}
		}()
	}
	for range 3 {
		n := served.Load()
		waitFor(t, "spends served", func() bool { return served.Load() > n+50 })
		p.setDrop(true)
		time.Sleep(300 * time.Millisecond) // spends commit, answers vanish, timeouts fire
		p.cut()
		p.setDrop(false)
	}
	n := served.Load()
	waitFor(t, "spends served after the faults", func() bool { return served.Load() > n+50 })
	stop()
	wg.Wait()
	waitFor(t, "cancellations done", func() bool { return s.cancels.len() == 0 })

	reversed := 0
	for _, e := range entries(t, s, "acct") {
		if e.Kind == "refund" {
			reversed++
		}
	}
	res, err := s.Spend(context.Background(), "acct", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("served %d, failed %d, debits reversed by cancellation %d", served.Load(), failed.Load(), reversed)
	if failed.Load() == 0 {
		t.Fatal("no spend failed: the faults did not happen")
	}
	if charged := balance - res.Balance; charged != served.Load()*cost {
		t.Errorf("charged %d credits for %d spends served at %d: want %d", charged, served.Load(), cost, served.Load()*cost)
	}
	checkLedger(t, s, "acct", res.Balance)
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTimeoutBoundsQueries checks that a stalled database makes Spend fail
// within the Store's Timeout, with an error wrapping
// context.DeadlineExceeded, and that the stalled spend is then cancelled.
func TestTimeoutBoundsQueries(t *testing.T) {
	pool := newPool(t, nil)
	schema := newSchema(t, pool)
	s := newStore(t, pool, Options{Schema: schema, Timeout: 100 * time.Millisecond})
	putAccount(t, s, "acct", 10)
	setStall(t, pool, schema, true)
	start := time.Now()
	_, err := s.Spend(store.WithOperation(context.Background(), store.Operation{ID: "stalled"}), "acct", 1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Spend on a stalled database: %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Spend took %v with a timeout of 100ms", d)
	}
	setStall(t, pool, schema, false)
	waitFor(t, "cancellation", func() bool { return s.cancels.len() == 0 })
	// The operation is cancelled: a late arrival of the same spend is refused.
	_, err = s.Spend(store.WithOperation(context.Background(), store.Operation{ID: "stalled"}), "acct", 1)
	if !errors.Is(err, errCancelled) {
		t.Errorf("spend of a cancelled operation: %v, want errCancelled", err)
	}
	checkLedger(t, s, "acct", 10)
}

// setStall makes the database clock of schema sleep for ten seconds, or
// restores it.
func setStall(t testing.TB, pool *pgxpool.Pool, schema string, stall bool) {
	t.Helper()
	body := "SELECT now()"
	if stall {
		body = "SELECT now() FROM pg_sleep(10)"
	}
	q := "CREATE OR REPLACE FUNCTION " + pgx.Identifier{schema}.Sanitize() +
		".clock() RETURNS timestamptz LANGUAGE sql VOLATILE AS $$ " + body + " $$"
	if _, err := pool.Exec(context.Background(), q); err != nil {
		t.Fatal(err)
	}
}
