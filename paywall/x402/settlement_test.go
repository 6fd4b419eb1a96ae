package x402_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go402/go402/paywall/x402"
	"github.com/go402/go402/paywall/x402/x402test"
)

// lostAnswer wraps a facilitator: while on, POST /settle is passed to f
// (which settles), and then its answer is lost: the client gets 500, or,
// with hang, nothing until it gives up.
type lostAnswer struct {
	f    http.Handler
	hang bool
	on   atomic.Bool
}

func (l *lostAnswer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !l.on.Load() || !strings.HasSuffix(r.URL.Path, "/settle") {
		l.f.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	l.f.ServeHTTP(rec, r)
	if l.hang {
		<-r.Context().Done()
		return
	}
	http.Error(w, "upstream timeout", http.StatusInternalServerError)
}

// header decodes a base64 JSON header into a map.
func header(t *testing.T, resp *http.Response, name string) map[string]any {
	t.Helper()
	v := resp.Header.Get(name)
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		t.Fatalf("%s %q is not base64: %v", name, v, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s is not JSON: %s", name, raw)
	}
	return m
}

func TestUnknownSettlement(t *testing.T) {
	for _, c := range []struct {
		name     string
		hang     bool
		status   int
		settled  bool // the lost attempt went through
		failOnly bool // the facilitator failed without settling
	}{
		{name: "settled, then 500", status: http.StatusBadGateway, settled: true},
		{name: "settled, then hung", hang: true, status: http.StatusServiceUnavailable, settled: true},
		{name: "500 without settling", status: http.StatusBadGateway, failOnly: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var runs atomic.Int32
			var lost *lostAnswer
			e := newEnv(t, envConfig{
				opts: &x402.Options{SettleTimeout: 200 * time.Millisecond},
				handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					runs.Add(1)
					_, _ = io.WriteString(w, "sunny")
				}),
				facilitator: func(f http.Handler) http.Handler {
					lost = &lostAnswer{f: f, hang: c.hang}
					return lost
				},
			})
			if c.failOnly {
				e.fac.SetSettle(x402test.Fail)
			} else {
				lost.on.Store(true)
			}
			sig := x402test.Pay(usdc)
			resp, body := e.get(x402.HeaderPaymentSignature, sig)
			wantStatus(t, resp, body, c.status)
			m := wantCode(t, resp, body, "settlement_unknown")
			detail, _ := m["detail"].(string)
			if strings.Contains(detail, "nothing was charged") || !strings.Contains(detail, "same PAYMENT-SIGNATURE") {
				t.Errorf("detail = %q", detail)
			}
			if strings.Contains(body, "sunny") {
				t.Error("handler output leaked")
			}
			if want := map[bool]int{true: 1, false: 0}[c.settled]; e.fac.Settlements() != want {
				t.Fatalf("settlements after the lost answer = %d, want %d", e.fac.Settlements(), want)
			}

			// The facilitator answers again; the payer retries the same payment.
			lost.on.Store(false)
			e.fac.SetSettle(x402test.Accept)
			resp, body = e.get(x402.HeaderPaymentSignature, sig)
			wantStatus(t, resp, body, http.StatusOK)
			if body != "sunny" || e.fac.Settlements() != 1 {
				t.Errorf("retry: body %q, settlements %d; want one settlement in all", body, e.fac.Settlements())
			}
			if pr := header(t, resp, x402.HeaderPaymentResponse); pr["success"] != true || pr["network"] != usdc.Network {
				t.Errorf("PAYMENT-RESPONSE of the retry = %v", pr)
			}

			// The payment bought one response; a third send gets none.
			resp, body = e.get(x402.HeaderPaymentSignature, sig)
			wantStatus(t, resp, body, http.StatusPaymentRequired)
			if runs.Load() != 2 || e.fac.Settlements() != 1 {
				t.Errorf("handler runs %d (want 2: the lost answer and the retry), settlements %d", runs.Load(), e.fac.Settlements())
			}
		})
	}
}

func TestUnknownSettlementRefusedOnRetry(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.fac.SetSettle(x402test.Fail)
	sig := x402test.Pay(usdc)
	resp, body := e.get(x402.HeaderPaymentSignature, sig)
	wantStatus(t, resp, body, http.StatusBadGateway)
	wantCode(t, resp, body, "settlement_unknown")

	e.fac.SetSettle(x402test.Refuse)
	resp, body = e.get(x402.HeaderPaymentSignature, sig)
	wantStatus(t, resp, body, http.StatusPaymentRequired)
	m := wantCode(t, resp, body, x402.CodeSettlementFailed)
	if !strings.Contains(m["detail"].(string), "nothing was charged") || e.fac.Settlements() != 0 {
		t.Errorf("detail %v, settlements %d", m["detail"], e.fac.Settlements())
	}
}

func TestReplayBySecondClient(t *testing.T) {
	var runs atomic.Int32
	e := newEnv(t, envConfig{handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		_, _ = io.WriteString(w, "sunny")
	})})
	sig := x402test.Pay(usdc)
	resp, body := e.get(x402.HeaderPaymentSignature, sig)
	wantStatus(t, resp, body, http.StatusOK)

	// Someone who saw the header sends it again, in another base64 dialect.
	e.clock.Advance(time.Minute)
	resp, body = e.get(x402.HeaderPaymentSignature, strings.TrimRight(sig, "="))
	wantStatus(t, resp, body, http.StatusPaymentRequired)
	if m := wantCode(t, resp, body, x402.CodePaymentRejected); m["error"] != "invalid_transaction_state" {
		t.Errorf("error = %v", m["error"])
	}
	if runs.Load() != 1 || e.fac.Settlements() != 1 {
		t.Errorf("handler runs %d, settlements %d; want 1, 1", runs.Load(), e.fac.Settlements())
	}
}

// settleAnswer wraps a facilitator so that POST /settle answers answer.
type settleAnswer struct {
	f      http.Handler
	answer string
}

func (s settleAnswer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/settle") {
		s.f.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, s.answer)
}

func TestReceiptForwardsFacilitator(t *testing.T) {
	for _, c := range []struct {
		name, answer string
		status       int
		want         map[string]any
	}{
		{"failure", `{"success":false,"errorReason":"invalid_exact_evm_transaction_failed","errorMessage":"execution reverted",` +
			`"transaction":"0xfa11","network":"eip155:84532","payer":"0xp","extensions":{"k":"v"}}`,
			http.StatusPaymentRequired, map[string]any{"success": false, "errorReason": "invalid_exact_evm_transaction_failed",
				"errorMessage": "execution reverted", "transaction": "0xfa11", "network": "eip155:84532", "payer": "0xp",
				"extensions": map[string]any{"k": "v"}}},
		{"success", `{"success":true,"transaction":"0x5e771e","network":"eip155:84532","payer":"0xp","amount":"1000",` +
			`"extensions":{"k":"v"},"extra":{"block":7}}`,
			http.StatusOK, map[string]any{"success": true, "transaction": "0x5e771e", "network": "eip155:84532", "payer": "0xp",
				"amount": "1000", "extensions": map[string]any{"k": "v"}, "extra": map[string]any{"block": 7.0}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, envConfig{facilitator: func(f http.Handler) http.Handler { return settleAnswer{f, c.answer} }})
			resp, body := e.get(x402.HeaderPaymentSignature, x402test.Pay(usdc))
			wantStatus(t, resp, body, c.status)
			got := header(t, resp, x402.HeaderPaymentResponse)
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(c.want)
			if !bytes.Equal(gj, wj) {
				t.Errorf("PAYMENT-RESPONSE\n got %s\nwant %s", gj, wj)
			}
			if strings.Contains(body, "execution reverted") {
				t.Error("the facilitator's message reached the problem body")
			}
		})
	}
}

func TestAcceptedMatchesEveryField(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(a *x402.PaymentRequirements)
		ok   bool
	}{
		{"same", func(a *x402.PaymentRequirements) {}, true},
		{"address case (EVM checksum)", func(a *x402.PaymentRequirements) { a.PayTo = strings.ToLower(a.PayTo) }, true},
		{"maxTimeoutSeconds", func(a *x402.PaymentRequirements) { a.MaxTimeoutSeconds = 3600 }, false},
		{"extra value", func(a *x402.PaymentRequirements) { a.Extra = map[string]any{"name": "USDC", "version": "3"} }, false},
		{"extra member added", func(a *x402.PaymentRequirements) {
			a.Extra = map[string]any{"name": "USDC", "version": "2", "facilitator": "mine"}
		}, false},
		{"extra missing", func(a *x402.PaymentRequirements) { a.Extra = nil }, false},
		{"amount", func(a *x402.PaymentRequirements) { a.Amount = "999" }, false},
		{"scheme", func(a *x402.PaymentRequirements) { a.Scheme = "upto" }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, envConfig{})
			a := usdc
			c.edit(&a)
			resp, body := e.get(x402.HeaderPaymentSignature, x402test.Pay(a))
			if c.ok {
				wantStatus(t, resp, body, http.StatusOK)
				return
			}
			wantStatus(t, resp, body, http.StatusPaymentRequired)
			if m := wantCode(t, resp, body, x402.CodePaymentRejected); m["error"] != "invalid_payment_requirements" {
				t.Errorf("error = %v", m["error"])
			}
			if e.fac.Settlements() != 0 {
				t.Error("settled")
			}
		})
	}
}

func TestUnknownSettlementForgottenAfterWindow(t *testing.T) {
	var lost *lostAnswer
	e := newEnv(t, envConfig{facilitator: func(f http.Handler) http.Handler {
		lost = &lostAnswer{f: f}
		return lost
	}})
	lost.on.Store(true)
	sig := x402test.Pay(usdc)
	resp, body := e.get(x402.HeaderPaymentSignature, sig)
	wantCode(t, resp, body, x402.CodeSettlementUnknown)
	lost.on.Store(false)

	// Past ReplayWindow the server no longer knows it sent the payment for
	// settlement: the facilitator's verdict on a used payment stands.
	e.clock.Advance(10*time.Minute + time.Second)
	resp, body = e.get(x402.HeaderPaymentSignature, sig)
	wantStatus(t, resp, body, http.StatusPaymentRequired)
	if m := wantCode(t, resp, body, x402.CodePaymentRejected); m["error"] != "invalid_transaction_state" || e.fac.Settlements() != 1 {
		t.Errorf("error %v, settlements %d", m["error"], e.fac.Settlements())
	}
}
