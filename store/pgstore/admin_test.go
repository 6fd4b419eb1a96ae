package pgstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go402/go402/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// queryCounter is a pgx tracer counting the queries sent: with the
// statements cached per connection, one query is one round trip.
type queryCounter struct{ n atomic.Int64 }

func (c *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func TestRoundTrips(t *testing.T) {
	var qc queryCounter
	pool := newPool(t, func(c *pgxpool.Config) { c.ConnConfig.Tracer = &qc })
	schema := newSchema(t, pool)
	d := seedKey(t, newStore(t, newPool(t, nil), Options{Schema: schema}), "acct", "sk_test_round_trips")
	s := newStore(t, pool, Options{Schema: schema}) // listening after the seed: no notification to come
	waitListening(t, s)
	lookup(t, s, d)
	for _, c := range []struct {
		name string
		do   func() error
		want int64
	}{
		{"cached Lookup", func() error { _, _, err := s.Lookup(context.Background(), d); return err }, 0},
		{"Spend with its ledger entry", func() error { _, err := s.Spend(context.Background(), "acct", 1); return err }, 1},
		{"Refund", func() error { _, err := s.Refund(context.Background(), "acct", 1); return err }, 1},
		{"TopUp", func() error { _, err := s.TopUp(context.Background(), "acct", 1); return err }, 1},
	} {
		before := qc.n.Load()
		if err := c.do(); err != nil {
			t.Fatal(err)
		}
		if got := qc.n.Load() - before; got != c.want {
			t.Errorf("%s: %d round trips, want %d", c.name, got, c.want)
		}
	}
}

func TestAccountRoundTrip(t *testing.T) {
	pool := newPool(t, nil)
	s := newStore(t, pool, Options{Schema: newSchema(t, pool)})
	anchor := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	want := store.Account{
		ID: "acct", Plan: "pro", Status: store.StatusTrialing, PeriodEnd: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC),
		Features: []string{"reports", "export"}, Balance: 42,
		Refill:     &store.Refill{Amount: 10, Every: time.Hour, Anchor: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)},
		RateLimit:  &store.RateLimit{Rate: 2.5, Burst: 5},
		Metadata:   map[string]string{"stripe_customer": "cus_1"},
		RefilledAt: anchor,
	}
	if err := s.PutAccount(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Account(context.Background(), "acct")
	if err != nil {
		t.Fatal(err)
	}
	got.PeriodEnd, got.Refill.Anchor, got.RefilledAt = got.PeriodEnd.UTC(), got.Refill.Anchor.UTC(), got.RefilledAt.UTC()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Account = %+v\nwant      %+v", got, want)
	}
	if _, err := s.Account(context.Background(), "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Account(unknown) = %v, want ErrNotFound", err)
	}
	bad := want
	bad.Refill = &store.Refill{Amount: 1, Every: time.Nanosecond, Anchor: anchor}
	if err := s.PutAccount(context.Background(), bad); err == nil {
		t.Error("PutAccount with a refill period of 1ns succeeded; the database keeps microseconds")
	}
}

// TestUpdateAccountLosesNoSpend updates an account while spends run: every
// debit and the update's own change of balance must survive, as the ledger
// shows.
func TestUpdateAccountLosesNoSpend(t *testing.T) {
	a, b := twoStores(t, Options{})
	putAccount(t, a, "acct", 1000)
	var wg sync.WaitGroup
	var spent atomic.Int64
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res, err := b.Spend(context.Background(), "acct", 2); err != nil || !res.OK {
				t.Errorf("Spend = %+v, %v", res, err)
				return
			}
			spent.Add(2)
		}()
	}
	for i := range 10 {
		_, err := a.UpdateAccount(context.Background(), "acct", func(acct *store.Account) error {
			acct.Balance += 10
			acct.Plan = fmt.Sprint("plan", i)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	got, err := a.Account(context.Background(), "acct")
	if err != nil {
		t.Fatal(err)
	}
	if want := 1000 + 100 - spent.Load(); got.Balance != want || got.Plan != "plan9" {
		t.Errorf("balance %d, plan %q; want %d, plan9", got.Balance, got.Plan, want)
	}
	checkLedger(t, a, "acct", got.Balance)

	errStop := errors.New("stop")
	if _, err := a.UpdateAccount(context.Background(), "acct", func(acct *store.Account) error {
		acct.Balance = 0
		return errStop
	}); !errors.Is(err, errStop) {
		t.Errorf("UpdateAccount with fn failing = %v, want fn's error", err)
	}
	if _, err := a.UpdateAccount(context.Background(), "acct", func(acct *store.Account) error {
		acct.ID = "other"
		return nil
	}); err == nil {
		t.Error("UpdateAccount changing the ID succeeded")
	}
	if again, _ := a.Account(context.Background(), "acct"); again.Balance != got.Balance {
		t.Errorf("failed updates changed the balance to %d, want %d", again.Balance, got.Balance)
	}
}

func TestAccountsAndKeys(t *testing.T) {
	pool := newPool(t, nil)
	s := newStore(t, pool, Options{Schema: newSchema(t, pool)})
	for i := range 5 {
		putAccount(t, s, fmt.Sprint("acct", i), int64(i))
	}
	page1, err := s.Accounts(context.Background(), "", 3)
	if err != nil || len(page1) != 3 || page1[2].ID != "acct2" {
		t.Fatalf("Accounts(\"\", 3) = %v, %v", page1, err)
	}
	page2, err := s.Accounts(context.Background(), page1[2].ID, 3)
	if err != nil || len(page2) != 2 || page2[0].ID != "acct3" || page2[1].Balance != 4 {
		t.Fatalf("Accounts(acct2, 3) = %v, %v", page2, err)
	}

	raw, k, err := s.CreateKey(context.Background(), "acct1", "sk_live_")
	if err != nil {
		t.Fatal(err)
	}
	if k.Digest != store.DigestOf(raw) || k.Prefix != raw[:12] {
		t.Errorf("CreateKey: key %+v does not match raw key", k)
	}
	if _, _, err := s.CreateKey(context.Background(), "nobody", "sk_"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CreateKey of an unknown account: %v, want ErrNotFound", err)
	}
	used := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	if err := s.TouchKeys(context.Background(), map[store.Digest]time.Time{k.Digest: used, {1}: used}); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchKeys(context.Background(), map[store.Digest]time.Time{k.Digest: used.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeKey(context.Background(), k.Digest); err != nil {
		t.Fatal(err)
	}
	keys, err := s.Keys(context.Background(), "acct1")
	if err != nil || len(keys) != 1 || !keys[0].Revoked || !keys[0].LastUsedAt.Equal(used) {
		t.Errorf("Keys = %+v, %v; want the key, revoked, last used at %v", keys, err, used)
	}
	if err := s.RevokeKey(context.Background(), store.Digest{2}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevokeKey(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.Keys(context.Background(), "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Keys(unknown account) = %v, want ErrNotFound", err)
	}
}

func TestEntriesByTime(t *testing.T) {
	pool := newPool(t, nil)
	schema := newSchema(t, pool)
	advance := setClock(t, pool, schema, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	s := newStore(t, pool, Options{Schema: schema})
	putAccount(t, s, "acct", 100)
	for range 4 {
		advance(time.Hour)
		if _, err := s.Spend(context.Background(), "acct", 1); err != nil {
			t.Fatal(err)
		}
	}
	from, to := time.Date(2025, 1, 1, 2, 0, 0, 0, time.UTC), time.Date(2025, 1, 1, 4, 0, 0, 0, time.UTC)
	got, err := s.Entries(context.Background(), "acct", store.LedgerQuery{From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Time.Equal(from) || got[1].Balance != 97 || got[1].Kind != "debit" {
		t.Errorf("Entries in [2:00, 4:00) = %+v, want the debits at 2:00 and 3:00", got)
	}
	if none, err := s.Entries(context.Background(), "nobody", store.LedgerQuery{}); err != nil || len(none) != 0 {
		t.Errorf("Entries(unknown account) = %v, %v; want none", none, err)
	}
}

func TestRefillInLedger(t *testing.T) {
	pool := newPool(t, nil)
	schema := newSchema(t, pool)
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	advance := setClock(t, pool, schema, start)
	s := newStore(t, pool, Options{Schema: schema})
	err := s.PutAccount(context.Background(), store.Account{ID: "acct", Balance: 5,
		Refill: &store.Refill{Amount: 10, Every: 24 * time.Hour, Anchor: start.Add(time.Hour)}, RefilledAt: start})
	if err != nil {
		t.Fatal(err)
	}
	advance(48 * time.Hour) // two boundaries passed: one refill
	res, err := s.Spend(context.Background(), "acct", 3)
	if err != nil || res.Balance != 7 || !res.NextRefill.Equal(start.Add(49*time.Hour)) {
		t.Fatalf("Spend = %+v, %v; want 7, next refill %v", res, err, start.Add(49*time.Hour))
	}
	es := entries(t, s, "acct")
	if len(es) != 3 || es[1].Kind != "refill" || es[1].Amount != 5 {
		t.Errorf("ledger %+v, want adjust, refill of 5, debit", es)
	}
	checkLedger(t, s, "acct", 7)
}

func TestNewRefusesBadOptions(t *testing.T) {
	pool := newPool(t, nil)
	for _, o := range []Options{{Timeout: -1}, {LookupCacheSize: -1}, {Schema: string(make([]byte, 64))}} {
		if _, err := New(pool, &o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	if _, err := New(nil, nil); err == nil {
		t.Error("New(nil pool) succeeded")
	}
}

func TestMigrateTwice(t *testing.T) {
	pool := newPool(t, nil)
	schema := newSchema(t, pool)
	if err := Migrate(context.Background(), pool, schema); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
}
