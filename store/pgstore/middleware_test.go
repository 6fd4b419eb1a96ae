package pgstore

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
)

// TestServedEqualsDebitedWhenDatabaseStops serves a charged route through
// the paywall while the database stops answering (its answers dropped,
// then every connection cut and new ones refused) and comes back: requests
// answered 200 must be exactly those the ledger debited, requests during
// the outage answered 503, and service must resume without a restart.
func TestServedEqualsDebitedWhenDatabaseStops(t *testing.T) {
	p := newProxy(t)
	schema := newSchema(t, newPool(t, nil))
	s := newStore(t, p.pool(t), Options{Schema: schema, Timeout: 200 * time.Millisecond})
	const balance, cost = 1_000_000, 5
	seedKey(t, s, "acct", "sk_test_outage")
	if _, err := s.TopUp(context.Background(), "acct", balance-100); err != nil {
		t.Fatal(err)
	}
	pw, err := paywall.New(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := http.NewServeMux()
	h.Handle("POST /generate", pw.Authenticate(pw.Charge(cost)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))))
	l := startLoad(func(int, int) (bool, error) {
		r := httptest.NewRequest("POST", "/generate", nil)
		r.Header.Set("Authorization", "Bearer sk_test_outage")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusOK:
			return true, nil
		case http.StatusServiceUnavailable:
			return false, errors.New("503")
		}
		t.Errorf("status %d: %s", w.Code, w.Body)
		return false, nil
	})
	l.waitServed(t, 50)
	p.setDrop(true) // the database stops answering mid-load
	time.Sleep(300 * time.Millisecond)
	p.setRefused(true)
	p.cut()
	waitFor(t, "requests refused", func() bool { return l.failed.Load() > 20 })
	p.setDrop(false)
	p.setRefused(false) // it is back
	l.waitServed(t, 50)
	l.end()
	waitFor(t, "cancellations done", func() bool { return s.cancels.len() == 0 })

	t.Logf("served %d, answered 503 %d", l.served.Load(), l.failed.Load())
	for _, e := range entries(t, s, "acct") {
		if e.Kind == "debit" && (e.KeyPrefix != "sk_test_" || e.Route != "POST /generate") {
			t.Errorf("debit %+v without the key's prefix or the route", e)
		}
	}
	checkCharged(t, s, "acct", balance-l.served.Load()*cost)
}
