package limiter

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// windowItems parses a RateLimit or RateLimit-Policy field into its items'
// names and the parameter param of each.
func windowItems(t *testing.T, h http.Header, field, param string) ([]string, []int64) {
	t.Helper()
	items, err := parseSFList(h.Get(field))
	if err != nil {
		t.Fatalf("%s %q: %v", field, h.Get(field), err)
	}
	var names []string
	var values []int64
	for _, it := range items {
		v, _ := it.param(param)
		n, _ := v.(int64)
		names = append(names, it.value.(string))
		values = append(values, n)
	}
	return names, values
}

// A policy of a token bucket and a daily window, wired three ways — the
// limiter's own buckets, a store's, and fused with a charge — admits while
// both hold tokens, and a request the daily window refuses takes nothing
// from the bucket (nor credits): its 429 names "daily" in
// violated-policies, retries at midnight UTC, and lists both windows in
// the RateLimit headers. The next day admits again.
func TestWindowsAllOrNone(t *testing.T) {
	for _, wiring := range []string{"in-process", "store", "fused"} {
		t.Run(wiring, func(t *testing.T) {
			clk := newClock()
			clk.Advance(20 * time.Hour) // 4 hours to midnight
			pw, m := paywalled(t, clk, store.Account{ID: "a", Plan: "pro", Balance: 100})
			o := &Options{By: ByAccount(), Clock: clk.Now,
				PlanWindows: map[string][]store.Window{"pro": {{Name: "daily", Burst: 3, Period: store.PeriodDay}}}}
			var h http.Handler = okHandler
			switch wiring {
			case "store":
				o.Store = m
			case "fused":
				o.Store = m
				h = pw.Charge(1)(h)
			}
			l := mustNew(t, 1e-9, 10, o)
			h = pw.Authenticate(l.Handler(h))
			for i := range 3 {
				w := serve(h, keyRequest("sk_test_a"))
				names, r := windowItems(t, w.Header(), "RateLimit", "r")
				if w.Code != http.StatusOK || !slices.Equal(names, []string{"default", "daily"}) || !slices.Equal(r, []int64{int64(9 - i), int64(2 - i)}) {
					t.Fatalf("request %d: %d, RateLimit %q", i, w.Code, w.Header().Get("RateLimit"))
				}
			}
			w := serve(h, keyRequest("sk_test_a"))
			if w.Code != http.StatusTooManyRequests {
				t.Fatalf("4th request: %d, want 429", w.Code)
			}
			if v := problem(t, w)["violated-policies"]; fmt.Sprint(v) != "[daily]" {
				t.Errorf("violated-policies %v, want [daily]", v)
			}
			if ra := w.Header().Get("Retry-After"); ra != "14400" {
				t.Errorf("Retry-After %q, want 14400 (midnight)", ra)
			}
			if _, r := windowItems(t, w.Header(), "RateLimit", "r"); !slices.Equal(r, []int64{7, 0}) {
				t.Errorf("refused: RateLimit %q, want the bucket untouched (r=7)", w.Header().Get("RateLimit"))
			}
			names, q := windowItems(t, w.Header(), "RateLimit-Policy", "q")
			_, win := windowItems(t, w.Header(), "RateLimit-Policy", "w")
			if !slices.Equal(names, []string{"default", "daily"}) || !slices.Equal(q, []int64{10, 3}) || win[1] != 86400 {
				t.Errorf("RateLimit-Policy %q", w.Header().Get("RateLimit-Policy"))
			}
			if wiring == "fused" {
				if a, _ := m.Account(context.Background(), "a"); a.Balance != 97 {
					t.Errorf("balance %d after 3 charged requests and a refused one, want 97", a.Balance)
				}
			}
			clk.Advance(4 * time.Hour)
			w = serve(h, keyRequest("sk_test_a"))
			if _, r := windowItems(t, w.Header(), "RateLimit", "r"); w.Code != http.StatusOK || !slices.Equal(r, []int64{6, 2}) {
				t.Errorf("the next day: %d, RateLimit %q, want 200 and r=6, r=2", w.Code, w.Header().Get("RateLimit"))
			}
		})
	}
}

// When the token bucket refuses and the daily window holds, the denial
// names only the bucket, and the daily window keeps its tokens.
func TestWindowsMainRefuses(t *testing.T) {
	clk := newClock()
	l := mustNew(t, 1e-9, 1, &Options{By: KeyFunc(oneKey), Clock: clk.Now,
		Windows: []store.Window{{Name: "daily", Burst: 5, Period: store.PeriodDay}}})
	h := l.Handler(okHandler)
	req := keyRequest("")
	if w := serve(h, req); w.Code != http.StatusOK {
		t.Fatalf("first request: %d", w.Code)
	}
	w := serve(h, req)
	if v := problem(t, w)["violated-policies"]; w.Code != http.StatusTooManyRequests || fmt.Sprint(v) != "[default]" {
		t.Fatalf("second request: %d, violated-policies %v; want 429 [default]", w.Code, v)
	}
	if _, r := windowItems(t, w.Header(), "RateLimit", "r"); !slices.Equal(r, []int64{0, 4}) {
		t.Errorf("RateLimit %q, want the daily window untouched (r=4)", w.Header().Get("RateLimit"))
	}
}

// An account's Windows replace its plan's, and its RateLimit its main
// window; a plan without PlanWindows has Options.Windows.
func TestWindowsPrecedence(t *testing.T) {
	clk := newClock()
	pw, _ := paywalled(t, clk,
		store.Account{ID: "own", Plan: "pro", RateLimit: &store.RateLimit{Rate: 1, Burst: 7},
			Windows: []store.Window{{Name: "hourly", Burst: 2, Period: store.PeriodHour}}},
		store.Account{ID: "pro", Plan: "pro"},
		store.Account{ID: "free", Plan: "free"},
	)
	l := mustNew(t, 1, 5, &Options{By: ByAccount(), Clock: clk.Now,
		Windows:     []store.Window{{Name: "minute", Rate: 1, Burst: 60}},
		PlanWindows: map[string][]store.Window{"pro": {{Name: "daily", Burst: 100, Period: store.PeriodDay}}}})
	h := pw.Authenticate(l.Handler(okHandler))
	for id, want := range map[string]string{
		"own":  `"default";q=7;w=7, "hourly";q=2;w=3600`,
		"pro":  `"default";q=5;w=5, "daily";q=100;w=86400`,
		"free": `"default";q=5;w=5, "minute";q=60;w=60`,
	} {
		if got := serve(h, keyRequest("sk_test_"+id)).Header().Get("RateLimit-Policy"); got != want {
			t.Errorf("account %s: RateLimit-Policy %q, want %q", id, got, want)
		}
	}
}

// A monthly window counts from the account's refill anchor: on the 14th
// of a cycle anchored on the 15th, the period ends the next day.
func TestWindowsMonthAnchor(t *testing.T) {
	clk := newClock() // 2025-01-01
	clk.Advance(13 * 24 * time.Hour)
	anchor := time.Date(2024, 11, 15, 0, 0, 0, 0, time.UTC)
	pw, _ := paywalled(t, clk, store.Account{ID: "a", Balance: 1, Refill: &store.Refill{Amount: 1, Every: 24 * time.Hour, Anchor: anchor}})
	l := mustNew(t, 1e-9, 10, &Options{By: ByAccount(), Clock: clk.Now,
		Windows: []store.Window{{Name: "monthly", Burst: 1, Period: store.PeriodMonth}}})
	h := pw.Authenticate(l.Handler(okHandler))
	serve(h, keyRequest("sk_test_a"))
	w := serve(h, keyRequest("sk_test_a"))
	if ra := w.Header().Get("Retry-After"); w.Code != http.StatusTooManyRequests || ra != "86400" {
		t.Errorf("second request in the cycle: %d, Retry-After %q; want 429, 86400 (the 15th)", w.Code, ra)
	}
}

// Accounts anchored on different days share a limiter's monthly window
// configuration but each counts in its own cycle, requests interleaved,
// in the process and in a store.
func TestWindowsMonthAnchorPerAccount(t *testing.T) {
	for _, inStore := range []bool{false, true} {
		clk := newClock() // 2025-01-01
		clk.Advance(13 * 24 * time.Hour)
		refill := func(day int) *store.Refill {
			return &store.Refill{Amount: 1, Every: 24 * time.Hour, Anchor: time.Date(2024, 11, day, 0, 0, 0, 0, time.UTC)}
		}
		pw, m := paywalled(t, clk,
			store.Account{ID: "a", Balance: 1, Refill: refill(15)},
			store.Account{ID: "b", Balance: 1, Refill: refill(3)})
		o := &Options{By: ByAccount(), Clock: clk.Now, Windows: []store.Window{{Name: "monthly", Burst: 1, Period: store.PeriodMonth}}}
		if inStore {
			o.Store = m
		}
		h := pw.Authenticate(mustNew(t, 1e-9, 10, o).Handler(okHandler))
		for i := range 2 {
			for id, want := range map[string]string{"a": "86400", "b": "1728000"} {
				w := serve(h, keyRequest("sk_test_"+id))
				if ra := w.Header().Get("Retry-After"); i == 1 && (w.Code != http.StatusTooManyRequests || ra != want) {
					t.Errorf("store %v: account %s's second request: %d, Retry-After %q; want 429, %s", inStore, id, w.Code, ra, want)
				}
			}
		}
	}
}

// A set with a month window keeps the bounds of each billing anchor, so
// that requests of accounts anchored apart, interleaved, allocate no more
// than those of one anchor; bounds stay right for every anchor, also
// across the set forgetting them all when it holds maxAnchors, and as the
// months go by.
func TestWindowsMonthBoundsByAnchor(t *testing.T) {
	set, err := newWindowSet("default", "Windows", []store.Window{
		{Name: "monthly", Burst: 10, Period: store.PeriodMonth}, {Name: "daily", Burst: 5, Period: store.PeriodDay}})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	account := func(i int) *store.Account {
		return &store.Account{Refill: &store.Refill{Amount: 1, Every: time.Hour, Anchor: base.Add(time.Duration(i) * time.Minute)}}
	}
	for _, now := range []time.Time{time.Date(2025, 3, 30, 12, 0, 0, 0, time.UTC), time.Date(2025, 4, 2, 0, 0, 0, 0, time.UTC)} {
		for i := range maxAnchors + 100 {
			a := account(i)
			bs := set.moreBuckets(now, a)
			ms, me := store.PeriodMonth.Bounds(now, a.Refill.Anchor)
			ds, de := store.PeriodDay.Bounds(now, time.Time{})
			if !bs[0].Start.Equal(ms) || !bs[0].End.Equal(me) || !bs[1].Start.Equal(ds) || !bs[1].End.Equal(de) {
				t.Fatalf("%v, anchor %v: bounds %v–%v and %v–%v, want %v–%v and %v–%v", now, a.Refill.Anchor,
					bs[0].Start, bs[0].End, bs[1].Start, bs[1].End, ms, me, ds, de)
			}
		}
	}
	now := time.Date(2025, 4, 2, 0, 0, 0, 0, time.UTC)
	a, b := account(1), account(2)
	if n := testing.AllocsPerRun(100, func() { set.moreBuckets(now, a); set.moreBuckets(now, b) }); n != 0 {
		t.Errorf("bounds of two anchors in turn: %v allocations, want 0", n)
	}
}

// 200 concurrent requests against a bucket of 50 and a daily window of 30
// admit exactly 30, and leave 20 tokens in the bucket.
func TestWindowsExactUnderConcurrency(t *testing.T) {
	for _, inStore := range []bool{false, true} {
		clk := newClock()
		o := &Options{By: KeyFunc(oneKey), Clock: clk.Now, Windows: []store.Window{{Name: "daily", Burst: 30, Period: store.PeriodDay}}}
		if inStore {
			o.Store = store.NewMemory(&store.MemoryOptions{Clock: clk.Now})
		}
		l := mustNew(t, 1e-9, 50, o)
		var admitted atomic.Int64
		concurrently(200, func(int) {
			if take(t, l, keyRequest("")).Allowed {
				admitted.Add(1)
			}
		})
		res := take(t, l, keyRequest(""))
		if admitted.Load() != 30 || res.Allowed || res.Remaining != 20 || len(res.Windows) != 1 || res.Windows[0].Allowed {
			t.Errorf("store %v: admitted %d, then %+v; want 30, then refused by daily with 20 left", inStore, admitted.Load(), res)
		}
	}
}

// Configuration mistakes in windows are reported by New.
func TestWindowsValidated(t *testing.T) {
	for _, o := range []*Options{
		{Windows: []store.Window{{Name: "default", Burst: 1, Period: store.PeriodDay}}},
		{Windows: []store.Window{{Name: "a", Burst: 1, Period: store.PeriodDay}, {Name: "a", Burst: 2, Period: store.PeriodHour}}},
		{Windows: []store.Window{{Name: "a", Burst: 1, Period: "fortnight"}}},
		{Windows: []store.Window{{Name: "a", Burst: 0, Rate: 1}}},
		{Windows: []store.Window{{Name: "a", Burst: 1}}},
		{PlanWindows: map[string][]store.Window{"pro": {{Name: "", Burst: 1, Rate: 1}}}},
	} {
		if _, err := New(1, 1, o); err == nil {
			t.Errorf("New(%+v): no error", o.Windows)
		}
	}
}

// The RateLimit values of a policy with windows stay what they were when
// written while later requests run, in the process, in a store and fused
// with a charge, from several accounts at once; and a Result from Take
// keeps its window outcomes.
func TestWindowsValuesKept(t *testing.T) {
	for _, wiring := range []string{"in-process", "store", "fused"} {
		t.Run(wiring, func(t *testing.T) {
			clk := newClock()
			var accounts []store.Account
			for i := range 4 {
				accounts = append(accounts, store.Account{ID: fmt.Sprint("a", i), Balance: 1 << 40})
			}
			pw, m := paywalled(t, clk, accounts...)
			ws := []store.Window{{Name: "minute", Burst: 1 << 30, Period: store.PeriodMinute}, {Name: "day", Rate: 1e-3, Burst: 1 << 30}}
			o := &Options{By: ByAccount(), Clock: clk.Now, Windows: ws}
			var h http.Handler = okHandler
			if wiring != "in-process" {
				o.Store = m
			}
			if wiring == "fused" {
				h = pw.Charge(1)(h)
			}
			h = pw.Authenticate(mustNew(t, 1e9, 1e9, o).Handler(h))
			kept := make([][][2]string, 4)
			concurrently(4, func(g int) {
				for range 200 { // past a slab's values
					v := serve(h, keyRequest("sk_test_"+accounts[g].ID)).Header()["Ratelimit"]
					kept[g] = append(kept[g], [2]string{v[0], strings.Clone(v[0])})
				}
			})
			for g := range kept {
				for i, k := range kept[g] {
					if want := fmt.Sprintf(`;r=%d;t=`, 1<<30-i-1); k[0] != k[1] || !strings.Contains(k[0], want) {
						t.Fatalf("account %d, response %d: RateLimit %q, written as %q (want %s)", g, i, k[0], k[1], want)
					}
				}
			}
		})
	}
	l := mustNew(t, 10, 10, &Options{By: KeyFunc(oneKey), Windows: benchWindows})
	first := take(t, l, keyRequest(""))
	want := slices.Clone(first.Windows)
	for range 100 {
		take(t, l, keyRequest(""))
		serve(l.Handler(okHandler), keyRequest(""))
	}
	if len(want) != 2 || !slices.Equal(first.Windows, want) {
		t.Errorf("Take's windows %+v, then %+v after more requests", want, first.Windows)
	}
}

var _ = paywall.CodeRateLimited

// Accounts with the same windows of their own share the set made for the
// first of them, so that such a request costs no more allocations than
// one of an account with none; and the sets of different windows, also
// beyond the most that are kept, each count their own.
func TestAccountWindowsShared(t *testing.T) {
	clk := newClock()
	own := func(burst int) []store.Window {
		return []store.Window{{Name: "daily", Burst: burst, Period: store.PeriodDay}}
	}
	accounts := []store.Account{{ID: "plain", Balance: 1 << 40}}
	for i := range maxOverridePolicies + 50 {
		accounts = append(accounts, store.Account{ID: "own" + strconv.Itoa(i), Balance: 1 << 40, Windows: own(1000 + i)})
	}
	accounts = append(accounts, store.Account{ID: "same", Balance: 1 << 40, Windows: own(1000)})
	pw, m := paywalled(t, clk, accounts...)
	l := mustNew(t, 1e9, 1<<30, &Options{By: ByAccount(), Store: m, Clock: clk.Now})
	h := pw.Authenticate(l.Handler(pw.Charge(1)(okHandler)))
	for i := range maxOverridePolicies + 50 {
		want := `"default";q=1073741824;w=2, "daily";q=` + strconv.Itoa(1000+i) + `;w=86400`
		if got := serve(h, keyRequest("sk_test_own"+strconv.Itoa(i))).Header().Get("RateLimit-Policy"); got != want {
			t.Fatalf("account own%d: RateLimit-Policy %q, want %q", i, got, want)
		}
	}
	allocs := func(id string) float64 {
		w, r := &noopWriter{h: make(http.Header)}, keyRequest("sk_test_"+id)
		w.serve(h, r)
		return testing.AllocsPerRun(100, func() { w.serve(h, r) })
	}
	if plain, same := allocs("plain"), allocs("same"); same != plain {
		t.Errorf("a request of an account with its own windows allocates %v times, one without %v", same, plain)
	}
	// "same" shares own0's set, not its counts: 103 requests so far (one,
	// then AllocsPerRun's 101, then this one) against own0's one.
	if got := serve(h, keyRequest("sk_test_same")).Header().Get("RateLimit"); !strings.Contains(got, `"daily";r=897;`) {
		t.Errorf("RateLimit %q, want the daily window of the account's own 103 requests (r=897)", got)
	}
}
