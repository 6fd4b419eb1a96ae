package limiter

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// A shadow limiter refuses nothing: every request reaches the handler,
// with the would-be state in RateLimit-Shadow and RateLimit-Policy-Shadow
// (no RateLimit headers), and every decision is reported marked Shadow,
// those it would have refused with Allowed false and their code — also
// with several windows, and when the cost cannot be computed.
func TestShadow(t *testing.T) {
	var mu sync.Mutex
	var got []paywall.Decision
	record := func(_ context.Context, d paywall.Decision) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, d)
	}
	clk := newClock()
	l := mustNew(t, 1e-9, 2, &Options{By: KeyFunc(oneKey), Clock: clk.Now, Shadow: true, OnDecision: record,
		Windows: []store.Window{{Name: "daily", Burst: 3, Period: store.PeriodDay}},
		CostFunc: func(r *http.Request) (int, error) {
			if r.Header.Get("Bad") != "" {
				return 0, errors.New("bad cost")
			}
			return 1, nil
		}})
	h := l.Handler(okHandler)
	wantR := []string{
		`"default";r=1;t=1000000000, "daily";r=2;t=86400`,
		`"default";r=0;t=1000000000, "daily";r=1;t=86400`,
		`"default";r=0;t=1000000000, "daily";r=1;t=86400`,
	}
	for i, want := range wantR {
		w := serve(h, keyRequest(""))
		if w.Code != http.StatusOK || w.Header().Get("RateLimit") != "" || w.Header().Get("RateLimit-Policy") != "" {
			t.Fatalf("request %d: %d, headers %v; want 200 without RateLimit headers", i, w.Code, w.Header())
		}
		if r := w.Header().Get("RateLimit-Shadow"); r != want {
			t.Errorf("request %d: RateLimit-Shadow %q, want %q", i, r, want)
		}
		if p := w.Header().Get("RateLimit-Policy-Shadow"); p != `"default";q=2;w=2000000000, "daily";q=3;w=86400` {
			t.Errorf("request %d: RateLimit-Policy-Shadow %q", i, p)
		}
	}
	bad := keyRequest("")
	bad.Header.Set("Bad", "1")
	if w := serve(h, bad); w.Code != http.StatusOK {
		t.Errorf("a request whose cost fails: %d, want 200", w.Code)
	}
	want := []struct {
		allowed bool
		code    paywall.Code
	}{{true, ""}, {true, ""}, {false, paywall.CodeRateLimited}, {false, paywall.CodeInvalidRequest}}
	if len(got) != len(want) {
		t.Fatalf("%d decisions, want %d", len(got), len(want))
	}
	for i, w := range want {
		if d := got[i]; !d.Shadow || d.Allowed != w.allowed || d.Code != w.code {
			t.Errorf("decision %d: %+v, want Shadow, Allowed %v, Code %q", i, d, w.allowed, w.code)
		}
	}
}

// A shadow limiter by account in the charge's store does not fuse: the
// charge debits every request, though the limiter would refuse some.
func TestShadowDoesNotFuse(t *testing.T) {
	clk := newClock()
	pw, m := paywalled(t, clk, store.Account{ID: "a", Balance: 10})
	l := mustNew(t, 1e-9, 1, &Options{By: ByAccount(), Store: m, Clock: clk.Now, Shadow: true})
	h := pw.Authenticate(l.Handler(pw.Charge(1)(okHandler)))
	for i := range 3 {
		if w := serve(h, keyRequest("sk_test_a")); w.Code != http.StatusOK {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	if a, _ := m.Account(context.Background(), "a"); a.Balance != 7 {
		t.Errorf("balance %d, want 7", a.Balance)
	}
}
