package x402_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go402/go402/paywall/x402"
	"github.com/go402/go402/paywall/x402/x402test"
)

func newFacilitator(t *testing.T, opts *x402.ClientOptions) (*x402test.Facilitator, *x402.FacilitatorClient) {
	t.Helper()
	f := x402test.NewFacilitator()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := x402.NewFacilitatorClient(srv.URL+"/", opts)
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func TestFacilitatorClient(t *testing.T) {
	ctx := context.Background()
	f, c := newFacilitator(t, nil)
	var p x402.PaymentPayload
	decode(t, x402test.Pay(usdc), &p)
	v, err := c.Verify(ctx, p, usdc)
	if err != nil || !v.IsValid || v.Payer != demoPayer {
		t.Fatalf("Verify = %+v, %v", v, err)
	}
	s, err := c.Settle(ctx, p, usdc)
	if err != nil || !s.Success || s.Transaction == "" || s.Network != usdc.Network {
		t.Fatalf("Settle = %+v, %v", s, err)
	}
	s, err = c.Settle(ctx, p, usdc)
	if err != nil || s.Success || s.ErrorReason != "invalid_transaction_state" {
		t.Errorf("second Settle = %+v, %v; want refused", s, err)
	}
	v, err = c.Verify(ctx, p, usdc)
	if err != nil || v.IsValid || v.InvalidReason != "invalid_transaction_state" {
		t.Errorf("Verify after settlement = %+v, %v", v, err)
	}
	sup, err := c.Supported(ctx)
	if err != nil || len(sup.Kinds) != 2 || sup.Kinds[0].Scheme != "exact" {
		t.Errorf("Supported = %+v, %v", sup, err)
	}

	// A version 1 payment, as the middleware hands it over: the demo
	// facilitator reads the version 1 wire form.
	req1 := usdc
	req1.Network = "base-sepolia"
	var fresh x402.PaymentPayload
	decode(t, x402test.Pay(usdc), &fresh)
	p1 := x402.PaymentPayload{X402Version: 1, Accepted: req1, Payload: fresh.Payload,
		Resource: &x402.Resource{URL: "https://api.example.com/weather"}}
	if v, err := c.Verify(ctx, p1, req1); err != nil || !v.IsValid {
		t.Errorf("Verify version 1 = %+v, %v", v, err)
	}
	if s, err := c.Settle(ctx, p1, req1); err != nil || !s.Success || s.Network != "base-sepolia" || s.Amount != "1000" {
		t.Errorf("Settle version 1 = %+v, %v", s, err)
	}
	if f.Settlements() != 2 {
		t.Errorf("settlements = %d", f.Settlements())
	}
}

func TestFacilitatorClientAuth(t *testing.T) {
	ctx := context.Background()
	f := x402test.NewFacilitator()
	f.Auth = "Bearer facilitator-secret"
	srv := httptest.NewServer(f)
	defer srv.Close()

	anon, _ := x402.NewFacilitatorClient(srv.URL, nil)
	_, err := anon.Supported(ctx)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("without credentials: %v", err)
	}
	if strings.Contains(err.Error(), srv.URL) || strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("error names the URL: %v", err)
	}

	static, _ := x402.NewFacilitatorClient(srv.URL, &x402.ClientOptions{Header: http.Header{"Authorization": {"Bearer facilitator-secret"}}})
	if _, err := static.Supported(ctx); err != nil {
		t.Errorf("static header: %v", err)
	}
	fn, _ := x402.NewFacilitatorClient(srv.URL, &x402.ClientOptions{Authorize: func(r *http.Request) error {
		r.Header.Set("Authorization", "Bearer facilitator-secret")
		return nil
	}})
	if _, err := fn.Supported(ctx); err != nil {
		t.Errorf("Authorize: %v", err)
	}
	failing, _ := x402.NewFacilitatorClient(srv.URL, &x402.ClientOptions{Authorize: func(*http.Request) error { return errors.New("no token") }})
	if _, err := failing.Supported(ctx); err == nil || !strings.Contains(err.Error(), "no token") {
		t.Errorf("failing Authorize: %v", err)
	}
}

func TestFacilitatorClientErrors(t *testing.T) {
	ctx := context.Background()
	var p x402.PaymentPayload
	decode(t, x402test.Pay(usdc), &p)

	t.Run("timeout", func(t *testing.T) {
		f, c := newFacilitator(t, &x402.ClientOptions{Timeout: 50 * time.Millisecond})
		f.SetVerify(x402test.Hang)
		start := time.Now()
		_, err := c.Verify(ctx, p, usdc)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Errorf("err = %v after %v, want DeadlineExceeded", err, time.Since(start))
		}
	})
	t.Run("500", func(t *testing.T) {
		f, c := newFacilitator(t, nil)
		f.SetSettle(x402test.Fail)
		if _, err := c.Settle(ctx, p, usdc); err == nil || !strings.Contains(err.Error(), "HTTP status 500") {
			t.Errorf("err = %v", err)
		}
	})
	for name, h := range map[string]http.HandlerFunc{
		"bad JSON": func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "<html>") },
		"too big": func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"x":"`+strings.Repeat("x", 2000)+`"}`)
		},
		"400 without reason": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"isValid":false}`)
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			defer srv.Close()
			c, _ := x402.NewFacilitatorClient(srv.URL, &x402.ClientOptions{MaxResponseBytes: 1000})
			if _, err := c.Verify(ctx, p, usdc); err == nil || !strings.HasPrefix(err.Error(), "x402: facilitator /verify") {
				t.Errorf("err = %v", err)
			}
		})
	}
	t.Run("400 refusal", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"isValid":false,"invalidReason":"invalid_scheme"}`)
		}))
		defer srv.Close()
		c, _ := x402.NewFacilitatorClient(srv.URL, nil)
		if v, err := c.Verify(ctx, p, usdc); err != nil || v.IsValid || v.InvalidReason != "invalid_scheme" {
			t.Errorf("Verify = %+v, %v; a 4xx refusal is an answer", v, err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		c, _ := x402.NewFacilitatorClient(srv.URL+"/path", nil)
		_, err := c.Verify(ctx, p, usdc)
		if err == nil || strings.Contains(err.Error(), "/path") || strings.Contains(err.Error(), srv.URL) {
			t.Errorf("err = %v; want an error without the URL", err)
		}
	})
}

func TestNewFacilitatorClient(t *testing.T) {
	for _, u := range []string{"", "x402.org/facilitator", "ftp://x402.org", "https://", "https://x402.org/f?token=1", "://bad"} {
		if _, err := x402.NewFacilitatorClient(u, nil); err == nil {
			t.Errorf("NewFacilitatorClient(%q) succeeded", u)
		}
	}
	if _, err := x402.NewFacilitatorClient("https://x402.org/facilitator", &x402.ClientOptions{MaxResponseBytes: -1}); err == nil {
		t.Error("negative MaxResponseBytes accepted")
	}
}
