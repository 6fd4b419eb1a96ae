package admin_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go402/go402/admin"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// BenchmarkRecord measures what the Recorder adds to each authenticated
// request: one map write under a lock.
func BenchmarkRecord(b *testing.B) {
	st := store.NewMemory(nil)
	st.PutAccount(context.Background(), store.Account{ID: "acct_1", Balance: 1})
	st.PutKey(context.Background(), store.NewKey("sk_test_benchmark_key", "acct_1"))
	var ctx context.Context
	var d paywall.Decision
	pw, _ := paywall.New(st, &paywall.Options{OnDecision: func(c context.Context, dec paywall.Decision) {
		ctx, d = c, dec
	}})
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer sk_test_benchmark_key")
	pw.Authenticate(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(httptest.NewRecorder(), req)
	if !d.Allowed {
		b.Fatalf("setup: %+v", d)
	}
	rec, _ := admin.NewRecorder(st, 0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec.Record(ctx, d)
		}
	})
}
