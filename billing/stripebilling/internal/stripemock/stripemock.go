// Package stripemock starts stripe-mock for tests, behind a reverse proxy
// that records the meter events and meter event cancellations it
// accepted.
package stripemock

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Mock is a recording proxy in front of a stripe-mock.
type Mock struct {
	// URL is the proxy's address, the base URL of a Stripe client.
	URL string
	// Before, if set before requests start, is called with the number of
	// each meter event request (1, 2, …) before it is forwarded; if it
	// returns false the connection is dropped unanswered and unforwarded.
	Before func(n int) bool

	proxy *httputil.ReverseProxy
	mu    sync.Mutex
	sent  map[string]int    // identifier → times accepted
	value map[string]string // identifier → payload[value] last accepted
	undo  map[string]int    // identifier → times its cancellation was accepted
	n     int               // meter event requests seen
}

// Start returns a Mock in front of STRIPE_MOCK_URL, or of a stripe-mock
// started from PATH or $(go env GOPATH)/bin on free ports and stopped when
// the test ends. Without one the test skips, or fails under CI.
func Start(t testing.TB) *Mock {
	t.Helper()
	target := os.Getenv("STRIPE_MOCK_URL")
	if target == "" {
		var err error
		if target, err = launch(t); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("stripe-mock: %v", err)
			}
			t.Skipf("stripe-mock: %v", err)
		}
	}
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("STRIPE_MOCK_URL: %v", err)
	}
	m := &Mock{proxy: httputil.NewSingleHostReverseProxy(u), sent: map[string]int{}, value: map[string]string{}, undo: map[string]int{}}
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	m.URL = srv.URL
	return m
}

// launch starts stripe-mock on free HTTP and HTTPS ports.
func launch(t testing.TB) (string, error) {
	bin, err := exec.LookPath("stripe-mock")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		bin = filepath.Join(string(bytes.TrimSpace(gopath)), "bin", "stripe-mock")
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("STRIPE_MOCK_URL unset and stripe-mock not installed")
		}
	}
	addr := freeAddr()
	cmd := exec.Command(bin, "-http-addr", addr, "-https-addr", freeAddr())
	if err := cmd.Start(); err != nil {
		return "", err
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for range 200 { // stripe-mock loads its fixtures first
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "http://" + addr, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "", fmt.Errorf("stripe-mock did not start at %s", addr)
}

// freeAddr returns a loopback address with a free port.
func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer l.Close()
	return l.Addr().String()
}

// ServeHTTP forwards r to stripe-mock, recording what it accepted.
func (m *Mock) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind := ""
	switch r.URL.Path {
	case "/v1/billing/meter_events":
		kind = "event"
	case "/v1/billing/meter_event_adjustments":
		kind = "cancel"
	default:
		m.proxy.ServeHTTP(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	if kind == "event" {
		m.mu.Lock()
		m.n++
		n := m.n
		m.mu.Unlock()
		if m.Before != nil && !m.Before(n) {
			panic(http.ErrAbortHandler)
		}
	}
	body := r.PostForm.Encode()
	r.Body, r.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
	sw := &statusWriter{ResponseWriter: w}
	m.proxy.ServeHTTP(sw, r)
	if sw.status != http.StatusOK {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if kind == "event" {
		id := r.PostForm.Get("identifier")
		m.sent[id]++
		m.value[id] = r.PostForm.Get("payload[value]")
	} else if r.PostForm.Get("type") == "cancel" {
		m.undo[r.PostForm.Get("cancel[identifier]")]++
	}
}

// Events returns, per identifier, how often a meter event was accepted.
func (m *Mock) Events() map[string]int { return m.copy(m.sent) }

// Cancellations returns, per identifier, how often the cancellation of its
// meter event was accepted.
func (m *Mock) Cancellations() map[string]int { return m.copy(m.undo) }

// Value returns the payload value of the meter event last accepted with
// identifier id.
func (m *Mock) Value(id string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.value[id]
}

func (m *Mock) copy(src map[string]int) map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(src)
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
