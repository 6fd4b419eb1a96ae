package echo402_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/go402/go402/adapters/echo402"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

const (
	testKey   = "sk_test_echo"
	poorKey   = "sk_test_echo_poor"
	accountID = "acct_echo"
	cost      = 10
)

// fixture is an Echo server behind a paywall on a memory store, with one
// account of 100 credits (key testKey) and one of 0 (key poorKey).
type fixture struct {
	mem     *store.Memory
	srv     *httptest.Server
	reached atomic.Int64 // requests that reached a Echo handler
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{mem: store.NewMemory(nil)}
	for _, a := range []struct {
		key     string
		account store.Account
	}{
		{testKey, store.Account{ID: accountID, Plan: "pro", Status: store.StatusActive, Balance: 100}},
		{poorKey, store.Account{ID: "acct_echo_poor", Plan: "free", Status: store.StatusActive}},
	} {
		if err := f.mem.PutAccount(ctx, a.account); err != nil {
			t.Fatal(err)
		}
		if err := f.mem.PutKey(ctx, store.NewKey(a.key, a.account.ID)); err != nil {
			t.Fatal(err)
		}
	}
	pw, err := paywall.New(f.mem, nil)
	if err != nil {
		t.Fatal(err)
	}
	charge := echo402.Wrap(pw.ChargeWith(paywall.ChargeOptions{Cost: cost, Refund: true}))
	count := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			f.reached.Add(1)
			return next(c)
		}
	}

	e := echo.New()
	e.Logger.SetOutput(io.Discard) // the recovered panic's stack
	e.Use(middleware.Recover())
	paid := e.Group("", echo402.Wrap(pw.Authenticate), charge, count)
	paid.GET("/ok", func(c echo.Context) error {
		caller, ok := paywall.CallerFromContext(c.Request().Context())
		if !ok {
			return c.String(http.StatusOK, "no caller")
		}
		return c.String(http.StatusOK, caller.Account.ID)
	})
	paid.GET("/json500", func(c echo.Context) error {
		return c.JSON(http.StatusInternalServerError, map[string]string{"error": "boom"})
	})
	paid.GET("/httperror503", func(c echo.Context) error {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "down for a moment")
	})
	paid.GET("/nocontent502", func(c echo.Context) error { return c.NoContent(http.StatusBadGateway) })
	paid.GET("/error500", func(c echo.Context) error { return io.ErrUnexpectedEOF })
	paid.GET("/panic", func(c echo.Context) error { panic("handler bug") })
	paid.GET("/teapot", func(c echo.Context) error { return c.String(http.StatusTeapot, "short and stout") })

	f.srv = httptest.NewServer(e)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) get(t *testing.T, path, key string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func (f *fixture) balance(t *testing.T) int64 {
	t.Helper()
	a, err := f.mem.Account(context.Background(), accountID)
	if err != nil {
		t.Fatal(err)
	}
	return a.Balance
}

// TestChargesAndSeesCaller: a paid Echo route is charged once, and its
// handler sees the caller go402 authenticated.
func TestChargesAndSeesCaller(t *testing.T) {
	f := newFixture(t)
	status, body := f.get(t, "/ok", testKey)
	if status != http.StatusOK || body != accountID {
		t.Fatalf("got %d %q, want 200 %q", status, body, accountID)
	}
	if got := f.balance(t); got != 100-cost {
		t.Errorf("balance %d, want %d", got, 100-cost)
	}
}

// TestRefundsServerErrors: every way a Echo handler answers a 5xx reaches
// the refund, and the client gets that status; a 4xx is not refunded.
func TestRefundsServerErrors(t *testing.T) {
	tests := []struct {
		path        string
		status      int
		wantBalance int64
	}{
		{"/json500", http.StatusInternalServerError, 100},
		{"/httperror503", http.StatusServiceUnavailable, 100},
		{"/nocontent502", http.StatusBadGateway, 100},
		{"/error500", http.StatusInternalServerError, 100},
		{"/panic", http.StatusInternalServerError, 100},
		{"/teapot", http.StatusTeapot, 100 - cost},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			f := newFixture(t)
			status, body := f.get(t, tt.path, testKey)
			if status != tt.status {
				t.Fatalf("status %d, want %d; body %q", status, tt.status, body)
			}
			if got := f.balance(t); got != tt.wantBalance {
				t.Errorf("balance %d, want %d", got, tt.wantBalance)
			}
		})
	}
}

// TestDenialsRender: a refused request gets go402's problem response, and
// no Echo handler after the refusing middleware runs.
func TestDenialsRender(t *testing.T) {
	tests := []struct {
		name, key string
		status    int
		code      string
	}{
		{"no key", "", http.StatusUnauthorized, "missing_key"},
		{"unknown key", "sk_test_nobody", http.StatusUnauthorized, "invalid_key"},
		{"no credits", poorKey, http.StatusPaymentRequired, "insufficient_credits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			status, body := f.get(t, "/ok", tt.key)
			if status != tt.status {
				t.Fatalf("status %d, want %d; body %q", status, tt.status, body)
			}
			var problem struct {
				Code string `json:"code"`
			}
			if err := json.Unmarshal([]byte(body), &problem); err != nil || problem.Code != tt.code {
				t.Errorf("body %q: code %q, want %q (%v)", body, problem.Code, tt.code, err)
			}
			if n := f.reached.Load(); n != 0 {
				t.Errorf("%d requests reached the Echo handlers", n)
			}
		})
	}
}
