package limiter

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
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

func TestFusedBucket(t *testing.T) {
	clk := newClock()
	pw, _ := paywalled(t, clk, fuseAccounts...)
	fb := newFakeBuckets(clk.Now)
	errCost := errors.New("no cost")
	for _, tc := range []struct {
		name    string
		opts    Options
		account string
		want    store.Bucket
		status  int // of a refused request; 0 if ok
	}{
		{name: "defaults", opts: Options{By: ByAccount(), Store: fb}, account: "free",
			want: store.Bucket{Account: "free", Key: "default", Rate: 1, Burst: 2, Cost: 1}},
		{name: "plan, name, cost", opts: Options{Name: "api", By: ByAccount(), Store: fb, Plans: fusePlans, Cost: 2}, account: "pro",
			want: store.Bucket{Account: "pro", Key: "api", Rate: 2, Burst: 4, Cost: 2}},
		{name: "own rate, cost func", opts: Options{By: ByAccount(), Store: fb, Plans: fusePlans, CostFunc: func(*http.Request) (int, error) { return 3, nil }}, account: "own",
			want: store.Bucket{Account: "own", Key: "default", Rate: 0.5, Burst: 3, Cost: 3}},
		{name: "cost func fails", opts: Options{By: ByAccount(), Store: fb, CostFunc: func(*http.Request) (int, error) { return 0, errCost }}, account: "free", status: 400},
		{name: "negative cost", opts: Options{By: ByAccount(), Store: fb, CostFunc: func(*http.Request) (int, error) { return -1, nil }}, account: "free", status: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := mustNew(t, 1, 2, &tc.opts)
			r := authenticated(t, pw, tc.account)
			c, _ := paywall.CallerFromContext(r.Context())
			w := httptest.NewRecorder()
			b, ok := fused{l}.Bucket(w, r, &c.Account)
			if ok != (tc.status == 0) || !reflect.DeepEqual(b, tc.want) || tc.status != 0 && w.Code != tc.status {
				t.Errorf("Bucket = %+v, %v (status %d); want %+v, %d", b, ok, w.Code, tc.want, tc.status)
			}
		})
	}
	if len(fb.seen) != 0 {
		t.Errorf("Bucket took tokens: %+v", fb.seen)
	}
}

// A limiter fuses with a charge only when it keys by account and keeps its
// buckets in the charge's store.
func TestHandlerFuses(t *testing.T) {
	clk := newClock()
	pw, mem := paywalled(t, clk, fuseAccounts...)
	charge := pw.Charge(1)(okHandler)
	for _, tc := range []struct {
		name string
		opts Options
		fuse bool
	}{
		{"by account, the paywall's store", Options{By: ByAccount(), Store: mem}, true},
		{"no store", Options{By: ByAccount()}, false},
		{"another store", Options{By: ByAccount(), Store: store.NewMemory(nil)}, false},
		{"keyed by address", Options{Store: mem}, false},
		{"keyed by the account's ID, but not by ByAccount", Options{By: KeyFunc(func(*http.Request) (string, bool) { return "free", true }), Store: mem}, false},
	} {
		_, plain := mustNew(t, 1, 2, &tc.opts).Handler(charge).(*limitHandler)
		if plain == tc.fuse {
			t.Errorf("%s: fused %v, want %v", tc.name, !plain, tc.fuse)
		}
	}
}

// A ByAccount limiter without paywall.Authenticate in front is a wiring
// mistake: 500 misconfigured, not one bucket shared by every client.
func TestByAccountWithoutAuthenticate(t *testing.T) {
	l := mustNew(t, 1, 2, &Options{By: ByAccount()})
	for range 3 {
		w := serve(l.Handler(okHandler), httptest.NewRequest("GET", "/", nil))
		if w.Code != 500 || !strings.Contains(w.Body.String(), "misconfigured") {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// TestAdmitSameAsHandler answers the same requests through Handler, which
// takes its tokens itself, and through Bucket, a take by the store and
// Admit, as a fused charge does, with identical limiters and stores:
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
			viaFused := pw.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, _ := paywall.CallerFromContext(r.Context())
				b, ok := fused{la}.Bucket(w, r, &c.Account)
				if !ok {
					t.Fatal("Bucket refused an account's request")
				}
				res, err := fba.TakeTokens(r.Context(), b)
				if err != nil {
					t.Fatal(err)
				}
				if (fused{la}).Admit(w, r, b, res) {
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
						wh, wa := serve(handler, req), serve(viaFused, req)
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
