// Package stripemock starts stripe-mock for tests, behind a reverse proxy
// that records the meter events and meter event cancellations it
// accepted, and builds the Stripe clients of it.
package stripemock

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82"
)

// Mock is a recording proxy in front of a stripe-mock.
type Mock struct {
	// URL is the proxy's address, the base URL of a Stripe client.
	URL string
	// Before, if set before requests start, is called with the number of
	// each meter event request (1, 2, …) before it is forwarded; if it
	// returns false the connection is dropped unanswered and unforwarded.
	Before func(n int) bool
	// Outage, if set before requests start, is called with the number of
	// each meter event request that Before let through; if it returns
	// true the request is answered 503 with a Stripe api_error, and not
	// forwarded.
	Outage func(n int) bool

	proxy *httputil.ReverseProxy
	mu    sync.Mutex
	sent  map[string]int    // identifier → times accepted
	value map[string]string // identifier → payload[value] last accepted
	undo  map[string]int    // identifier → times its cancellation was accepted
	n     int               // meter event requests seen
}

// Start returns a Mock, closed when the test ends, in front of the
// stripe-mock at STRIPE_MOCK_URL or else of one started from PATH or
// $(go env GOPATH)/bin on free ports: for the test alone, or for all the
// tests of the binary when its TestMain calls [Main]. Without one the test
// skips, or fails when the environment variable CI is set.
func Start(t testing.TB) *Mock {
	t.Helper()
	target := server(t)
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("stripe-mock URL %q: %v", target, err)
	}
	m := &Mock{proxy: httputil.NewSingleHostReverseProxy(u), sent: map[string]int{}, value: map[string]string{}, undo: map[string]int{}}
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	m.URL = srv.URL
	return m
}

// Client returns a Stripe client of the API at url (a Mock's or a
// stripe-mock's), without retries, logging or a secret key of value.
func Client(url string) *stripe.Client {
	b := stripe.NewBackendsWithConfig(&stripe.BackendConfig{URL: stripe.String(url),
		HTTPClient: &http.Client{Timeout: 10 * time.Second}, MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}})
	return stripe.NewClient("sk_test_123", stripe.WithBackends(b))
}

// ServeHTTP forwards r to stripe-mock, recording what it accepted.
func (m *Mock) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	event := r.URL.Path == "/v1/billing/meter_events"
	if !event && r.URL.Path != "/v1/billing/meter_event_adjustments" {
		m.proxy.ServeHTTP(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	if event && !m.admit(w) {
		return
	}
	body := r.PostForm.Encode() // ParseForm consumed the body
	r.Body, r.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
	sw := &statusWriter{ResponseWriter: w}
	m.proxy.ServeHTTP(sw, r)
	if sw.status != http.StatusOK {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if event {
		id := r.PostForm.Get("identifier")
		m.sent[id]++
		m.value[id] = r.PostForm.Get("payload[value]")
	} else if r.PostForm.Get("type") == "cancel" {
		m.undo[r.PostForm.Get("cancel[identifier]")]++
	}
}

// admit counts a meter event request and reports whether it is to be
// forwarded: if not, Before dropped it or Outage answered it.
func (m *Mock) admit(w http.ResponseWriter) bool {
	m.mu.Lock()
	m.n++
	n := m.n
	m.mu.Unlock()
	if m.Before != nil && !m.Before(n) {
		panic(http.ErrAbortHandler)
	}
	if m.Outage != nil && m.Outage(n) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"error":{"type":"api_error","message":"outage"}}`)
		return false
	}
	return true
}

// Events returns, per identifier, how often a meter event was accepted.
func (m *Mock) Events() map[string]int { return m.snapshot(m.sent) }

// Cancellations returns, per identifier, how often the cancellation of its
// meter event was accepted.
func (m *Mock) Cancellations() map[string]int { return m.snapshot(m.undo) }

// Value returns the payload value of the meter event last accepted with
// identifier id.
func (m *Mock) Value(id string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.value[id]
}

// snapshot returns a copy of counts, taken under the lock.
func (m *Mock) snapshot(counts map[string]int) map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(counts)
}

// statusWriter records the status written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
