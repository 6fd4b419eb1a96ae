package paywall_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// metered returns the fixture's paywall with a metered charge of opts in
// front of h, recording decisions.
func (f *fixture) metered(t *testing.T, opts paywall.ChargeOptions, h http.HandlerFunc) (http.Handler, *decisions) {
	t.Helper()
	d := new(decisions)
	pw := f.paywall(t, &paywall.Options{OnDecision: d.record, IdempotencyWindow: time.Hour})
	opts.Metered = true
	return pw.Authenticate(pw.ChargeWith(opts)(h)), d
}

// reports returns a handler that reports n on its meter, then answers status.
func reports(n int64, status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		paywall.MeterFrom(r.Context()).Add(n)
		w.WriteHeader(status)
	}
}

func TestMeteredSettlesActual(t *testing.T) {
	f := newFixture(t)
	h, d := f.metered(t, paywall.ChargeOptions{Cost: 100}, func(w http.ResponseWriter, r *http.Request) {
		m := paywall.MeterFrom(r.Context())
		if got := f.balance(t, "acct_pro"); got != 900 {
			t.Errorf("balance while held: %d, want 900", got)
		}
		m.Add(20)
		m.Add(10)
		m.Add(-5) // ignored
	})
	if w := serve(h, request("GET", "/", keyPro, "")); w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if got := f.balance(t, "acct_pro"); got != 970 {
		t.Errorf("balance %d, want 970 (30 of the 100 held)", got)
	}
	var steps []string
	for _, e := range d.all()[1:] { // after authenticate's
		steps = append(steps, fmt.Sprintf("%s:%d:%d", e.Step, e.Cost, e.Balance))
	}
	if want := []string{"hold:100:900", "settle:30:970"}; fmt.Sprint(steps) != fmt.Sprint(want) {
		t.Errorf("decisions %v, want %v", steps, want)
	}
}

func TestMeteredHoldRefused(t *testing.T) {
	f := newFixture(t)
	called := false
	h, _ := f.metered(t, paywall.ChargeOptions{Cost: 1001}, func(http.ResponseWriter, *http.Request) { called = true })
	w := serve(h, request("GET", "/", keyPro, ""))
	p := decodeProblem(t, w)
	if w.Code != http.StatusPaymentRequired || p.Code != "insufficient_credits" || p.Cost != 1001 || *p.Balance != 1000 || called {
		t.Errorf("got %d %+v (handler called %v), want 402 insufficient_credits for 1001 with balance 1000", w.Code, p, called)
	}
	if got := f.balance(t, "acct_pro"); got != 1000 {
		t.Errorf("balance %d, want 1000", got)
	}
}

func TestMeteredSettlement(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     paywall.ChargeOptions
		reported int64
		status   int
		want     int64 // the balance after, from 1000
	}{
		{"capped at the hold", paywall.ChargeOptions{Cost: 50}, 80, 200, 950},
		{"overdraft", paywall.ChargeOptions{Cost: 50, Overdraft: true}, 80, 200, 920},
		{"overdraft not covered", paywall.ChargeOptions{Cost: 50, Overdraft: true}, 2000, 200, 950},
		{"minimum", paywall.ChargeOptions{Cost: 50, MinCost: 5}, 0, 200, 995},
		{"5xx without refunds", paywall.ChargeOptions{Cost: 50}, 7, 502, 993},
		{"5xx refunded", paywall.ChargeOptions{Cost: 50, Refund: true, MinCost: 5}, 7, 502, 1000},
		{"4xx with refunds", paywall.ChargeOptions{Cost: 50, Refund: true}, 7, 404, 993},
		{"nothing reported", paywall.ChargeOptions{Cost: 50}, 0, 200, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			h, _ := f.metered(t, tc.opts, reports(tc.reported, tc.status))
			serve(h, request("GET", "/", keyPro, ""))
			if got := f.balance(t, "acct_pro"); got != tc.want {
				t.Errorf("balance %d, want %d", got, tc.want)
			}
		})
	}
}

func TestMeteredPanic(t *testing.T) {
	for _, refund := range []bool{false, true} {
		f := newFixture(t)
		h, _ := f.metered(t, paywall.ChargeOptions{Cost: 50, Refund: refund}, func(_ http.ResponseWriter, r *http.Request) {
			paywall.MeterFrom(r.Context()).Set(12)
			panic("boom")
		})
		func() {
			defer func() {
				if recover() == nil {
					t.Error("the panic did not go on up")
				}
			}()
			serve(h, request("GET", "/", keyPro, ""))
		}()
		want := int64(988)
		if refund {
			want = 1000
		}
		if got := f.balance(t, "acct_pro"); got != want {
			t.Errorf("refund %v: balance %d, want %d", refund, got, want)
		}
	}
}

func TestMeteredClientHangsUp(t *testing.T) {
	f := newFixture(t)
	sent := make(chan struct{})
	h, _ := f.metered(t, paywall.ChargeOptions{Cost: 100, MinCost: 2}, func(w http.ResponseWriter, r *http.Request) {
		m := paywall.MeterFrom(r.Context())
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "data: token %d\n\n", i); err != nil {
				return
			}
			http.NewResponseController(w).Flush()
			m.Add(3)
			if i == 4 {
				close(sent)
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	r, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	r.Header.Set("X-API-Key", keyPro)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.DefaultClient.Do(r); err == nil {
			<-sent
			cancel()
			resp.Body.Close()
		}
	}()
	<-done
	srv.Close() // waits for the handler, and so the settlement
	got := 1000 - f.balance(t, "acct_pro")
	if got < 15 || got > 100 || got%3 != 0 {
		t.Errorf("charged %d, want what was reported (a multiple of 3, at least 15)", got)
	}
}

func TestMeteredLeaseEnded(t *testing.T) {
	f := newFixture(t)
	h, d := f.metered(t, paywall.ChargeOptions{Cost: 50, Lease: time.Minute}, func(_ http.ResponseWriter, r *http.Request) {
		f.clock.Advance(2 * time.Minute)
		if got := f.balance(t, "acct_pro"); got != 1000 { // a read releases the hold
			t.Errorf("balance %d after the lease, want 1000", got)
		}
		paywall.MeterFrom(r.Context()).Set(20)
	})
	serve(h, request("GET", "/", keyPro, ""))
	if got := f.balance(t, "acct_pro"); got != 980 {
		t.Errorf("balance %d, want 980: charged as a spend once the hold was released", got)
	}
	if e := d.all(); len(e) != 3 || e[2].Step != "settle" || !e[2].Allowed || e[2].Cost != 20 {
		t.Errorf("decisions %+v, want an allowed settlement of 20", e)
	}
}

func TestMeteredIdempotent(t *testing.T) {
	f := newFixture(t)
	var runs atomic.Int64
	h, _ := f.metered(t, paywall.ChargeOptions{Cost: 50}, func(_ http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		paywall.MeterFrom(r.Context()).Set(10)
	})
	for range 2 {
		r := request("POST", "/", keyPro, "")
		r.Header.Set("Idempotency-Key", "retry-me")
		serve(h, r)
	}
	if got := f.balance(t, "acct_pro"); got != 990 || runs.Load() != 2 {
		t.Errorf("balance %d after a retry (handler ran %d times), want 990: charged once", got, runs.Load())
	}
}

func TestMeteredExactUnderConcurrency(t *testing.T) {
	f := newFixture(t)
	var charged atomic.Int64
	h, d := f.metered(t, paywall.ChargeOptions{Cost: 40, MinCost: 1}, func(_ http.ResponseWriter, r *http.Request) {
		paywall.MeterFrom(r.Context()).Set(rand.Int64N(60)) // sometimes beyond the hold
	})
	var wg sync.WaitGroup
	var served atomic.Int64
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w := serve(h, request("GET", "/", keyPro, "")); w.Code == http.StatusOK {
				served.Add(1)
			}
		}()
	}
	wg.Wait()
	settles := 0
	for _, e := range d.all() {
		switch {
		case e.Step == "settle":
			settles++
			charged.Add(e.Cost)
			if e.Cost < 1 || e.Cost > 40 {
				t.Errorf("settled %d, outside [1, 40]", e.Cost)
			}
		case e.Step == "hold" && e.Allowed && e.Balance < 0:
			t.Errorf("balance %d after a hold", e.Balance)
		}
	}
	if got := 1000 - f.balance(t, "acct_pro"); got != charged.Load() || int64(settles) != served.Load() || served.Load() < 25 {
		t.Errorf("balance fell by %d, settled %d over %d settlements; %d requests served", got, charged.Load(), settles, served.Load())
	}
}

func TestMeterOutsideMeteredCharge(t *testing.T) {
	f := newFixture(t)
	pw := f.paywall(t, nil)
	var m *paywall.Meter
	h := pw.Authenticate(pw.Charge(1)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		m = paywall.MeterFrom(r.Context())
		m.Add(5) // ignored by the nil Meter
	})))
	serve(h, request("GET", "/", keyPro, ""))
	if m != nil || m.Total() != 0 || paywall.MeterFrom(context.Background()) != nil {
		t.Errorf("MeterFrom outside a metered charge = %v", m)
	}
}

func TestMeteredNeedsHolder(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		s    store.Store
		opts paywall.ChargeOptions
	}{
		{"no Holder", struct{ store.Store }{f.mem}, paywall.ChargeOptions{Cost: 1, Metered: true}},
		{"negative MinCost", f.mem, paywall.ChargeOptions{Cost: 1, Metered: true, MinCost: -1}},
		{"negative Lease", f.mem, paywall.ChargeOptions{Cost: 1, Metered: true, Lease: -time.Second}},
	} {
		pw := newPaywall(t, tc.s, f.clock, nil)
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: ChargeWith did not panic", tc.name)
				}
			}()
			pw.ChargeWith(tc.opts)
		}()
	}
}
