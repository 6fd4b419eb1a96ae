package paywall_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/go402/go402/limiter"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// shadowFixture is newFixture with more accounts: one with no credits, one
// past due in its grace and one lapsed with a billing reason.
func shadowFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	ctx := context.Background()
	for _, a := range []store.Account{
		{ID: "acct_broke", Plan: "pro", Features: []string{"reports"}},
		{ID: "acct_grace", Plan: "pro", Features: []string{"reports"}, Status: store.StatusPastDue, GraceUntil: t0.Add(time.Hour), Balance: 500},
		{ID: "acct_declined", Plan: "pro", Features: []string{"reports"}, Status: store.StatusPastDue, Lapse: store.LapseCardDeclined, Balance: 500},
		{ID: "acct_capped", Plan: "pro", Features: []string{"reports"}, Balance: 500, SpendCap: &store.SpendCap{Limit: 150, Period: store.PeriodDay, Spent: 100, Start: t0.Truncate(24 * time.Hour)}},
	} {
		if err := f.mem.PutAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := f.mem.PutKey(ctx, store.NewKey("sk_test_"+a.ID[5:]+"_0123456789abcdef", a.ID)); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// A shadow paywall serves every request, names the refusal an enforcing
// one would have made in Paywall-Shadow (and nothing of it in the
// response), reports every decision marked Shadow, and debits and holds
// nothing — also for the requests it would have let through, whose metered
// settlement it reports.
func TestShadowReportsWhatItWouldRefuse(t *testing.T) {
	f := shadowFixture(t)
	var got decisions
	pw := f.paywall(t, &paywall.Options{Shadow: true, OnDecision: got.record, IdempotencyWindow: time.Minute,
		Status: map[paywall.Code]int{paywall.CodeKeyExpired: http.StatusForbidden}})
	var served, callers int
	var meter *paywall.Meter
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served++
		if _, ok := paywall.CallerFromContext(r.Context()); ok {
			callers++
		}
		meter = paywall.MeterFrom(r.Context())
		meter.Add(7)
		w.WriteHeader(http.StatusTeapot)
	})
	req := paywall.Requirement{Plans: []string{"pro", "starter"}, Features: []string{"reports"}}
	costFunc := func(r *http.Request) (int64, error) {
		return strconv.ParseInt(r.URL.Query().Get("max"), 10, 64)
	}
	fixed := pw.Authenticate(pw.Require(req)(pw.Charge(100)(handler)))
	metered := pw.Authenticate(pw.Require(req)(pw.ChargeWith(paywall.ChargeOptions{Metered: true, CostFunc: costFunc})(handler)))
	tests := []struct {
		name    string
		h       http.Handler
		key     string
		query   string
		header  [2]string
		want    string // Paywall-Shadow; empty if admitted
		caller  bool
		overdue bool
	}{
		{"admitted", fixed, keyPro, "", [2]string{}, "", true, false},
		{"no key", fixed, "", "", [2]string{}, `"missing_key";status=401;step="authenticate"`, false, false},
		{"malformed key", fixed, "sk test", "", [2]string{}, `"invalid_key";status=401;step="authenticate"`, false, false},
		{"unknown key", fixed, "sk_test_unknown_0123456789", "", [2]string{}, `"invalid_key";status=401;step="authenticate"`, false, false},
		{"revoked", fixed, keyRevoked, "", [2]string{}, `"key_revoked";status=401;step="authenticate"`, false, false},
		{"expired, status overridden", fixed, keyExpired, "", [2]string{}, `"key_expired";status=403;step="authenticate"`, false, false},
		{"wrong plan", fixed, keyFree, "", [2]string{}, `"feature_not_in_plan";status=402;step="require"`, true, false},
		{"missing feature", fixed, keyQuota, "", [2]string{}, `"feature_not_in_plan";status=402;step="require"`, true, false},
		{"lapsed", fixed, keyLapsed, "", [2]string{}, `"subscription_inactive";status=402;step="require"`, true, false},
		{"card declined", fixed, "sk_test_declined_0123456789abcdef", "", [2]string{}, `"payment_failed";status=402;step="require"`, true, false},
		{"in grace", fixed, "sk_test_grace_0123456789abcdef", "", [2]string{}, "", true, true},
		{"no credits", fixed, "sk_test_broke_0123456789abcdef", "", [2]string{}, `"insufficient_credits";status=402;step="charge"`, true, false},
		{"quota used up", pw.Authenticate(pw.Charge(101)(handler)), keyQuota, "", [2]string{}, `"insufficient_credits";status=402;step="charge"`, true, false},
		{"quota until refill", pw.Authenticate(pw.Charge(100)(handler)), keyQuota, "", [2]string{}, `"quota_exhausted";status=402;step="charge"`, true, false},
		{"bad idempotency key", fixed, keyPro, "", [2]string{"Idempotency-Key", "\x01"}, `"invalid_request";status=400;step="charge"`, true, false},
		{"good idempotency key", fixed, keyPro, "", [2]string{"Idempotency-Key", `"k1"`}, "", true, false},
		{"metered, covered", metered, keyPro, "?max=1000", [2]string{}, "", true, false},
		{"spend cap reached", fixed, "sk_test_capped_0123456789abcdef", "", [2]string{}, `"spend_cap_reached";status=402;step="charge"`, true, false},
		{"metered, too much", metered, keyPro, "?max=1001", [2]string{}, `"insufficient_credits";status=402;step="hold"`, true, false},
		{"metered, bad cost", metered, keyPro, "?max=x", [2]string{}, `"invalid_request";status=400;step="charge"`, true, false},
	}
	before := map[string]int64{}
	for _, id := range []string{"acct_pro", "acct_quota", "acct_broke", "acct_grace", "acct_declined", "acct_lapsed", "acct_capped"} {
		before[id] = f.balance(t, id)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got.list, served, callers, meter = nil, 0, 0, nil
			r := request("POST", "/generate"+tt.query, tt.key, "")
			if tt.header[0] != "" {
				r.Header.Set(tt.header[0], tt.header[1])
			}
			w := serve(tt.h, r)
			if w.Code != http.StatusTeapot || served != 1 {
				t.Fatalf("status %d, served %d times; want the handler's 418, once", w.Code, served)
			}
			if s := w.Header().Get(paywall.HeaderPaywallShadow); s != tt.want {
				t.Errorf("Paywall-Shadow %q, want %q", s, tt.want)
			}
			if (callers == 1) != tt.caller {
				t.Errorf("handler saw a Caller: %v, want %v", callers == 1, tt.caller)
			}
			if o := w.Header().Get(paywall.HeaderPaymentOverdueShadow); (o != "") != tt.overdue || w.Header().Get(paywall.HeaderPaymentOverdue) != "" {
				t.Errorf("Payment-Overdue-Shadow %q, Payment-Overdue %q; want overdue %v, only shadow",
					o, w.Header().Get(paywall.HeaderPaymentOverdue), tt.overdue)
			}
			for _, h := range []string{"Www-Authenticate", "Retry-After", "Content-Type"} {
				if v := w.Header().Get(h); v != "" {
					t.Errorf("%s %q in a shadow response", h, v)
				}
			}
			checkShadowDecisions(t, got.all(), tt.want)
		})
	}
	for id, b := range before {
		if a := f.balance(t, id); a != b {
			t.Errorf("%s: balance %d, was %d: a shadow paywall debited", id, a, b)
		}
	}
}

// checkShadowDecisions checks that all ds are marked Shadow and that one
// is refused, with the code and status of want (a Paywall-Shadow value),
// exactly when want is not empty.
func checkShadowDecisions(t *testing.T, ds []paywall.Decision, want string) {
	t.Helper()
	var refused []paywall.Decision
	for _, d := range ds {
		if !d.Shadow {
			t.Errorf("decision %+v not marked Shadow", d)
		}
		if !d.Allowed {
			refused = append(refused, d)
		}
	}
	switch {
	case want == "" && len(refused) > 0:
		t.Errorf("refused decisions %+v, want none", refused)
	case want != "" && len(refused) != 1:
		t.Errorf("refused decisions %+v, want one", refused)
	case want != "":
		d := refused[0]
		if v := `"` + string(d.Code) + `";status=` + strconv.Itoa(d.Status) + `;step="` + d.Step + `"`; v != want {
			t.Errorf("refused decision %+v, want %s", d, want)
		}
	}
}

// A shadow paywall reports the settlement of a metered request it let
// through, at what the handler reported, and debits nothing; one it would
// have refused is not metered at all.
func TestShadowMeteredSettlement(t *testing.T) {
	f := shadowFixture(t)
	var got decisions
	pw := f.paywall(t, &paywall.Options{Shadow: true, OnDecision: got.record})
	h := pw.Authenticate(pw.ChargeWith(paywall.ChargeOptions{Metered: true, Cost: 50, MinCost: 2})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			paywall.MeterFrom(r.Context()).Add(30)
			paywall.MeterFrom(r.Context()).Add(30) // beyond the hold, no Overdraft
		})))
	serve(h, request("POST", "/", keyPro, ""))
	ds := got.all()
	if len(ds) != 3 || ds[1].Step != "hold" || ds[1].Cost != 50 || ds[2].Step != "settle" || ds[2].Cost != 50 || !ds[2].Allowed {
		t.Errorf("decisions %+v, want authenticate, hold 50, settle 50", ds)
	}
	if b := f.balance(t, "acct_pro"); b != 1000 {
		t.Errorf("balance %d, want 1000", b)
	}
	got.list = nil
	serve(h, request("POST", "/", "sk_test_broke_0123456789abcdef", ""))
	if ds := got.all(); len(ds) != 2 || ds[1].Step != "hold" || ds[1].Allowed {
		t.Errorf("decisions %+v, want authenticate, refused hold, no settle", ds)
	}
}

// A shadow paywall whose store fails names the 503 it would have answered
// and serves the request with no Caller; under FailOpen it would have let
// the request through, so it names nothing.
func TestShadowStoreFailure(t *testing.T) {
	f := newFixture(t)
	for _, failOpen := range []bool{false, true} {
		fs := &failingStore{Store: f.mem, lookupErr: errors.New("backend down")}
		var got decisions
		pw := newPaywall(t, fs, f.clock, &paywall.Options{Shadow: true, FailOpen: failOpen, OnDecision: got.record})
		var served int
		h := pw.Authenticate(pw.Require(paywall.Requirement{})(pw.Charge(1)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served++ }))))
		w := serve(h, request("GET", "/", keyPro, ""))
		want := `"store_unavailable";status=503;step="authenticate"`
		if failOpen {
			want = ""
		}
		if s := w.Header().Get(paywall.HeaderPaywallShadow); w.Code != 200 || served != 1 || s != want {
			t.Errorf("FailOpen %v: status %d, served %d, Paywall-Shadow %q; want 200, 1, %q", failOpen, w.Code, served, s, want)
		}
		if ds := got.all(); len(ds) == 0 || ds[0].Err == nil || !ds[0].Shadow {
			t.Errorf("FailOpen %v: decisions %+v, want the store's error first, marked Shadow", failOpen, ds)
		}
	}
}

// The admitted path of a shadow paywall allocates what an enforcing one
// does: the request's state and its context.
func TestShadowAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation changes allocations")
	}
	f := shadowFixture(t)
	pw := f.paywall(t, &paywall.Options{Shadow: true})
	h := pw.Authenticate(pw.Require(paywall.Requirement{Features: []string{"reports"}})(pw.Charge(1)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))))
	w := &nopWriter{h: http.Header{}}
	r := request("POST", "/", keyPro, "")
	if n := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) }); n > 2 {
		t.Errorf("%v allocations per request, want at most 2", n)
	}
}

// A shadow charge never fuses with a limiter on its store: an enforcing
// limiter in front refuses on its own, and nothing is debited either way.
func TestShadowChargeDoesNotFuse(t *testing.T) {
	f := shadowFixture(t)
	pw := f.paywall(t, &paywall.Options{Shadow: true})
	lim, err := limiter.New(1, 1, &limiter.Options{By: limiter.ByAccount(), Store: f.mem, Clock: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []http.Handler{
		pw.Authenticate(lim.Handler(pw.Charge(5)(ok))),
		pw.Authenticate(pw.Charge(5)(lim.Handler(ok))),
	} {
		codes := []int{serve(h, request("POST", "/", keyPro, "")).Code, serve(h, request("POST", "/", keyPro, "")).Code}
		if codes[0] != 200 || codes[1] != 429 {
			t.Errorf("statuses %v, want 200 then the limiter's 429", codes)
		}
		f.clock.Advance(time.Second) // a full bucket again
	}
	if b := f.balance(t, "acct_pro"); b != 1000 {
		t.Errorf("balance %d, want 1000", b)
	}
}
