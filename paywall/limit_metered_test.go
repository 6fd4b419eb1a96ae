package paywall_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go402/go402/limiter"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

var _ store.BucketHolder = (*bucketStore)(nil)

func (s *bucketStore) Hold(ctx context.Context, id string, amount int64, lease time.Duration) (store.Hold, store.SpendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.count("Hold"); err != nil {
		return store.Hold{}, store.SpendResult{}, err
	}
	return s.Memory.Hold(ctx, id, amount, lease)
}

func (s *bucketStore) HoldWithTokens(ctx context.Context, id string, amount int64, lease time.Duration, b store.Bucket) (store.Hold, store.SpendResult, store.BucketResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.count("HoldWithTokens"); err != nil {
		return store.Hold{}, store.SpendResult{}, store.BucketResult{}, err
	}
	return s.Memory.HoldWithTokens(ctx, id, amount, lease, b)
}

func (s *bucketStore) Settle(ctx context.Context, h store.Hold, actual int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.count("Settle"); err != nil {
		return 0, err
	}
	return s.Memory.Settle(ctx, h, actual)
}

// meteredHandler reports 150 to 249 credits per request, varying, and adds
// them to *settled.
func meteredHandler(settled *atomic.Int64) http.Handler {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		actual := 150 + n.Add(1)*37%100
		paywall.MeterFrom(r.Context()).Set(actual)
		settled.Add(actual)
		w.WriteHeader(http.StatusOK)
	})
}

// TestMeteredChargeRateLimitSameAnswers runs the same requests through a
// metered charge fused with a limit and through the limiter's Handler in
// front of an unfused metered charge, on separate but identical stores:
// every response up to the first 402 — 429s included — is the same, and
// the 402 has the same status and body. The fused route makes one store
// call to hold with the limit and one to settle, and the balance loses
// exactly what the served requests reported.
func TestMeteredChargeRateLimitSameAnswers(t *testing.T) {
	fused, plain := newRateLimited(t), newRateLimited(t)
	pf, pp := fused.paywall(t, nil), plain.paywall(t, nil)
	lf := fused.limiter(t, 1, 3, limiter.Options{}, false)
	lp := plain.limiter(t, 1, 3, limiter.Options{}, false)
	opts := paywall.ChargeOptions{Cost: 250, Metered: true}
	var settledF, settledP atomic.Int64
	hf := pf.Authenticate(lf.Handler(pf.ChargeWith(opts)(meteredHandler(&settledF))))
	// A charge the limiter does not recognise: decided apart.
	hp := pp.Authenticate(lp.Handler(http.HandlerFunc(pp.ChargeWith(opts)(meteredHandler(&settledP)).ServeHTTP)))
	statuses := map[int]int{}
	served := 0
	for i, advance := range []time.Duration{0, 0, 0, 0, 300 * time.Millisecond, 700 * time.Millisecond, 0, 0, 5 * time.Second, 0, 0, 0} {
		fused.clock.Advance(advance)
		plain.clock.Advance(advance)
		before := len(fused.events.all())
		wf := serve(hf, request("POST", "/generate", keyPro, ""))
		wp := serve(hp, request("POST", "/generate", keyPro, ""))
		statuses[wf.Code]++
		if wf.Code != wp.Code || wf.Body.String() != wp.Body.String() {
			t.Fatalf("request %d: fused %d %s\nunfused %d %s", i, wf.Code, wf.Body, wp.Code, wp.Body)
		}
		if wf.Code == http.StatusPaymentRequired {
			// The unfused limit took a token for the refused request, the
			// fused one none: their RateLimit headers part here.
			if ef, ep := fused.events.all()[:before], plain.events.all()[:before]; !equalDecisions(ef, ep) {
				t.Errorf("decisions before the 402 differ:\nfused %+v\nunfused %+v", ef, ep)
			}
			break
		}
		if !equalHeaders(wf.Header(), wp.Header()) {
			t.Fatalf("request %d: fused headers %v\nunfused %v", i, wf.Header(), wp.Header())
		}
		if wf.Code == http.StatusOK {
			served++
		}
	}
	if statuses[http.StatusTooManyRequests] == 0 || statuses[http.StatusPaymentRequired] != 1 || served == 0 {
		t.Fatalf("statuses %v: want 200s, 429s and a 402", statuses)
	}
	if got, want := 1000-fused.balance(t, "acct_pro"), settledF.Load(); got != want {
		t.Errorf("fused: balance fell by %d, served requests settled %d", got, want)
	}
	if bf, bp := fused.balance(t, "acct_pro"), plain.balance(t, "acct_pro"); bf != bp {
		t.Errorf("balances %d fused, %d unfused", bf, bp)
	}
	calls := fused.s.Calls()
	if calls["Hold"]+calls["TakeTokens"]+calls["Spend"] != 0 || calls["Settle"] != served ||
		calls["HoldWithTokens"] != served+statuses[http.StatusTooManyRequests]+1 {
		t.Errorf("fused route's store calls %v: want one HoldWithTokens a request, %d Settle, nothing else", calls, served)
	}
}

func equalDecisions(a, b []paywall.Decision) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
