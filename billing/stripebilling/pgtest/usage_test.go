package pgtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go402/go402/billing/stripebilling"
	"github.com/go402/go402/billing/stripebilling/internal/stripemock"
	"github.com/go402/go402/store"
	"github.com/go402/go402/store/pgstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// newStore returns a pgstore.Store in a schema of its own, dropped when
// the test ends. Without PostgreSQL (POSTGRES_URL) the test skips, or
// fails under CI.
func newStore(t *testing.T) *pgstore.Store {
	t.Helper()
	url := os.Getenv("POSTGRES_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, url)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL at %s: %v", url, err)
		}
		t.Skipf("PostgreSQL at %s: %v", url, err)
	}
	t.Cleanup(pool.Close)
	schema := "go402test_" + strings.ToLower(rand.Text()[:12])
	if err := pgstore.Migrate(ctx, pool, schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	s, err := pgstore.New(pool, &pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// spendAndRefund gives s account acct and debits 5 credits from it under
// each of 60 operations, refunding every tenth in full and some others in
// part. It returns the usage to bill: identifier → value.
func spendAndRefund(t *testing.T, s *pgstore.Store) map[string]string {
	t.Helper()
	ctx := context.Background()
	if err := s.PutAccount(ctx, store.Account{ID: "acct", Balance: 10_000}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := range 60 {
		op := fmt.Sprintf("op-%03d", i)
		octx := store.WithOperation(ctx, store.Operation{ID: op})
		if r, err := s.Spend(octx, "acct", 5); err != nil || !r.OK {
			t.Fatalf("spend: %+v %v", r, err)
		}
		var refund int64
		switch {
		case i%10 == 9:
			refund = 5 // a failed request: never billed
		case i%7 == 3:
			refund = 2
		}
		if refund > 0 {
			if _, err := s.Refund(octx, "acct", refund); err != nil {
				t.Fatal(err)
			}
		}
		if refund < 5 {
			want[op] = fmt.Sprint(5 - refund)
		}
	}
	return want
}

// acceptedOnce checks that mock accepted the identifiers of want, and no
// others, each once with its value.
func acceptedOnce(t *testing.T, mock *stripemock.Mock, want map[string]string) {
	t.Helper()
	got := mock.Events()
	for id, n := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("identifier %s sent, want none", id)
		} else if n != 1 || mock.Value(id) != want[id] {
			t.Errorf("identifier %s accepted %d times with value %s, want once with %s", id, n, mock.Value(id), want[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d identifiers accepted, want %d", len(got), len(want))
	}
}

// Debits made through pgstore reach stripe-mock exactly once each, net of
// their refunds, across a reporter stopped mid-batch and a new one started
// on the same ledger; a refund after the report cancels the event and
// reports the net as "<op>~1".
func TestUsageFromPostgresAcrossCrashAndRestart(t *testing.T) {
	s := newStore(t)
	mock := stripemock.Start(t)
	ctx := context.Background()
	want := spendAndRefund(t, s)
	lease := 500 * time.Millisecond
	outbox := func() *pgstore.UsageOutbox {
		o, err := s.UsageOutbox(&pgstore.UsageOptions{Settle: time.Nanosecond, Lease: lease})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	reporter := func(o stripebilling.Outbox) *stripebilling.Reporter {
		r, err := stripebilling.NewReporter(stripemock.Client(mock.URL), o, stripebilling.ReporterOptions{EventName: "api_requests",
			BatchSize: 7, Customer: func(context.Context, string) (string, error) { return "cus_1", nil }})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	// The first reporter dies mid-batch, at its 21st meter event: 20 are
	// accepted, the 21st never reaches stripe-mock, and the rest of its
	// batch stays leased to it.
	dying, die := context.WithCancel(ctx)
	mock.Before = func(n int) bool {
		if n == 21 {
			die()
			return false
		}
		return true
	}
	if sent, err := reporter(outbox()).Flush(dying); !errors.Is(err, context.Canceled) || sent != 20 {
		t.Fatalf("first reporter: sent %d, %v; want 20 and context.Canceled", sent, err)
	}
	mock.Before = nil
	time.Sleep(lease + 100*time.Millisecond) // its leases lapse
	if _, err := reporter(outbox()).Flush(ctx); err != nil {
		t.Fatalf("restarted reporter: %v", err)
	}
	acceptedOnce(t, mock, want)

	// A refund after the report corrects it.
	if _, err := s.Refund(store.WithOperation(ctx, store.Operation{ID: "op-000"}), "acct", 1); err != nil {
		t.Fatal(err)
	}
	if n, err := reporter(outbox()).Flush(ctx); err != nil || n != 1 {
		t.Fatalf("correction: sent %d, %v; want 1", n, err)
	}
	if c := mock.Cancellations(); c["op-000"] != 1 || len(c) != 1 || mock.Value("op-000~1") != "4" {
		t.Errorf("cancellations %v, op-000~1 = %q; want op-000 cancelled and 4 reported", c, mock.Value("op-000~1"))
	}
}
