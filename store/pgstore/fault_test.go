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
	schema := newSchema(t, newPool(t, nil))
	s := newStore(t, p.pool(t), Options{Schema: schema, Timeout: 200 * time.Millisecond})
	const balance, cost = 1_000_000, 3
	putAccount(t, s, "acct", balance)
	l := startLoad(func(w, i int) (bool, error) {
		op := store.WithOperation(context.Background(), store.Operation{ID: fmt.Sprintf("w%d-%d", w, i)})
		res, err := s.Spend(op, "acct", cost)
		if err == nil && !res.OK {
			t.Errorf("spend refused at balance %d", res.Balance)
		}
		return res.OK, err
	})
	for range 3 {
		l.waitServed(t, 50)
		p.setDrop(true)
		time.Sleep(300 * time.Millisecond) // spends commit, answers vanish, timeouts fire
		p.cut()
		p.setDrop(false)
	}
	l.waitServed(t, 50)
	l.end()
	waitFor(t, "cancellations done", func() bool { return s.cancels.len() == 0 })

	reversed := 0
	for _, e := range entries(t, s, "acct") {
		if e.Kind == "refund" {
			reversed++
		}
	}
	t.Logf("served %d, failed %d, debits reversed by cancellation %d", l.served.Load(), l.failed.Load(), reversed)
	if l.failed.Load() == 0 {
		t.Fatal("no spend failed: the faults did not happen")
	}
	checkCharged(t, s, "acct", balance-l.served.Load()*cost)
}

// checkCharged checks the balance of account id, and that it is the sum of
// its ledger.
func checkCharged(t *testing.T, s *Store, id string, want int64) {
	t.Helper()
	res, err := s.Spend(context.Background(), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Balance != want {
		t.Errorf("balance %d after the load, want %d: %d credits charged for requests not served",
			res.Balance, want, want-res.Balance)
	}
	checkLedger(t, s, id, res.Balance)
}

// load runs a function from 8 goroutines until ended, counting its
// successes and failures.
type load struct {
	served, failed atomic.Int64
	stop           context.CancelFunc
	wg             sync.WaitGroup
}

// startLoad starts calling fn(worker, iteration) until l.end.
func startLoad(fn func(w, i int) (bool, error)) *load {
	ctx, stop := context.WithCancel(context.Background())
	l := &load{stop: stop}
	for w := range 8 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				ok, err := fn(w, i)
				switch {
				case err != nil:
					l.failed.Add(1)
				case ok:
					l.served.Add(1)
				}
			}
		}()
	}
	return l
}

// waitServed waits until n more calls succeeded.
func (l *load) waitServed(t testing.TB, n int64) {
	t.Helper()
	from := l.served.Load()
	waitFor(t, "calls served", func() bool { return l.served.Load() >= from+n })
}

// end stops the load and waits for it.
func (l *load) end() {
	l.stop()
	l.wg.Wait()
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
