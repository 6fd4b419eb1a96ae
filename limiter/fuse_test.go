package limiter

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// fuseAccounts are the accounts of the fused-decision tests: one on the
// limiter's defaults, one on a plan, one with its own rate.
var fuseAccounts = []store.Account{
	{ID: "free", Plan: "free"},
	{ID: "pro", Plan: "pro"},
	{ID: "own", Plan: "pro", RateLimit: &store.RateLimit{Rate: 0.5, Burst: 3}},
}

var fusePlans = map[string]store.RateLimit{"pro": {Rate: 2, Burst: 4}}

// authenticated returns a request of account id that has passed pw's
// Authenticate, so that it carries the account as its Caller.
func authenticated(t *testing.T, pw *paywall.Paywall, id string) *http.Request {
	t.Helper()
	var out *http.Request
	pw.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { out = r })).
		ServeHTTP(httptest.NewRecorder(), keyRequest("sk_test_"+id))
	if out == nil {
		t.Fatalf("account %q not authenticated", id)
	}
	return out
}

func TestAccountBucket(t *testing.T) {
	clk := newClock()
	pw, _ := paywalled(t, clk, fuseAccounts...)
	fb := newFakeBuckets(clk.Now)
	errCost := errors.New("no cost")
	for _, tc := range []struct {
		name    string
		opts    Options
		account string // "" for a request without a caller
		want    store.Bucket
		ok      bool
	}{
		{name: "defaults", opts: Options{By: ByAccount(), Store: fb}, account: "free",
			want: store.Bucket{Account: "free", Key: "default", Rate: 1, Burst: 2, Cost: 1}, ok: true},
		{name: "plan, name, cost", opts: Options{Name: "api", By: ByAccount(), Store: fb, Plans: fusePlans, Cost: 2}, account: "pro",
			want: store.Bucket{Account: "pro", Key: "api", Rate: 2, Burst: 4, Cost: 2}, ok: true},
		{name: "own rate, cost func", opts: Options{By: ByAccount(), Store: fb, Plans: fusePlans, CostFunc: func(*http.Request) (int, error) { return 3, nil }}, account: "own",
			want: store.Bucket{Account: "own", Key: "default", Rate: 0.5, Burst: 3, Cost: 3}, ok: true},
		{name: "no store", opts: Options{By: ByAccount()}, account: "free"},
		{name: "no caller", opts: Options{By: ByAccount(), Store: fb}},
		{name: "keyed by address", opts: Options{Store: fb}, account: "free"},
		{name: "keyed by the account's ID, but not by ByAccount", opts: Options{By: func(*http.Request) (string, bool) { return "free", true }, Store: fb}, account: "free"},
		{name: "cost func fails", opts: Options{By: ByAccount(), Store: fb, CostFunc: func(*http.Request) (int, error) { return 0, errCost }}, account: "free"},
		{name: "negative cost", opts: Options{By: ByAccount(), Store: fb, CostFunc: func(*http.Request) (int, error) { return -1, nil }}, account: "free"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := mustNew(t, 1, 2, &tc.opts)
			r := httptest.NewRequest("GET", "/", nil)
			if tc.account != "" {
				r = authenticated(t, pw, tc.account)
			}
			b, ok := l.AccountBucket(r)
			if ok != tc.ok || b != tc.want {
				t.Errorf("AccountBucket = %+v, %v; want %+v, %v", b, ok, tc.want, tc.ok)
			}
		})
	}
	if len(fb.seen) != 0 {
		t.Errorf("AccountBucket took tokens: %+v", fb.seen)
	}
}

// TestAdmitSameAsHandler answers the same requests through Handler, which
// takes its tokens itself, and through AccountBucket, a take by the store
// and Admit, as a fused charge does, with identical limiters and stores:
// every response and every decision must be the same.
func TestAdmitSameAsHandler(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{name: "defaults"},
		{name: "plans", opts: Options{Plans: fusePlans}},
		{name: "legacy headers", opts: Options{LegacyHeaders: true, Plans: fusePlans}},
		{name: "deny status and name", opts: Options{DenyStatus: http.StatusPaymentRequired, Name: "per-account"}},
		{name: "cost func", opts: Options{CostFunc: func(*http.Request) (int, error) { return 2, nil }, Plans: fusePlans}},
		{name: "cost above burst", opts: Options{CostFunc: func(*http.Request) (int, error) { return 3, nil }}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			pw, _ := paywalled(t, clk, fuseAccounts...)
			type recorded struct {
				mu     sync.Mutex
				events []paywall.Decision
			}
			var viaHandler, viaAdmit recorded
			limiterFor := func(rec *recorded) (*Limiter, *fakeBuckets) {
				fb := newFakeBuckets(clk.Now)
				o := tc.opts
				o.By, o.Store, o.Clock = ByAccount(), fb, clk.Now
				o.OnDecision = func(_ context.Context, d paywall.Decision) {
					rec.mu.Lock()
					rec.events = append(rec.events, d)
					rec.mu.Unlock()
				}
				return mustNew(t, 1, 2, &o), fb
			}
			lh, _ := limiterFor(&viaHandler)
			la, fba := limiterFor(&viaAdmit)
			handler := pw.Authenticate(lh.Handler(okHandler))
			fused := pw.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, ok := la.AccountBucket(r)
				if !ok {
					t.Fatal("AccountBucket refused an account's request")
				}
				res, err := fba.TakeTokens(r.Context(), b)
				if err != nil {
					t.Fatal(err)
				}
				if la.Admit(w, r, b, res) {
					okHandler.ServeHTTP(w, r)
				}
			}))
			for i, advance := range []time.Duration{0, 0, 0, 0, 250 * time.Millisecond, 750 * time.Millisecond, 0, 0, 3 * time.Second, 0} {
				clk.Advance(advance)
				for _, a := range fuseAccounts {
					for _, accept := range []string{"", "text/html"} {
						req := keyRequest("sk_test_" + a.ID)
						if accept != "" {
							req.Header.Set("Accept", accept)
						}
						wh, wa := serve(handler, req), serve(fused, req)
						if wh.Code != wa.Code || wh.Body.String() != wa.Body.String() ||
							!maps.EqualFunc(wh.Header(), wa.Header(), slices.Equal) {
							t.Fatalf("request %d of %q:\nHandler %d %v %s\nAdmit   %d %v %s",
								i, a.ID, wh.Code, wh.Header(), wh.Body, wa.Code, wa.Header(), wa.Body)
						}
					}
				}
			}
			if !slices.Equal(viaHandler.events, viaAdmit.events) {
				t.Errorf("decisions differ:\nHandler %+v\nAdmit   %+v", viaHandler.events, viaAdmit.events)
			}
			if len(viaHandler.events) == 0 {
				t.Error("no decisions reported")
			}
		})
	}
}

// A request this Limiter has already decided — as Handler further out, or
// as the RateLimit of a fused charge — passes its Handler without taking
// tokens again.
func TestHandlerClaimsOnce(t *testing.T) {
	clk := newClock()
	pw, _ := paywalled(t, clk, fuseAccounts...)
	fb := newFakeBuckets(clk.Now)
	l := mustNew(t, 1, 2, &Options{By: ByAccount(), Store: fb, Clock: clk.Now})
	other := mustNew(t, 1, 2, &Options{Name: "other", By: ByAccount(), Store: fb, Clock: clk.Now})
	h := pw.Authenticate(l.Handler(other.Handler(l.Handler(okHandler))))
	for i, want := range []int{200, 200, 429} {
		if w := serve(h, keyRequest("sk_test_free")); w.Code != want {
			t.Fatalf("request %d: %d, want %d", i, w.Code, want)
		}
	}
	var keys []string
	for _, b := range fb.seen {
		keys = append(keys, b.Key)
	}
	// Each limiter takes once per request; the third request stops at l.
	if want := []string{"default", "other", "default", "other", "default"}; !slices.Equal(keys, want) {
		t.Errorf("buckets taken from %v, want %v", keys, want)
	}
}
