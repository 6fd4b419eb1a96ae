package x402_test

import (
	"context"
	"encoding/base64"
	"errors"
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
)

func TestChallenge(t *testing.T) {
	e := newEnv(t, envConfig{route: x402.Route{Price: "0.001 USDC", MimeType: "application/json"}})
	resp, body := e.do(e.srv.URL + "/weather?api_key=sk_test_secret")
	wantStatus(t, resp, body, http.StatusPaymentRequired)
	m := wantCode(t, resp, body, x402.CodePaymentRequired)

	pr := paymentRequired(t, resp)
	if pr.X402Version != 2 || len(pr.Accepts) != 1 || pr.Accepts[0].Amount != "1000" || pr.Accepts[0].PayTo != usdc.PayTo {
		t.Errorf("PAYMENT-REQUIRED = %+v", pr)
	}
	if want := e.srv.URL + "/weather"; pr.Resource.URL != want {
		t.Errorf("resource.url = %q, want %q (no query)", pr.Resource.URL, want)
	}
	if pr.Resource.Description != "Weather report" || pr.Resource.MimeType != "application/json" || pr.Error != "" {
		t.Errorf("resource = %+v, error %q", pr.Resource, pr.Error)
	}
	if m["type"] != "https://paymentauth.org/problems/payment-required" || m["status"] != 402.0 {
		t.Errorf("type/status = %v/%v", m["type"], m["status"])
	}
	if d, _ := m["detail"].(string); !strings.Contains(d, "0.001 USDC") || !strings.Contains(d, "API key") {
		t.Errorf("detail = %q, want the price and the key alternative", d)
	}
	if m["x402Version"] != 2.0 || m["accepts"] == nil || m["resource"] == nil {
		t.Errorf("body lacks the challenge members: %s", body)
	}
	if strings.Contains(body, "sk_test_secret") || strings.Contains(resp.Header.Get(x402.HeaderPaymentRequired), "sk_test") {
		t.Error("the query string leaked into the challenge")
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", resp.Header.Get("Cache-Control"))
	}
	for _, h := range []string{"PAYMENT-REQUIRED", "PAYMENT-RESPONSE", "WWW-Authenticate", "Retry-After"} {
		if !contains(resp.Header.Get("Access-Control-Expose-Headers"), h) {
			t.Errorf("Access-Control-Expose-Headers = %q, lacks %s", resp.Header.Get("Access-Control-Expose-Headers"), h)
		}
	}
}

func TestDefaultPriceText(t *testing.T) {
	e := newEnv(t, envConfig{opts: &x402.Options{BaseURL: "https://api.example.com/"}})
	resp, body := e.get("X-Forwarded-Proto", "http", "X-Forwarded-Host", "evil.example")
	m := wantCode(t, resp, body, x402.CodePaymentRequired)
	if d, _ := m["detail"].(string); !strings.Contains(d, "1000 atomic units of USDC on eip155:84532") {
		t.Errorf("detail = %q", d)
	}
	if u := paymentRequired(t, resp).Resource.URL; u != "https://api.example.com/weather" {
		t.Errorf("resource.url = %q, want the BaseURL one", u)
	}
}

func TestForwardedHeadersNotTrusted(t *testing.T) {
	e := newEnv(t, envConfig{})
	resp, _ := e.get("X-Forwarded-Proto", "https")
	if u := paymentRequired(t, resp).Resource.URL; !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Errorf("resource.url = %q, want the connection's scheme and Host", u)
	}
}

func TestRoundTrip(t *testing.T) {
	var got x402.Payment
	e := newEnv(t, envConfig{handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = x402.PaymentFromContext(r.Context())
		if _, ok := paywall.CallerFromContext(r.Context()); ok {
			t.Error("a paid request has a paywall caller")
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"weather":"sunny"}`)
	})})

	resp, _ := e.get()
	sig := x402test.Pay(paymentRequired(t, resp).Accepts[0])
	resp, body := e.get(x402.HeaderPaymentSignature, sig)
	wantStatus(t, resp, body, http.StatusOK)
	if body != `{"weather":"sunny"}` {
		t.Errorf("body = %q", body)
	}
	sr := settleResponse(t, resp, x402.HeaderPaymentResponse)
	if !sr.Success || sr.Transaction == "" || sr.Network != usdc.Network || sr.Payer != demoPayer || sr.Amount != "1000" {
		t.Errorf("PAYMENT-RESPONSE = %+v", sr)
	}
	if !contains(resp.Header.Get("Access-Control-Expose-Headers"), "PAYMENT-RESPONSE") {
		t.Errorf("Access-Control-Expose-Headers = %q", resp.Header.Get("Access-Control-Expose-Headers"))
	}
	if e.fac.Settlements() != 1 || e.verifies.Load() != 1 {
		t.Errorf("settlements %d, verifies %d; want 1, 1", e.fac.Settlements(), e.verifies.Load())
	}
	if got.Version != 2 || got.Payer != demoPayer || got.Requirements.Amount != "1000" || got.Replay {
		t.Errorf("PaymentFromContext = %+v", got)
	}
	if e.balance() != 100 {
		t.Errorf("balance = %d; a paid request must not spend credits", e.balance())
	}
}

func TestSilentHandlerIsSettled(t *testing.T) {
	e := newEnv(t, envConfig{handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})})
	resp, body := e.get(x402.HeaderPaymentSignature, x402test.Pay(usdc))
	wantStatus(t, resp, body, http.StatusOK)
	if !settleResponse(t, resp, x402.HeaderPaymentResponse).Success || e.fac.Settlements() != 1 {
		t.Error("a handler that writes nothing answers 200 and is settled")
	}
}

func TestHandlerErrorIsNotSettled(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusNotFound, http.StatusInternalServerError, http.StatusServiceUnavailable} {
		e := newEnv(t, envConfig{handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "handler failed", status)
		})})
		resp, body := e.get(x402.HeaderPaymentSignature, x402test.Pay(usdc))
		wantStatus(t, resp, body, status)
		if body != "handler failed\n" || resp.Header.Get(x402.HeaderPaymentResponse) != "" {
			t.Errorf("%d: body %q, PAYMENT-RESPONSE %q", status, body, resp.Header.Get(x402.HeaderPaymentResponse))
		}
		if e.fac.Settlements() != 0 || e.verifies.Load() != 1 {
			t.Errorf("%d: settlements %d, verifies %d; want 0, 1", status, e.fac.Settlements(), e.verifies.Load())
		}
	}
}

func TestPanickingHandlerIsNotSettled(t *testing.T) {
	e := newEnv(t, envConfig{handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Partial", "1")
		panic(http.ErrAbortHandler)
	})})
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/weather", nil)
	req.Header.Set(x402.HeaderPaymentSignature, x402test.Pay(usdc))
	if resp, err := e.srv.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("status %d; want the connection aborted", resp.StatusCode)
	}
	if e.fac.Settlements() != 0 {
		t.Error("a panicking handler was settled")
	}
}

func TestSettlementFailureDropsOutput(t *testing.T) {
	writeErr := make(chan error, 1)
	outer := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Outer", "kept")
			next.ServeHTTP(w, r)
		})
	}
	e := newEnv(t, envConfig{handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Handler", "dropped")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusCreated)
		_, err := io.WriteString(w, "the secret weather")
		writeErr <- err
	})})
	e.srv.Config.Handler = outer(e.srv.Config.Handler)
	e.fac.SetSettle(x402test.Refuse)

	resp, body := e.get(x402.HeaderPaymentSignature, x402test.Pay(usdc))
	wantStatus(t, resp, body, http.StatusPaymentRequired)
	m := wantCode(t, resp, body, x402.CodeSettlementFailed)
	if strings.Contains(body, "secret") || resp.Header.Get("X-Handler") != "" {
		t.Errorf("handler output leaked: header %q, body %s", resp.Header.Get("X-Handler"), body)
	}
	if resp.Header.Get("X-Outer") != "kept" {
		t.Error("headers set before the route were lost")
	}
	if err := <-writeErr; !errors.Is(err, x402.ErrSettlementFailed) {
		t.Errorf("handler's Write returned %v, want ErrSettlementFailed", err)
	}
	sr := settleResponse(t, resp, x402.HeaderPaymentResponse)
	if sr.Success || sr.ErrorReason != "insufficient_funds" || sr.Network != usdc.Network {
		t.Errorf("PAYMENT-RESPONSE = %+v", sr)
	}
	if pr := paymentRequired(t, resp); pr.Error != "insufficient_funds" {
		t.Errorf("PAYMENT-REQUIRED error = %q", pr.Error)
	}
	if m["type"] != "https://paymentauth.org/problems/verification-failed" {
		t.Errorf("type = %v", m["type"])
	}
}

func TestStreaming(t *testing.T) {
	next := make(chan struct{})
	done := make(chan struct{})
	e := newEnv(t, envConfig{handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < 3; i++ {
			if _, err := io.WriteString(w, "data: tick\n\n"); err != nil {
				t.Error(err)
				return
			}
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Error(err)
				return
			}
			select { // the client must have read this chunk before we go on
			case <-next:
			case <-time.After(10 * time.Second):
				t.Error("the client never got a flushed chunk: the response is buffered")
				return
			}
		}
	})})
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/weather", nil)
	req.Header.Set(x402.HeaderPaymentSignature, x402test.Pay(usdc))
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	wantStatus(t, resp, "", http.StatusOK)
	if !settleResponse(t, resp, x402.HeaderPaymentResponse).Success {
		t.Error("not settled before streaming")
	}
	buf := make([]byte, len("data: tick\n\n"))
	for i := 0; i < 3; i++ {
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		select {
		case <-done:
			t.Fatalf("chunk %d arrived only after the handler returned", i)
		default:
		}
		next <- struct{}{}
	}
	<-done
	if e.fac.Settlements() != 1 {
		t.Errorf("settlements = %d", e.fac.Settlements())
	}
}

func TestHijackSettlesFirst(t *testing.T) {
	e := newEnv(t, envConfig{handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil { // settlement failed: the refusal is already sent
			if !errors.Is(err, x402.ErrSettlementFailed) {
				t.Error(err)
			}
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
		_ = brw.Flush()
	})})
	resp, body := e.get(x402.HeaderPaymentSignature, x402test.Pay(usdc))
	wantStatus(t, resp, body, http.StatusOK)
	if body != "ok" || e.fac.Settlements() != 1 {
		t.Errorf("body %q, settlements %d", body, e.fac.Settlements())
	}

	e.fac.SetSettle(x402test.Refuse)
	resp, body = e.get(x402.HeaderPaymentSignature, x402test.Pay(usdc))
	wantStatus(t, resp, body, http.StatusPaymentRequired)
}

func TestFacilitatorTimeouts(t *testing.T) {
	opts := &x402.Options{VerifyTimeout: 50 * time.Millisecond, SettleTimeout: 50 * time.Millisecond, RetryAfter: 7 * time.Second}
	t.Run("verify", func(t *testing.T) {
		var ran atomic.Bool
		e := newEnv(t, envConfig{opts: opts, handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran.Store(true) })})
		e.fac.SetVerify(x402test.Hang)
		start := time.Now()
		resp, body := e.get(x402.HeaderPaymentSignature, x402test.Pay(usdc))
		wantStatus(t, resp, body, http.StatusServiceUnavailable)
		wantCode(t, resp, body, x402.CodeFacilitatorUnavailable)
		if resp.Header.Get("Retry-After") != "7" || ran.Load() || time.Since(start) > 5*time.Second {
			t.Errorf("Retry-After %q, handler ran %v, took %v", resp.Header.Get("Retry-After"), ran.Load(), time.Since(start))
		}
	})
	t.Run("settle", func(t *testing.T) {
		e := newEnv(t, envConfig{opts: opts, handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "the secret weather")
		})})
		e.fac.SetSettle(x402test.Hang)
		resp, body := e.get(x402.HeaderPaymentSignature, x402test.Pay(usdc))
		wantStatus(t, resp, body, http.StatusServiceUnavailable)
		wantCode(t, resp, body, x402.CodeSettlementUnknown)
		if strings.Contains(body, "secret") || resp.Header.Get("Retry-After") != "7" {
			t.Errorf("Retry-After %q, body %s", resp.Header.Get("Retry-After"), body)
		}
		if sr := settleResponse(t, resp, x402.HeaderPaymentResponse); sr.Success || sr.ErrorReason != "unexpected_settle_error" {
			t.Errorf("PAYMENT-RESPONSE = %+v", sr)
		}
	})
}

func TestFacilitatorFailures(t *testing.T) {
	t.Run("verify 500", func(t *testing.T) {
		e := newEnv(t, envConfig{})
		e.fac.SetVerify(x402test.Fail)
		resp, body := e.get(x402.HeaderPaymentSignature, x402test.Pay(usdc))
		wantStatus(t, resp, body, http.StatusBadGateway)
		wantCode(t, resp, body, x402.CodeFacilitatorError)
		if resp.Header.Get("Retry-After") != "5" {
			t.Errorf("Retry-After = %q, want the default 5", resp.Header.Get("Retry-After"))
		}
	})
	t.Run("settle 500", func(t *testing.T) {
		e := newEnv(t, envConfig{})
		e.fac.SetSettle(x402test.Fail)
		resp, body := e.get(x402.HeaderPaymentSignature, x402test.Pay(usdc))
		wantStatus(t, resp, body, http.StatusBadGateway)
		wantCode(t, resp, body, x402.CodeSettlementUnknown)
		if strings.Contains(body, "sunny") {
			t.Error("handler output leaked")
		}
	})
	t.Run("facilitator down", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		client, _ := x402.NewFacilitatorClient(dead.URL, nil)
		pay, err := x402.New(client, nil)
		if err != nil {
			t.Fatal(err)
		}
		h := pay.Route(x402.Route{Mode: x402.PaymentOnly, Accepts: []x402.PaymentRequirements{usdc}})(http.NotFoundHandler())
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/weather", nil)
		req.Header.Set(x402.HeaderPaymentSignature, x402test.Pay(usdc))
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadGateway || rec.Header().Get("Retry-After") == "" {
			t.Errorf("status %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
		}
		if strings.Contains(rec.Body.String(), "127.0.0.1") || strings.Contains(rec.Body.String(), "refused") {
			t.Errorf("back-end error leaked: %s", rec.Body)
		}
	})
}

func TestMalformedPayment(t *testing.T) {
	e := newEnv(t, envConfig{})
	b64 := base64.StdEncoding.EncodeToString
	for name, value := range map[string]string{
		"not base64":       "%%%not base64%%%",
		"not JSON":         b64([]byte("hello")),
		"JSON array":       b64([]byte(`[1,2]`)),
		"trailing data":    b64([]byte(`{"x402Version":2} {}`)),
		"no accepted":      b64([]byte(`{"x402Version":2,"payload":{"a":1}}`)),
		"no payload":       b64([]byte(`{"x402Version":2,"accepted":{"scheme":"exact"}}`)),
		"wrong types":      b64([]byte(`{"x402Version":"2","accepted":{"scheme":"exact"},"payload":{}}`)),
		"too long":         b64([]byte(`{"pad":"` + strings.Repeat("x", 16<<10) + `"}`)),
		"white space only": "   ",
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := e.get(x402.HeaderPaymentSignature, value)
			if name == "white space only" { // an empty header is no payment
				wantStatus(t, resp, body, http.StatusPaymentRequired)
				return
			}
			wantStatus(t, resp, body, http.StatusPaymentRequired)
			m := wantCode(t, resp, body, x402.CodeInvalidPayment)
			if m["type"] != "https://paymentauth.org/problems/malformed-credential" || !strings.Contains(m["detail"].(string), "base64") ||
				!strings.Contains(m["detail"].(string), "at most 16384 bytes") {
				t.Errorf("type = %v, detail %v", m["type"], m["detail"])
			}
			if pr := paymentRequired(t, resp); len(pr.Accepts) != 1 || pr.Accepts[0].Amount != usdc.Amount {
				t.Errorf("PAYMENT-REQUIRED = %+v; a malformed payment must get a fresh challenge", pr)
			}
		})
	}
	if e.verifies.Load() != 0 {
		t.Errorf("verifies = %d; a malformed payment must not reach the facilitator", e.verifies.Load())
	}
}

func TestRejectedPayment(t *testing.T) {
	other := usdc
	other.Amount = "1"
	for _, c := range []struct {
		name, sig, reason, typ string
		refuse                 bool
	}{
		{"facilitator refuses", x402test.Pay(usdc), "insufficient_funds", "payment-insufficient", true},
		{"other price", x402test.Pay(other), "invalid_payment_requirements", "invalid-challenge", false},
		{"version 1 in PAYMENT-SIGNATURE", encode(t, map[string]any{"x402Version": 1, "accepted": usdc, "payload": map[string]any{"a": 1}}), "invalid_x402_version", "invalid-challenge", false},
		{"bad signature", encode(t, x402.PaymentPayload{X402Version: 2, Accepted: usdc, Payload: []byte(`{"signature":"forged","nonce":"1"}`)}), "invalid_payload", "verification-failed", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ran atomic.Bool
			e := newEnv(t, envConfig{handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran.Store(true) })})
			if c.refuse {
				e.fac.SetVerify(x402test.Refuse)
			}
			resp, body := e.get(x402.HeaderPaymentSignature, c.sig)
			wantStatus(t, resp, body, http.StatusPaymentRequired)
			m := wantCode(t, resp, body, x402.CodePaymentRejected)
			if m["type"] != "https://paymentauth.org/problems/"+c.typ || m["error"] != c.reason {
				t.Errorf("type %v, error %v; want %s, %s", m["type"], m["error"], c.typ, c.reason)
			}
			if pr := paymentRequired(t, resp); pr.Error != c.reason {
				t.Errorf("PAYMENT-REQUIRED error = %q, want %q", pr.Error, c.reason)
			}
			if ran.Load() || e.fac.Settlements() != 0 {
				t.Error("a rejected payment was served or settled")
			}
		})
	}
}

func TestModes(t *testing.T) {
	type want struct {
		status  int
		code    paywall.Code // "" for a 200
		charged bool         // 10 credits spent
		settled bool
		x402    bool // PAYMENT-REQUIRED present
	}
	pay := func() string { return x402test.Pay(usdc) }
	for _, c := range []struct {
		name    string
		mode    x402.Mode
		headers func() []string
		want    want
	}{
		{"either/key", x402.Either, func() []string { return []string{"Authorization", "Bearer " + keyRich} }, want{200, "", true, false, false}},
		{"either/x-api-key", x402.Either, func() []string { return []string{"X-API-Key", keyRich} }, want{200, "", true, false, false}},
		{"either/key and payment", x402.Either, func() []string {
			return []string{"Authorization", "Bearer " + keyRich, x402.HeaderPaymentSignature, pay()}
		}, want{200, "", true, false, false}},
		{"either/poor key", x402.Either, func() []string { return []string{"Authorization", "Bearer " + keyPoor} }, want{402, paywall.CodeInsufficientCredits, false, false, true}},
		{"either/unknown key", x402.Either, func() []string { return []string{"Authorization", "Bearer sk_test_nobody_00000000"} }, want{401, paywall.CodeInvalidKey, false, false, false}},
		{"either/payment", x402.Either, func() []string { return []string{x402.HeaderPaymentSignature, pay()} }, want{200, "", false, true, false}},
		{"either/nothing", x402.Either, func() []string { return nil }, want{402, x402.CodePaymentRequired, false, false, true}},
		{"payment-only/key", x402.PaymentOnly, func() []string { return []string{"Authorization", "Bearer " + keyRich} }, want{402, x402.CodePaymentRequired, false, false, true}},
		{"payment-only/key and payment", x402.PaymentOnly, func() []string {
			return []string{"Authorization", "Bearer " + keyRich, x402.HeaderPaymentSignature, pay()}
		}, want{200, "", false, true, false}},
		{"keys-only/payment", x402.KeysOnly, func() []string { return []string{x402.HeaderPaymentSignature, pay()} }, want{401, paywall.CodeMissingKey, false, false, false}},
		{"keys-only/poor key", x402.KeysOnly, func() []string { return []string{"Authorization", "Bearer " + keyPoor} }, want{402, paywall.CodeInsufficientCredits, false, false, false}},
		{"keys-only/key", x402.KeysOnly, func() []string { return []string{"Authorization", "Bearer " + keyRich} }, want{200, "", true, false, false}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, envConfig{route: x402.Route{Mode: c.mode}})
			resp, body := e.get(c.headers()...)
			wantStatus(t, resp, body, c.want.status)
			if c.want.code != "" {
				wantCode(t, resp, body, c.want.code)
			}
			if charged := e.balance() == 90; charged != c.want.charged {
				t.Errorf("balance %d, want charged %v", e.balance(), c.want.charged)
			}
			if settled := e.fac.Settlements() == 1; settled != c.want.settled {
				t.Errorf("settlements %d, want settled %v", e.fac.Settlements(), c.want.settled)
			}
			if has := resp.Header.Get(x402.HeaderPaymentRequired) != ""; has != c.want.x402 {
				t.Errorf("PAYMENT-REQUIRED present %v, want %v", has, c.want.x402)
			}
			if c.want.x402 {
				if pr := paymentRequired(t, resp); len(pr.Accepts) != 1 || pr.Accepts[0].Amount != usdc.Amount {
					t.Errorf("PAYMENT-REQUIRED = %+v", pr)
				}
			}
			for _, k := range []string{keyRich, keyPoor} {
				if strings.Contains(body, k) || strings.Contains(resp.Header.Get(x402.HeaderPaymentRequired), k) {
					t.Error("a key leaked into the response")
				}
			}
		})
	}
}

// withID returns a PAYMENT-SIGNATURE value paying for usdc with a demo
// payment that carries the payment-identifier id.
func withID(t *testing.T, id string) string {
	t.Helper()
	var p x402.PaymentPayload
	decode(t, x402test.Pay(usdc), &p)
	p.Extensions = []byte(`{"payment-identifier":{"info":{"required":false,"id":"` + id + `"}}}`)
	return encode(t, p)
}

func TestRetryByPayer(t *testing.T) {
	var replays atomic.Int32
	e := newEnv(t, envConfig{
		opts: &x402.Options{RetryIdentity: func(r *http.Request) string { return r.Header.Get("X-Session") }},
		handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p, _ := x402.PaymentFromContext(r.Context()); p.Replay {
				replays.Add(1)
			}
			_, _ = io.WriteString(w, "sunny")
		}),
	})
	resp, body := e.get()
	if ext, ok := paymentRequired(t, resp).Extensions["payment-identifier"].(map[string]any); !ok || ext["info"] == nil {
		t.Errorf("the challenge does not offer payment-identifier: %s", body)
	}
	sig := withID(t, "pay_7d5d747be160e280504c099d984bcfe0")
	first, body := e.get(x402.HeaderPaymentSignature, sig, "X-Session", "alice")
	wantStatus(t, first, body, http.StatusOK)

	e.clock.Advance(9 * time.Minute)
	// The payer's own retry, in another base64 dialect, is served again.
	second, body := e.get(x402.HeaderPaymentSignature, strings.TrimRight(sig, "="), "X-Session", "alice")
	wantStatus(t, second, body, http.StatusOK)
	if body != "sunny" || replays.Load() != 1 {
		t.Errorf("body %q, replays %d", body, replays.Load())
	}
	if a, b := first.Header.Get(x402.HeaderPaymentResponse), second.Header.Get(x402.HeaderPaymentResponse); a != b {
		t.Errorf("a retry got another PAYMENT-RESPONSE: %s vs %s", a, b)
	}
	// Anyone else with the same header is refused, and so is a payment
	// without an id.
	for _, c := range []struct{ name, sig, session string }{
		{"second client", sig, "mallory"},
		{"no identity", sig, ""},
	} {
		resp, body := e.get(x402.HeaderPaymentSignature, c.sig, "X-Session", c.session)
		wantStatus(t, resp, body, http.StatusPaymentRequired)
		if m := wantCode(t, resp, body, x402.CodePaymentRejected); m["error"] != "invalid_transaction_state" {
			t.Errorf("%s: error = %v", c.name, m["error"])
		}
	}
	noID := x402test.Pay(usdc)
	resp, body = e.get(x402.HeaderPaymentSignature, noID, "X-Session", "bob")
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = e.get(x402.HeaderPaymentSignature, noID, "X-Session", "bob")
	wantStatus(t, resp, body, http.StatusPaymentRequired)
	if e.fac.Settlements() != 2 || e.verifies.Load() != 2 || replays.Load() != 1 {
		t.Errorf("settlements %d, verifies %d, replays %d; want 2, 2, 1", e.fac.Settlements(), e.verifies.Load(), replays.Load())
	}

	e.clock.Advance(2 * time.Minute) // past the 10-minute window: the facilitator decides
	third, body := e.get(x402.HeaderPaymentSignature, sig, "X-Session", "alice")
	wantStatus(t, third, body, http.StatusPaymentRequired)
	if m := wantCode(t, third, body, x402.CodePaymentRejected); m["error"] != "invalid_transaction_state" {
		t.Errorf("error = %v", m["error"])
	}
	if e.fac.Settlements() != 2 || e.verifies.Load() != 3 {
		t.Errorf("settlements %d, verifies %d", e.fac.Settlements(), e.verifies.Load())
	}
}

func TestReplayOff(t *testing.T) {
	e := newEnv(t, envConfig{opts: &x402.Options{ReplayWindow: -1}})
	sig := x402test.Pay(usdc)
	resp, body := e.get(x402.HeaderPaymentSignature, sig)
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = e.get(x402.HeaderPaymentSignature, sig)
	wantStatus(t, resp, body, http.StatusPaymentRequired)
	if e.fac.Settlements() != 1 || e.verifies.Load() != 2 {
		t.Errorf("settlements %d, verifies %d; want 1, 2", e.fac.Settlements(), e.verifies.Load())
	}
	// Without the memory a lost settlement cannot be recovered by the
	// server, and the answer says so.
	e.fac.SetSettle(x402test.Fail)
	resp, body = e.get(x402.HeaderPaymentSignature, x402test.Pay(usdc))
	wantStatus(t, resp, body, http.StatusBadGateway)
	if m := wantCode(t, resp, body, x402.CodeSettlementUnknown); !strings.Contains(m["detail"].(string), "before paying again") {
		t.Errorf("detail = %v", m["detail"])
	}
}

// gateFacilitator blocks Verify until released, to hold a payment in
// flight.
type gateFacilitator struct {
	x402.Facilitator
	entered chan struct{}
	release chan struct{}
}

func (g *gateFacilitator) Verify(ctx context.Context, p x402.PaymentPayload, r x402.PaymentRequirements) (x402.VerifyResponse, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.Facilitator.Verify(ctx, p, r)
}

func TestConcurrentDuplicate(t *testing.T) {
	fac := x402test.NewFacilitator()
	facSrv := httptest.NewServer(fac)
	defer facSrv.Close()
	client, _ := x402.NewFacilitatorClient(facSrv.URL, nil)
	gate := &gateFacilitator{Facilitator: client, entered: make(chan struct{}), release: make(chan struct{})}
	pay, err := x402.New(gate, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := pay.Route(x402.Route{Mode: x402.PaymentOnly, Accepts: []x402.PaymentRequirements{usdc}})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "sunny") }))
	sig := x402test.Pay(usdc)
	serve := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/weather", nil)
		req.Header.Set(x402.HeaderPaymentSignature, sig)
		h.ServeHTTP(rec, req)
		return rec
	}
	var wg sync.WaitGroup
	var first *httptest.ResponseRecorder
	wg.Add(1)
	go func() { defer wg.Done(); first = serve() }()
	<-gate.entered
	dup := serve()
	if dup.Code != http.StatusConflict || dup.Header().Get("Retry-After") != "1" || !strings.Contains(dup.Body.String(), string(x402.CodePaymentInProgress)) {
		t.Errorf("duplicate in flight: %d, Retry-After %q, %s", dup.Code, dup.Header().Get("Retry-After"), dup.Body)
	}
	close(gate.release)
	wg.Wait()
	if first.Code != http.StatusOK || fac.Settlements() != 1 {
		t.Errorf("first: %d, settlements %d", first.Code, fac.Settlements())
	}
	if again := serve(); again.Code != http.StatusPaymentRequired || fac.Settlements() != 1 {
		t.Errorf("the same payment after settlement: %d, settlements %d; want 402, 1", again.Code, fac.Settlements())
	}
}

func TestOnSettle(t *testing.T) {
	var mu sync.Mutex
	var got []x402.SettleResponse
	e := newEnv(t, envConfig{opts: &x402.Options{OnSettle: func(ctx context.Context, p x402.Payment, sr x402.SettleResponse, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil || p.Requirements.Amount != "1000" {
			t.Errorf("OnSettle(%+v, %v)", p, err)
		}
		got = append(got, sr)
	}}})
	resp, body := e.get(x402.HeaderPaymentSignature, x402test.Pay(usdc))
	wantStatus(t, resp, body, http.StatusOK)
	e.fac.SetSettle(x402test.Refuse)
	resp, body = e.get(x402.HeaderPaymentSignature, x402test.Pay(usdc))
	wantStatus(t, resp, body, http.StatusPaymentRequired)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || !got[0].Success || got[1].Success {
		t.Errorf("OnSettle saw %+v", got)
	}
}

func TestV1(t *testing.T) {
	e := newEnv(t, envConfig{opts: &x402.Options{V1: true}, route: x402.Route{MimeType: "application/json"}})
	resp, body := e.get()
	wantStatus(t, resp, body, http.StatusPaymentRequired)
	m := wantCode(t, resp, body, x402.CodePaymentRequired)
	if m["x402Version"] != 1.0 || m["error"] != "X-PAYMENT header is required" {
		t.Errorf("v1 body: %s", body)
	}
	if pr := paymentRequired(t, resp); pr.X402Version != 2 {
		t.Error("PAYMENT-REQUIRED must stay version 2")
	}
	accepts, _ := m["accepts"].([]any)
	if len(accepts) != 1 {
		t.Fatalf("accepts = %v", m["accepts"])
	}
	a := accepts[0].(map[string]any)
	if a["maxAmountRequired"] != "1000" || a["network"] != "base-sepolia" || a["resource"] != e.srv.URL+"/weather" ||
		a["description"] != "Weather report" || a["mimeType"] != "application/json" {
		t.Errorf("v1 requirement: %v", a)
	}
	resp, body = e.get(headerPaymentV1, payV1(t, "exact", "base-sepolia"))
	wantStatus(t, resp, body, http.StatusOK)
	if sr := settleResponse(t, resp, headerPaymentResponseV1); !sr.Success || sr.Network != "base-sepolia" {
		t.Errorf("X-PAYMENT-RESPONSE = %+v", sr)
	}
	if resp.Header.Get(x402.HeaderPaymentResponse) != "" {
		t.Error("a version 1 payment got a version 2 receipt")
	}
	// Version 2 still works beside it.
	resp, body = e.get(x402.HeaderPaymentSignature, x402test.Pay(usdc))
	wantStatus(t, resp, body, http.StatusOK)
	if e.fac.Settlements() != 2 {
		t.Errorf("settlements = %d", e.fac.Settlements())
	}
}

func TestV1Off(t *testing.T) {
	e := newEnv(t, envConfig{})
	resp, body := e.get(headerPaymentV1, payV1(t, "exact", "base-sepolia"))
	wantStatus(t, resp, body, http.StatusPaymentRequired)
	wantCode(t, resp, body, x402.CodePaymentRequired)
}

func TestNew(t *testing.T) {
	client, _ := x402.NewFacilitatorClient("http://127.0.0.1:1", nil)
	for _, c := range []struct {
		f    x402.Facilitator
		opts *x402.Options
		want string
	}{
		{nil, nil, "facilitator is nil"},
		{client, &x402.Options{BaseURL: "api.example.com"}, "BaseURL"},
		{client, &x402.Options{BaseURL: "https://api.example.com/?x=1"}, "BaseURL"},
		{client, &x402.Options{VerifyTimeout: -1}, "VerifyTimeout"},
		{client, &x402.Options{SettleTimeout: -1}, "SettleTimeout"},
		{client, &x402.Options{RetryAfter: -1}, "RetryAfter"},
	} {
		if _, err := x402.New(c.f, c.opts); err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "x402: ") {
			t.Errorf("New(%+v) = %v, want an error about %s", c.opts, err, c.want)
		}
	}
	if _, err := x402.New(client, nil); err != nil {
		t.Errorf("New with defaults: %v", err)
	}
}

func TestRouteValidate(t *testing.T) {
	keys := func(h http.Handler) http.Handler { return h }
	bad := func(f func(*x402.PaymentRequirements)) x402.Route {
		a := usdc
		f(&a)
		return x402.Route{Accepts: []x402.PaymentRequirements{a}, Keys: keys}
	}
	for _, c := range []struct {
		rt   x402.Route
		want string
	}{
		{x402.Route{Accepts: []x402.PaymentRequirements{usdc}}, "Keys"},
		{x402.Route{Mode: x402.KeysOnly}, "Keys"},
		{x402.Route{Keys: keys}, "Accepts is empty"},
		{x402.Route{Mode: 7, Keys: keys}, "Mode(7)"},
		{bad(func(a *x402.PaymentRequirements) { a.Scheme = "" }), "Scheme"},
		{bad(func(a *x402.PaymentRequirements) { a.Network = "base" }), "CAIP-2"},
		{bad(func(a *x402.PaymentRequirements) { a.Amount = "0.001" }), "Amount"},
		{bad(func(a *x402.PaymentRequirements) { a.Amount = "" }), "Amount"},
		{bad(func(a *x402.PaymentRequirements) { a.Asset = "" }), "Asset"},
		{bad(func(a *x402.PaymentRequirements) { a.PayTo = "" }), "PayTo"},
		{bad(func(a *x402.PaymentRequirements) { a.MaxTimeoutSeconds = 0 }), "MaxTimeoutSeconds"},
	} {
		err := c.rt.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate() = %v, want an error about %s", err, c.want)
		}
	}
	for _, ok := range []x402.Route{
		{Accepts: []x402.PaymentRequirements{usdc}, Keys: keys},
		{Accepts: []x402.PaymentRequirements{usdc}, Mode: x402.PaymentOnly},
		{Mode: x402.KeysOnly, Keys: keys},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%v) = %v", ok.Mode, err)
		}
	}

	client, _ := x402.NewFacilitatorClient("http://127.0.0.1:1", nil)
	pay, _ := x402.New(client, nil)
	defer func() {
		if r := recover(); r == nil {
			t.Error("Route with an invalid Route did not panic")
		}
	}()
	pay.Route(x402.Route{})
}

func TestHijackUnsupportedIsNotSettled(t *testing.T) {
	e := newEnv(t, envConfig{})
	var hijackErr error
	h := e.pay.Route(x402.Route{Mode: x402.PaymentOnly, Accepts: []x402.PaymentRequirements{usdc}})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _, hijackErr = http.NewResponseController(w).Hijack()
		}))
	req := httptest.NewRequest(http.MethodGet, "/weather", nil)
	req.Header.Set(x402.HeaderPaymentSignature, x402test.Pay(usdc))
	rec := httptest.NewRecorder() // not a Hijacker, like an HTTP/2 stream
	h.ServeHTTP(rec, req)
	if !errors.Is(hijackErr, http.ErrNotSupported) {
		t.Errorf("Hijack error = %v, want ErrNotSupported", hijackErr)
	}
	// The handler returned without writing: 200, settled once at return.
	if rec.Code != http.StatusOK || e.fac.Settlements() != 1 {
		t.Errorf("status %d, settlements %d", rec.Code, e.fac.Settlements())
	}
}
