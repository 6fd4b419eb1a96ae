package limiter

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/go402/go402/store"
)

// benchWindows are the other windows of the 3-window policy: 1,000 a
// minute and 100,000 a day besides the main 10 a second.
var benchWindows = []store.Window{
	{Name: "minute", Burst: 1000, Period: store.PeriodMinute},
	{Name: "day", Burst: 100_000, Period: store.PeriodDay},
}

// BenchmarkWindows compares a policy of one window (10 a second) with one
// of three (10 a second, 1,000 a minute, 100,000 a day), for the limiter
// alone and fused with a charge on the memory store. One client sends a
// request a second, under every limit: the main bucket is full again by
// each request, while the minute and day windows count down (and start
// over each minute and each day), so their RateLimit items change with
// every response. Each variant checks that every request was admitted
// and that the last response's RateLimit header counts what it took.
func BenchmarkWindows(b *testing.B) {
	for _, n := range []int{1, 3} {
		var ws []store.Window
		if n == 3 {
			ws = benchWindows
		}
		b.Run("windows="+strconv.Itoa(n)+"/limiter", func(b *testing.B) {
			clk := newClock()
			h := mustNew(b, 10, 10, &Options{By: KeyFunc(headerKey), Windows: ws, Clock: clk.Now}).Handler(okHandler)
			r := httptest.NewRequest("GET", "/", nil)
			r.Header["X-Api-Key"] = []string{"k"}
			benchWindowRequests(b, clk, h, r, n)
		})
		b.Run("windows="+strconv.Itoa(n)+"/fused", func(b *testing.B) {
			clk := newClock()
			pw, m := paywalled(&testing.T{}, clk, store.Account{ID: "a", Balance: 1 << 62})
			l := mustNew(b, 10, 10, &Options{By: ByAccount(), Store: m, Windows: ws, Clock: clk.Now})
			h := pw.Authenticate(l.Handler(pw.Charge(1)(okHandler)))
			benchWindowRequests(b, clk, h, keyRequest("sk_test_a"), n)
			if a, err := m.Account(context.Background(), "a"); err != nil || 1<<62-a.Balance != int64(b.N) {
				b.Fatalf("%d requests charged %d credits (%v)", b.N, 1<<62-a.Balance, err)
			}
		})
	}
}

// benchWindowRequests sends r to h b.N times, a second apart on clk, and
// checks that all were served with the RateLimit header of a policy of n
// windows (1 or 3) after those requests.
func benchWindowRequests(b *testing.B, clk *clock, h http.Handler, r *http.Request, n int) {
	w := &noopWriter{h: make(http.Header)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.serve(h, r)
		clk.Advance(time.Second)
	}
	b.StopTimer()
	w.check(b, b.N)
	want := `"default";r=9;t=1`
	if n == 3 {
		last := clk.Now().Add(-time.Second) // the last request's time
		want += windowItem("minute", last, time.Minute, 1000, b.N) + windowItem("day", last, 24*time.Hour, 100_000, b.N)
	}
	if got := w.h.Get(HeaderRateLimit); got != want {
		b.Fatalf("after %d requests: RateLimit %q, want %q", b.N, got, want)
	}
}

// windowItem is the RateLimit item of a fixed window of period d and
// quota q after n requests a second apart, the last at last (the first
// at the start of a day, as newClock's).
func windowItem(name string, last time.Time, d time.Duration, q, n int) string {
	start := last.Truncate(d)
	inPeriod := min(int(last.Sub(start)/time.Second)+1, n)
	return `, "` + name + `";r=` + strconv.Itoa(q-inPeriod) + ";t=" + strconv.FormatInt(seconds(start.Add(d).Sub(last)), 10)
}
