package limiter

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// threeWindows is a policy's other windows: a minute and a day window that
// a client under its limit never exhausts.
var threeWindows = []store.Window{
	{Name: "minute", Burst: 1 << 40, Period: store.PeriodMinute},
	{Name: "daily", Burst: 1 << 40, Period: store.PeriodDay},
}

// BenchmarkWindows compares a policy of one window with one of three
// (token bucket, minute, day), for the limiter alone and fused with a
// charge on the memory store.
func BenchmarkWindows(b *testing.B) {
	for _, n := range []int{1, 3} {
		var ws []store.Window
		if n == 3 {
			ws = threeWindows
		}
		b.Run("windows="+string(rune('0'+n))+"/limiter", func(b *testing.B) {
			h := mustNew(b, 1e9, 1e9, &Options{By: KeyFunc(headerKey), Windows: ws}).Handler(okHandler)
			r := httptest.NewRequest("GET", "/", nil)
			r.Header["X-Api-Key"] = []string{"k"}
			w := &noopWriter{h: make(http.Header)}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				w.serve(h, r)
			}
			w.check(b, b.N)
		})
		b.Run("windows="+string(rune('0'+n))+"/fused", func(b *testing.B) {
			clk := newClock()
			pw, m := paywalled(&testing.T{}, clk, store.Account{ID: "a", Balance: 1 << 62})
			l := mustNew(b, 1e9, 1e9, &Options{By: ByAccount(), Store: m, Windows: ws})
			h := pw.Authenticate(l.Handler(pw.Charge(1)(okHandler)))
			r := keyRequest("sk_test_a")
			w := &noopWriter{h: make(http.Header)}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				w.serve(h, r)
			}
			w.check(b, b.N)
		})
	}
}

var _ = paywall.CodeRateLimited
