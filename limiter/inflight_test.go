package limiter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// blocker is a handler that signals each request's start on started and
// returns when release is closed or the request's context ends.
type blocker struct {
	started chan struct{}
	release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{started: make(chan struct{}, 16), release: make(chan struct{})}
}

func (b *blocker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.started <- struct{}{}
	select {
	case <-b.release:
	case <-r.Context().Done():
	}
	w.WriteHeader(http.StatusOK)
}

// inFlightLimiters returns limiters allowing 2 requests in flight: one
// counting in the process, one in a memory store's slots.
func inFlightLimiters(t *testing.T) map[string]*Limiter {
	return map[string]*Limiter{
		"process": mustNew(t, 1e9, 1e9, &Options{By: KeyFunc(oneKey), MaxInFlight: 2}),
		"store":   mustNew(t, 1e9, 1e9, &Options{By: KeyFunc(oneKey), MaxInFlight: 2, Store: store.NewMemory(nil)}),
	}
}

// With 2 requests in flight, a third is refused with 429 and
// violated-policies inflight; once one returns, the next passes.
func TestInFlight(t *testing.T) {
	for name, l := range inFlightLimiters(t) {
		t.Run(name, func(t *testing.T) {
			b := newBlocker()
			h := l.Handler(b)
			done := make(chan int, 2)
			for range 2 {
				go func() { done <- serve(h, keyRequest("")).Code }()
				<-b.started
			}
			w := serve(h, keyRequest(""))
			if v := problem(t, w)["violated-policies"]; w.Code != http.StatusTooManyRequests || fmt.Sprint(v) != "[inflight]" ||
				w.Header().Get("Retry-After") != "1" {
				t.Fatalf("third request: %d, violated-policies %v, Retry-After %q", w.Code, v, w.Header().Get("Retry-After"))
			}
			b.release <- struct{}{} // one returns
			if code := <-done; code != http.StatusOK {
				t.Fatalf("first request: %d", code)
			}
			go func() { done <- serve(h, keyRequest("")).Code }()
			<-b.started
			close(b.release)
			for range 2 {
				if code := <-done; code != http.StatusOK {
					t.Errorf("request after a release: %d", code)
				}
			}
		})
	}
}

// A handler that panics frees its slot as the panic passes through.
func TestInFlightPanic(t *testing.T) {
	for name, l := range inFlightLimiters(t) {
		t.Run(name, func(t *testing.T) {
			errBoom := errors.New("boom")
			h := l.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(errBoom) }))
			for i := range 3 { // more than MaxInFlight: each frees its slot
				func() {
					defer func() {
						if v := recover(); v != errBoom {
							t.Fatalf("request %d: recovered %v, want the handler's panic (not a refusal)", i, v)
						}
					}()
					serve(h, keyRequest(""))
				}()
			}
		})
	}
}

// A client that hangs up mid-request frees its slot: over a real
// connection, two clients cancel while the handler waits on their
// requests' contexts, and two more requests then pass.
func TestInFlightDisconnect(t *testing.T) {
	for name, l := range inFlightLimiters(t) {
		t.Run(name, func(t *testing.T) {
			b := newBlocker()
			returned := make(chan struct{}, 4)
			lh := l.Handler(b)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				lh.ServeHTTP(w, r)
				returned <- struct{}{} // the limiter's handler returned: its slot is free
			}))
			defer srv.Close()
			for range 2 {
				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
				go func() {
					if resp, err := srv.Client().Do(req); err == nil {
						resp.Body.Close()
					}
				}()
				<-b.started
				cancel()
				<-returned
			}
			close(b.release)
			for i := range 2 {
				resp, err := srv.Client().Get(srv.URL)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				<-b.started
				<-returned
				if resp.StatusCode != http.StatusOK {
					t.Errorf("request %d after two clients hung up: %d", i, resp.StatusCode)
				}
			}
		})
	}
}

// In shadow mode a request over MaxInFlight is reported, not refused.
func TestInFlightShadow(t *testing.T) {
	var refused int
	l := mustNew(t, 1e9, 1e9, &Options{By: KeyFunc(oneKey), MaxInFlight: 1, Shadow: true,
		OnDecision: func(_ context.Context, d paywall.Decision) {
			if !d.Allowed && d.Shadow {
				refused++
			}
		}})
	b := newBlocker()
	h := l.Handler(b)
	done := make(chan int)
	go func() { done <- serve(h, keyRequest("")).Code }()
	<-b.started
	go func() { done <- serve(h, keyRequest("")).Code }()
	<-b.started
	close(b.release)
	if c1, c2 := <-done, <-done; c1 != http.StatusOK || c2 != http.StatusOK || refused != 1 {
		t.Errorf("statuses %d %d, %d shadow refusals; want 200 200, 1", c1, c2, refused)
	}
}
