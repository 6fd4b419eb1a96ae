package paywall_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

const keyCapped = "sk_test_capped_0123456789abcdef"

// cappedFixture adds an account with a balance of 1000, a daily spend cap
// of 25 and a threshold at 80% of the cap and one at a balance of 985.
func cappedFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	a := store.Account{ID: "acct_capped", Plan: "pro", Balance: 1000,
		SpendCap: &store.SpendCap{Limit: 25, Period: store.PeriodDay},
		Thresholds: []store.Threshold{
			{Kind: store.ThresholdCapPercent, Value: 80},
			{Kind: store.ThresholdBalance, Value: 985},
		}}
	if err := f.mem.PutAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if err := f.mem.PutKey(context.Background(), store.NewKey(keyCapped, "acct_capped")); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestSpendCapReached checks the 402 of a charge the spend cap refuses:
// its problem members, Retry-After and that nothing was debited.
func TestSpendCapReached(t *testing.T) {
	f := cappedFixture(t)
	p := f.paywall(t, &paywall.Options{UpgradeURL: "https://example.com/upgrade"})
	h := p.Authenticate(p.Charge(10)(ok))
	for i := range 2 {
		if w := serve(h, request("GET", "/", keyCapped, "")); w.Code != 200 {
			t.Fatalf("charge %d: status %d, body %s", i, w.Code, w.Body)
		}
	}
	w := serve(h, request("GET", "/", keyCapped, ""))
	if w.Code != http.StatusPaymentRequired {
		t.Fatalf("status %d, want 402; body %s", w.Code, w.Body)
	}
	pb := decodeProblem(t, w)
	var ext struct {
		ResetAt string `json:"reset_at"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &ext); err != nil {
		t.Fatal(err)
	}
	reset := time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)
	if pb.Code != "spend_cap_reached" || pb.Type != "https://go402.dev/problems/spend_cap_reached" ||
		pb.Title != "Spend cap reached" || pb.Cost != 10 || pb.Balance == nil || *pb.Balance != 980 ||
		pb.UpgradeURL != "https://example.com/upgrade" {
		t.Errorf("problem = %+v", pb)
	}
	if ext.ResetAt != reset.Format(time.RFC3339) {
		t.Errorf("reset_at = %q, want %s", ext.ResetAt, reset.Format(time.RFC3339))
	}
	wantRetry := int64(reset.Sub(t0) / time.Second)
	if got := w.Header().Get("Retry-After"); got != "43200" || pb.RetryAfter != wantRetry {
		t.Errorf("Retry-After %q, retry_after %d, want 43200", got, pb.RetryAfter)
	}
	if b := f.balance(t, "acct_capped"); b != 980 {
		t.Errorf("balance %d after the refusal, want 980", b)
	}
	f.clock.Advance(12 * time.Hour)
	if w := serve(h, request("GET", "/", keyCapped, "")); w.Code != 200 {
		t.Errorf("next day: status %d, body %s", w.Code, w.Body)
	}
}

// TestOnThreshold checks that OnThreshold hears each crossed threshold
// once, also from concurrent charges, and again in the next period.
func TestOnThreshold(t *testing.T) {
	f := cappedFixture(t)
	var mu sync.Mutex
	got := map[store.ThresholdKind]int{}
	p := f.paywall(t, &paywall.Options{OnThreshold: func(_ context.Context, th store.Threshold) {
		mu.Lock()
		defer mu.Unlock()
		got[th.Kind]++
	}})
	h := p.Authenticate(p.Charge(1)(ok))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 { // 32 charges of 1: 25 pass the cap
				serve(h, request("GET", "/", keyCapped, ""))
			}
		}()
	}
	wg.Wait()
	want := map[store.ThresholdKind]int{store.ThresholdCapPercent: 1, store.ThresholdBalance: 1}
	mu.Lock()
	if got[store.ThresholdCapPercent] != 1 || got[store.ThresholdBalance] != 1 {
		t.Errorf("OnThreshold calls %v, want %v", got, want)
	}
	mu.Unlock()
	if b := f.balance(t, "acct_capped"); b != 975 {
		t.Errorf("balance %d, want 975", b)
	}
	f.clock.Advance(12 * time.Hour)
	for range 20 {
		serve(h, request("GET", "/", keyCapped, ""))
	}
	mu.Lock()
	defer mu.Unlock()
	if got[store.ThresholdCapPercent] != 2 || got[store.ThresholdBalance] != 1 {
		t.Errorf("after the next day's charges OnThreshold calls %v, want cap_percent 2, balance 1", got)
	}
}

// TestMeteredSpendCap checks that a metered charge's hold counts against
// the spend cap: OnThreshold hears the thresholds the hold crosses, a hold
// that would cross the cap is answered 402 spend_cap_reached, and the part
// a settlement releases gives room back.
func TestMeteredSpendCap(t *testing.T) {
	f := cappedFixture(t)
	var (
		mu  sync.Mutex
		got []store.ThresholdKind
	)
	p := f.paywall(t, &paywall.Options{OnThreshold: func(_ context.Context, th store.Threshold) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, th.Kind)
	}})
	var actual int64 = 10
	called := 0
	h := p.Authenticate(p.ChargeWith(paywall.ChargeOptions{Cost: 10, Metered: true})(
		http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			called++
			paywall.MeterFrom(r.Context()).Add(actual)
		})))
	for i := range 2 { // holds of 10 settled at 10: the cap's 25 allows 20
		if w := serve(h, request("GET", "/", keyCapped, "")); w.Code != 200 {
			t.Fatalf("request %d: status %d, body %s", i, w.Code, w.Body)
		}
	}
	mu.Lock()
	if want := []store.ThresholdKind{store.ThresholdCapPercent, store.ThresholdBalance}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("OnThreshold calls %v, want %v", got, want)
	}
	mu.Unlock()
	w := serve(h, request("GET", "/", keyCapped, ""))
	pb := decodeProblem(t, w)
	if w.Code != http.StatusPaymentRequired || pb.Code != "spend_cap_reached" || pb.Cost != 10 ||
		pb.Balance == nil || *pb.Balance != 980 || called != 2 {
		t.Errorf("third request: %d %+v (handler called %d times), want 402 spend_cap_reached", w.Code, pb, called)
	}
	if b := f.balance(t, "acct_capped"); b != 980 {
		t.Errorf("balance %d after the refusal, want 980", b)
	}
	// Give room back: a refund of 10 leaves 15 of the cap; a hold of 10
	// settled at 2 leaves 8 of the 10 held to the cap, so another fits.
	if _, err := f.mem.Refund(context.Background(), "acct_capped", 10); err != nil {
		t.Fatal(err)
	}
	actual = 2
	for i := range 2 {
		if w := serve(h, request("GET", "/", keyCapped, "")); w.Code != 200 {
			t.Fatalf("after the refund, request %d: status %d, body %s", i, w.Code, w.Body)
		}
	}
	if b := f.balance(t, "acct_capped"); b != 986 {
		t.Errorf("balance %d, want 986", b)
	}
}
