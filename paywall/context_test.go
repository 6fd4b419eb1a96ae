package paywall_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
)

type ctxKey struct{}

// The context of an authenticated request is the caller's and, for
// everything else, the original request's: its values, its deadline, and
// its cancellation, also for contexts derived from it.
func TestAuthenticatedContext(t *testing.T) {
	f := newFixture(t)
	p := f.paywall(t, nil)
	deadline := time.Now().Add(time.Hour)
	parent, cancel := context.WithDeadline(context.WithValue(context.Background(), ctxKey{}, "v"), deadline)

	var ctx context.Context
	h := p.Authenticate(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { ctx = r.Context() }))
	serve(h, request("GET", "/", keyPro, "").WithContext(parent))
	if ctx == nil {
		t.Fatal("handler not reached")
	}
	if c, ok := paywall.CallerFromContext(ctx); !ok || c.Account.ID != "acct_pro" {
		t.Fatalf("caller %+v, %v", c, ok)
	}
	if v := ctx.Value(ctxKey{}); v != "v" {
		t.Errorf("Value = %v, want the parent's", v)
	}
	if d, ok := ctx.Deadline(); !ok || !d.Equal(deadline) {
		t.Errorf("Deadline = %v, %v, want %v", d, ok, deadline)
	}
	child, stop := context.WithCancel(ctx)
	defer stop()
	if ctx.Err() != nil || child.Err() != nil {
		t.Fatalf("Err before cancel: %v, %v", ctx.Err(), child.Err())
	}
	cancel()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed when the parent was cancelled")
	}
	<-child.Done()
	if !errors.Is(ctx.Err(), context.Canceled) || !errors.Is(child.Err(), context.Canceled) {
		t.Errorf("Err after cancel: %v, %v", ctx.Err(), child.Err())
	}
	if c, ok := paywall.CallerFromContext(child); !ok || c.Account.ID != "acct_pro" {
		t.Errorf("caller from a derived context: %+v, %v", c, ok)
	}
}
