package pgstore

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
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
	h := pw.Authenticate(pw.Charge(cost)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))

	var served, unavailable atomic.Int64
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				r := httptest.NewRequest("POST", "/generate", nil)
				r.Header.Set("Authorization", "Bearer sk_test_outage")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				switch w.Code {
				case http.StatusOK:
					served.Add(1)
				case http.StatusServiceUnavailable:
					unavailable.Add(1)
				default:
					t.Errorf("status %d: %s", w.Code, w.Body)
				}
			}
		}()
	}
	n := served.Load()
	waitFor(t, "requests served", func() bool { return served.Load() > n+50 })
	p.setDrop(true) // the database stops answering mid-load
	time.Sleep(300 * time.Millisecond)
	p.setRefused(true)
	p.cut()
	waitFor(t, "requests refused", func() bool { return unavailable.Load() > 20 })
	p.setDrop(false)
	p.setRefused(false) // it is back
	n = served.Load()
	waitFor(t, "service to resume", func() bool { return served.Load() > n+50 })
	stop()
	wg.Wait()
	waitFor(t, "cancellations done", func() bool { return s.cancels.len() == 0 })

	res, err := s.Spend(context.Background(), "acct", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("served %d, answered 503 %d", served.Load(), unavailable.Load())
	if charged := balance - res.Balance; charged != served.Load()*cost {
		t.Errorf("charged %d credits for %d requests served at %d: want %d", charged, served.Load(), cost, served.Load()*cost)
	}
	debits := int64(0)
	for _, e := range entries(t, s, "acct") {
		if e.Kind == "debit" && e.KeyPrefix != store.NewKey("sk_test_outage", "").Prefix {
			t.Errorf("debit %+v without the key's prefix", e)
		}
		if e.Kind == "debit" {
			debits++
		}
	}
	if debits < served.Load() {
		t.Errorf("%d debits in the ledger for %d requests served", debits, served.Load())
	}
	checkLedger(t, s, "acct", res.Balance)
}
