package x402_test

import (
	"context"
	"encoding/json"
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

func newFacilitator(t *testing.T, client *http.Client) (*x402test.Facilitator, *x402.FacilitatorClient) {
	t.Helper()
	f := x402test.NewFacilitator()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := x402.NewFacilitatorClient(srv.URL+"/", client)
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

// bearer is a RoundTripper that adds a token to every request, as a
// caller's credentials for the facilitator would; err, if set, refuses the
// request instead.
type bearer struct {
	token string
	err   error
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.err != nil {
		return nil, b.err
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func TestFacilitatorClientAuth(t *testing.T) {
	ctx := context.Background()
	f := x402test.NewFacilitator()
	f.Auth = "Bearer facilitator-secret"
	srv := httptest.NewServer(f)
	defer srv.Close()
	var p x402.PaymentPayload
	decode(t, x402test.Pay(usdc), &p)

	anon, _ := x402.NewFacilitatorClient(srv.URL, nil)
	_, err := anon.Verify(ctx, p, usdc)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("without credentials: %v", err)
	}
	if strings.Contains(err.Error(), srv.URL) || strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("error names the URL: %v", err)
	}

	authed, _ := x402.NewFacilitatorClient(srv.URL, &http.Client{Transport: bearer{token: "facilitator-secret"}})
	if v, err := authed.Verify(ctx, p, usdc); err != nil || !v.IsValid {
		t.Errorf("with credentials: %+v, %v", v, err)
	}
	failing, _ := x402.NewFacilitatorClient(srv.URL, &http.Client{Transport: bearer{err: errors.New("no token")}})
	_, err = failing.Verify(ctx, p, usdc)
	if err == nil || !strings.Contains(err.Error(), "no token") || strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("failing transport: %v", err)
	}
}

func TestFacilitatorClientErrors(t *testing.T) {
	ctx := context.Background()
	var p x402.PaymentPayload
	decode(t, x402test.Pay(usdc), &p)

	t.Run("timeout", func(t *testing.T) {
		f, c := newFacilitator(t, nil)
		f.SetVerify(x402test.Hang)
		ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
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
			_, _ = io.WriteString(w, `{"x":"`+strings.Repeat("x", 1<<20)+`"}`)
		},
		"400 without reason": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"isValid":false}`)
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			defer srv.Close()
			c, _ := x402.NewFacilitatorClient(srv.URL, nil)
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
}

// The demo facilitator answers GET /supported as a real one does.
func TestDemoFacilitatorSupported(t *testing.T) {
	srv := httptest.NewServer(x402test.NewFacilitator())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/supported")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sup struct {
		Kinds []struct {
			X402Version int    `json:"x402Version"`
			Scheme      string `json:"scheme"`
			Network     string `json:"network"`
		} `json:"kinds"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&sup); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /supported: %d, %v", resp.StatusCode, err)
	}
	if len(sup.Kinds) != 2 || sup.Kinds[0].X402Version != 2 || sup.Kinds[0].Network != "eip155:84532" ||
		sup.Kinds[1].X402Version != 1 || sup.Kinds[1].Network != "base-sepolia" {
		t.Errorf("kinds = %+v", sup.Kinds)
	}
}
