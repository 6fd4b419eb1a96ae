package paywall_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// ledgerStore is a memory store that says it keeps a ledger, and records
// the operation each spend and refund carried.
type ledgerStore struct {
	*store.Memory
	mu              sync.Mutex
	spends, refunds []store.Operation
	spendOK, refOK  []bool
}

func (s *ledgerStore) Spend(ctx context.Context, id string, cost int64) (store.SpendResult, error) {
	op, ok := store.OperationFrom(ctx)
	s.mu.Lock()
	s.spends, s.spendOK = append(s.spends, op), append(s.spendOK, ok)
	s.mu.Unlock()
	return s.Memory.Spend(ctx, id, cost)
}

func (s *ledgerStore) Refund(ctx context.Context, id string, amount int64) (int64, error) {
	op, ok := store.OperationFrom(ctx)
	s.mu.Lock()
	s.refunds, s.refOK = append(s.refunds, op), append(s.refOK, ok)
	s.mu.Unlock()
	return s.Memory.Refund(ctx, id, amount)
}

func (s *ledgerStore) Entries(context.Context, string, store.LedgerQuery) ([]store.LedgerEntry, error) {
	return nil, nil
}

func TestChargeCarriesOperation(t *testing.T) {
	f := newFixture(t)
	ls := &ledgerStore{Memory: f.mem}
	pw, err := paywall.New(ls, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	charge := pw.ChargeWith(paywall.ChargeOptions{Cost: 3, Refund: true})
	mux.Handle("GET /ok", charge(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})))
	mux.Handle("GET /fail", charge(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	})))
	h := pw.Authenticate(mux)
	for _, path := range []string{"/ok", "/fail", "/ok"} {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer "+keyPro)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	if len(ls.spends) != 3 || len(ls.refunds) != 1 {
		t.Fatalf("%d spends, %d refunds; want 3 and 1", len(ls.spends), len(ls.refunds))
	}
	prefix := store.NewKey(keyPro, "").Prefix
	ids := map[string]bool{}
	for i, op := range ls.spends {
		if !ls.spendOK[i] || op.ID == "" || op.KeyPrefix != prefix || op.Route != "GET /"+[]string{"ok", "fail", "ok"}[i] {
			t.Errorf("spend %d carried %+v (present %v), want an ID, route and prefix %q", i, op, ls.spendOK[i], prefix)
		}
		ids[op.ID] = true
	}
	if len(ids) != 3 {
		t.Errorf("operation IDs not unique: %v", ids)
	}
	if !ls.refOK[0] || ls.refunds[0] != ls.spends[1] {
		t.Errorf("refund carried %+v, want its spend's %+v", ls.refunds[0], ls.spends[1])
	}
}

func TestChargeWithoutLedgerCarriesNoOperation(t *testing.T) {
	f := newFixture(t)
	var got []bool
	s := &spyStore{Store: f.mem, spend: func(ctx context.Context) {
		_, ok := store.OperationFrom(ctx)
		got = append(got, ok)
	}}
	pw, err := paywall.New(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := pw.Authenticate(pw.Charge(1)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+keyPro)
	h.ServeHTTP(httptest.NewRecorder(), r)
	if len(got) != 1 || got[0] {
		t.Errorf("spends saw an operation: %v, want [false]", got)
	}
}

// spyStore calls spend with the context of every Spend.
type spyStore struct {
	store.Store
	spend func(context.Context)
}

func (s *spyStore) Spend(ctx context.Context, id string, cost int64) (store.SpendResult, error) {
	s.spend(ctx)
	return s.Store.Spend(ctx, id, cost)
}
