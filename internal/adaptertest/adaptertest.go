// Package adaptertest is the suite every framework adapter of go402 passes
// (gin402, echo402): an adapter's test calls [Run] with a [Router] that
// builds the framework's router, and the suite checks through real HTTP
// that a paid route is charged once and its handler sees the caller, that
// every way the framework answers a 5xx is refunded while a 4xx is not, and
// that a refused request gets go402's problem JSON and reaches no handler
// of the framework's.
//
//	func TestAdapter(t *testing.T) {
//		adaptertest.Run(t, func(mws []func(http.Handler) http.Handler, reached func()) http.Handler {
//			r := gin.New()
//			// recovery, then a group of every Path* route behind
//			// gin402.Wrap of each of mws and a handler that calls reached
//			return r
//		})
//	}
package adaptertest

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// The routes a [Router] serves behind the paywall, each answering in the
// framework's own idiom as its comment says.
const (
	PathCaller    = "/caller"    // 200 with CallerID of the request as the body
	PathJSON500   = "/json500"   // a JSON body with status 500, through the framework's JSON renderer
	PathAbort503  = "/abort503"  // 503 by the framework's abort (gin's AbortWithStatus, an Echo HTTPError)
	PathStatus502 = "/status502" // status 502 set without a body (gin's Status, Echo's NoContent)
	PathError500  = "/error500"  // an error handed to the framework, which answers 500
	PathPanic     = "/panic"     // a panic, answered 500 by the framework's recovery
	PathTeapot    = "/teapot"    // status 418 with a text body
)

// Router builds a framework's router for one subtest. It serves every Path*
// route behind mws, outermost first, each adapted by the adapter under
// test, then behind a handler of the framework's that calls reached once
// for each request that gets past them. Panics are recovered by the
// framework's recovery, outside mws. Run calls it once per subtest.
type Router func(mws []func(http.Handler) http.Handler, reached func()) http.Handler

// CallerID returns the ID of the account go402 authenticated for r, or ""
// if r carries no caller. The handler of [PathCaller] writes it as the body.
func CallerID(r *http.Request) string {
	caller, ok := paywall.CallerFromContext(r.Context())
	if !ok {
		return ""
	}
	return caller.Account.ID
}

const (
	richKey   = "sk_test_adapter"
	poorKey   = "sk_test_adapter_poor"
	accountID = "acct_adapter"
	balance   = 100
	cost      = 10
)

// Run runs the suite as subtests of t, building a fresh router with router
// for each subtest.
func Run(t *testing.T, router Router) {
	t.Helper()
	t.Run("Charge", func(t *testing.T) { testCharge(t, router) })
	t.Run("Refund", func(t *testing.T) { testRefunds(t, router) })
	t.Run("Denial", func(t *testing.T) { testDenials(t, router) })
}

// testCharge: a paid route is charged once, and its handler sees the
// caller go402 authenticated.
func testCharge(t *testing.T, router Router) {
	s := newServer(t, router)
	resp := s.get(t, PathCaller, richKey)
	if resp.status != http.StatusOK || resp.body != accountID {
		t.Fatalf("got %d %q, want 200 %q", resp.status, resp.body, accountID)
	}
	if got := s.balance(t); got != balance-cost {
		t.Errorf("balance %d, want %d", got, balance-cost)
	}
	if n := s.reached.Load(); n != 1 {
		t.Errorf("%d requests reached the framework's handlers, want 1", n)
	}
}

// testRefunds: every way the framework answers a 5xx reaches the refund,
// and the client gets that status; a 4xx is not refunded.
func testRefunds(t *testing.T, router Router) {
	tests := []struct {
		path        string
		status      int
		wantBalance int64
	}{
		{PathJSON500, http.StatusInternalServerError, balance},
		{PathAbort503, http.StatusServiceUnavailable, balance},
		{PathStatus502, http.StatusBadGateway, balance},
		{PathError500, http.StatusInternalServerError, balance},
		{PathPanic, http.StatusInternalServerError, balance},
		{PathTeapot, http.StatusTeapot, balance - cost},
	}
	for _, tt := range tests {
		t.Run(tt.path[1:], func(t *testing.T) {
			s := newServer(t, router)
			resp := s.get(t, tt.path, richKey)
			if resp.status != tt.status {
				t.Fatalf("status %d, want %d; body %q", resp.status, tt.status, resp.body)
			}
			if got := s.balance(t); got != tt.wantBalance {
				t.Errorf("balance %d, want %d", got, tt.wantBalance)
			}
			if n := s.reached.Load(); n != 1 {
				t.Errorf("%d requests reached the framework's handlers, want 1", n)
			}
		})
	}
}

// testDenials: a refused request gets go402's problem response, and no
// handler of the framework's after the refusing middleware runs.
func testDenials(t *testing.T, router Router) {
	tests := []struct {
		name, key string
		status    int
		code      paywall.Code
	}{
		{"NoKey", "", http.StatusUnauthorized, paywall.CodeMissingKey},
		{"UnknownKey", "sk_test_nobody", http.StatusUnauthorized, paywall.CodeInvalidKey},
		{"NoCredits", poorKey, http.StatusPaymentRequired, paywall.CodeInsufficientCredits},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, router)
			resp := s.get(t, PathCaller, tt.key)
			if resp.status != tt.status {
				t.Fatalf("status %d, want %d; body %q", resp.status, tt.status, resp.body)
			}
			if mt, _, _ := mime.ParseMediaType(resp.contentType); mt != "application/problem+json" {
				t.Errorf("Content-Type %q, want application/problem+json", resp.contentType)
			}
			var problem struct {
				Code paywall.Code `json:"code"`
			}
			if err := json.Unmarshal([]byte(resp.body), &problem); err != nil || problem.Code != tt.code {
				t.Errorf("body %q: code %q, want %q (%v)", resp.body, problem.Code, tt.code, err)
			}
			if n := s.reached.Load(); n != 0 {
				t.Errorf("%d requests reached the framework's handlers, want 0", n)
			}
		})
	}
}

// server is a router behind a paywall on a memory store, over HTTP, with
// one account of 100 credits (key richKey) and one of none (key poorKey).
type server struct {
	mem     *store.Memory
	srv     *httptest.Server
	reached atomic.Int64 // requests that reached the framework's handlers
}

func newServer(t *testing.T, router Router) *server {
	t.Helper()
	s := &server{mem: store.NewMemory(nil)}
	s.seed(t, richKey, store.Account{ID: accountID, Plan: "pro", Status: store.StatusActive, Balance: balance})
	s.seed(t, poorKey, store.Account{ID: accountID + "_poor", Plan: "free", Status: store.StatusActive})
	pw, err := paywall.New(s.mem, nil)
	if err != nil {
		t.Fatal(err)
	}
	mws := []func(http.Handler) http.Handler{
		pw.Authenticate,
		pw.ChargeWith(paywall.ChargeOptions{Cost: cost, Refund: true}),
	}
	s.srv = httptest.NewServer(router(mws, func() { s.reached.Add(1) }))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *server) seed(t *testing.T, key string, a store.Account) {
	t.Helper()
	ctx := context.Background()
	if err := s.mem.PutAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.mem.PutKey(ctx, store.NewKey(key, a.ID)); err != nil {
		t.Fatal(err)
	}
}

// response is what a client read of one answer.
type response struct {
	status            int
	contentType, body string
}

// get requests path with key as a bearer token (none if key is "").
func (s *server) get(t *testing.T, path, key string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: string(body)}
}

func (s *server) balance(t *testing.T) int64 {
	t.Helper()
	a, err := s.mem.Account(context.Background(), accountID)
	if err != nil {
		t.Fatal(err)
	}
	return a.Balance
}
