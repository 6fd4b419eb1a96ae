package x402_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/paywall/x402"
	"github.com/go402/go402/paywall/x402/x402test"
	"github.com/go402/go402/store"
)

// The version 1 header names, and the payer of x402test's payments.
const (
	headerPaymentV1         = "X-PAYMENT"
	headerPaymentResponseV1 = "X-PAYMENT-RESPONSE"
	demoPayer               = "0x000000000000000000000000000000000000dE30"
)

// decode decodes a base64 JSON header value into out.
func decode(t testing.TB, v string, out any) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		t.Fatalf("%q is not base64: %v", v, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
}

// encode returns v as a base64 JSON header value.
func encode(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// payV1 returns an X-PAYMENT value paying for scheme on network with a
// demo payment (x402 version 1).
func payV1(t testing.TB, scheme, network string) string {
	t.Helper()
	var p x402.PaymentPayload
	decode(t, x402test.Pay(usdc), &p)
	return encode(t, map[string]any{"x402Version": 1, "scheme": scheme, "network": network, "payload": p.Payload})
}

// Demo keys of the test store.
const (
	keyRich = "sk_test_rich_0123456789abcdef" // 100 credits
	keyPoor = "sk_test_poor_0123456789abcdef" // 0 credits
)

// usdc is the route price of most tests: 0.001 USDC on Base Sepolia.
var usdc = x402.PaymentRequirements{
	Scheme:            "exact",
	Network:           "eip155:84532",
	Amount:            "1000",
	Asset:             "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
	PayTo:             "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
	MaxTimeoutSeconds: 60,
	Extra:             map[string]any{"name": "USDC", "version": "2"},
}

// clock is an injectable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a priced route on a real loopback server, in front of a demo
// facilitator on another.
type env struct {
	t        *testing.T
	fac      *x402test.Facilitator
	verifies atomic.Int64 // POST /verify requests the facilitator got
	store    *store.Memory
	pay      *x402.Payments
	srv      *httptest.Server
	clock    *clock
}

type envConfig struct {
	opts    *x402.Options
	route   x402.Route
	handler http.Handler
	// facilitator, if set, wraps the demo facilitator's handler.
	facilitator func(http.Handler) http.Handler
}

// newEnv serves handler at /weather, priced with usdc in mode Either
// unless cfg says otherwise, with 10 credits per keyed request.
func newEnv(t *testing.T, cfg envConfig) *env {
	t.Helper()
	e := &env{t: t, fac: x402test.NewFacilitator(), clock: newClock()}
	var fh http.Handler = e.fac
	if cfg.facilitator != nil {
		fh = cfg.facilitator(fh)
	}
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/verify") {
			e.verifies.Add(1)
		}
		fh.ServeHTTP(w, r)
	})
	facSrv := httptest.NewServer(counted)
	t.Cleanup(facSrv.Close)
	client, err := x402.NewFacilitatorClient(facSrv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	e.store = store.NewMemory(nil)
	for _, a := range []struct {
		key     string
		balance int64
	}{{keyRich, 100}, {keyPoor, 0}} {
		id := "acct_" + a.key[8:12]
		if err := e.store.PutAccount(ctx, store.Account{ID: id, Plan: "pro", Balance: a.balance}); err != nil {
			t.Fatal(err)
		}
		if err := e.store.PutKey(ctx, store.NewKey(a.key, id)); err != nil {
			t.Fatal(err)
		}
	}
	pw, err := paywall.New(e.store, nil)
	if err != nil {
		t.Fatal(err)
	}

	opts := x402.Options{}
	if cfg.opts != nil {
		opts = *cfg.opts
	}
	if opts.Clock == nil {
		opts.Clock = e.clock.Now
	}
	e.pay, err = x402.New(client, &opts)
	if err != nil {
		t.Fatal(err)
	}
	rt := cfg.route
	if rt.Accepts == nil && rt.Mode != x402.KeysOnly {
		rt.Accepts = []x402.PaymentRequirements{usdc}
	}
	if rt.Keys == nil && rt.Mode != x402.PaymentOnly {
		rt.Keys = func(h http.Handler) http.Handler { return pw.Authenticate(pw.Charge(10)(h)) }
	}
	if rt.Description == "" {
		rt.Description = "Weather report"
	}
	h := cfg.handler
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"weather":"sunny"}`)
		})
	}
	mux := http.NewServeMux()
	mux.Handle("/weather", e.pay.Route(rt)(h))
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// get sends GET /weather with the given headers (name, value, name, …).
func (e *env) get(headers ...string) (*http.Response, string) {
	e.t.Helper()
	return e.do(e.srv.URL+"/weather", headers...)
}

func (e *env) do(url string, headers ...string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, string(body)
}

// balance returns the credits of the account of keyRich.
func (e *env) balance() int64 {
	e.t.Helper()
	a, err := e.store.Account(context.Background(), "acct_rich")
	if err != nil {
		e.t.Fatal(err)
	}
	return a.Balance
}

// problem decodes a problem+json body.
func problem(t *testing.T, resp *http.Response, body string) map[string]any {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	return m
}

func paymentRequired(t *testing.T, resp *http.Response) x402.PaymentRequired {
	t.Helper()
	v := resp.Header.Get(x402.HeaderPaymentRequired)
	if v == "" {
		t.Fatalf("no PAYMENT-REQUIRED header (status %d)", resp.StatusCode)
	}
	var pr x402.PaymentRequired
	decode(t, v, &pr)
	return pr
}

func settleResponse(t *testing.T, resp *http.Response, name string) x402.SettleResponse {
	t.Helper()
	v := resp.Header.Get(name)
	if v == "" {
		t.Fatalf("no %s header (status %d)", name, resp.StatusCode)
	}
	var sr x402.SettleResponse
	decode(t, v, &sr)
	return sr
}

func wantStatus(t *testing.T, resp *http.Response, body string, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, want, body)
	}
}

func wantCode(t *testing.T, resp *http.Response, body string, want paywall.Code) map[string]any {
	t.Helper()
	m := problem(t, resp, body)
	if m["code"] != string(want) {
		t.Fatalf("code = %v, want %s; body %s", m["code"], want, body)
	}
	return m
}

func contains(list, item string) bool {
	for _, s := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(s), item) {
			return true
		}
	}
	return false
}
