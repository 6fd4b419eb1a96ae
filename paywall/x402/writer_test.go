package x402_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go402/go402/paywall/x402"
	"github.com/go402/go402/paywall/x402/x402test"
)

// TestWriterCapabilities checks that paid and keyed handlers keep the
// optional ResponseWriter interfaces, and that each of them settles first.
func TestWriterCapabilities(t *testing.T) {
	handlers := map[string]http.HandlerFunc{
		"io.Copy (ReadFrom)": func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.Copy(w, strings.NewReader("copied")); err != nil {
				t.Error(err)
			}
		},
		"http.Flusher first": func(w http.ResponseWriter, r *http.Request) {
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "flushed")
		},
		"ResponseController deadline": func(w http.ResponseWriter, r *http.Request) {
			if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
				t.Error(err)
			}
			_, _ = io.WriteString(w, "deadline")
		},
		"103 then 200": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusOK)
			w.WriteHeader(http.StatusTeapot) // superfluous, ignored by net/http
			_, _ = io.WriteString(w, "hinted")
		},
	}
	for name, h := range handlers {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, envConfig{handler: h})
			resp, body := e.get(x402.HeaderPaymentSignature, x402test.Pay(usdc))
			wantStatus(t, resp, body, http.StatusOK)
			if body == "" || e.fac.Settlements() != 1 || !settleResponse(t, resp, x402.HeaderPaymentResponse).Success {
				t.Errorf("paid: body %q, settlements %d", body, e.fac.Settlements())
			}
			resp, body = e.get("Authorization", "Bearer "+keyRich)
			wantStatus(t, resp, body, http.StatusOK)
			if body == "" || e.balance() != 90 {
				t.Errorf("keyed: body %q, balance %d", body, e.balance())
			}
		})
	}
}

func TestWritesAfterFailedSettlement(t *testing.T) {
	errs := make(chan [3]error, 1)
	e := newEnv(t, envConfig{handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, copyErr := io.Copy(w, strings.NewReader("secret"))
		_, writeErr := io.WriteString(w, "secret")
		flushErr := http.NewResponseController(w).Flush()
		w.WriteHeader(http.StatusOK) // ignored
		errs <- [3]error{copyErr, writeErr, flushErr}
	})})
	e.fac.SetSettle(x402test.Refuse)
	resp, body := e.get(x402.HeaderPaymentSignature, x402test.Pay(usdc))
	wantStatus(t, resp, body, http.StatusPaymentRequired)
	if strings.Contains(body, "secret") {
		t.Error("handler output leaked")
	}
	for i, err := range <-errs {
		if !errors.Is(err, x402.ErrSettlementFailed) {
			t.Errorf("call %d returned %v, want ErrSettlementFailed", i, err)
		}
	}
}

func TestV1NetworkNames(t *testing.T) {
	for caip2, v1 := range map[string]string{
		"eip155:8453":  "base",
		"eip155:84532": "base-sepolia",
		"eip155:43114": "avalanche",
		"eip155:43113": "avalanche-fuji",
		"eip155:137":   "polygon",
		"eip155:80002": "polygon-amoy",
		"solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp": "solana",
		"solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1": "solana-devnet",
		"eip155:999999": "eip155:999999",
	} {
		price := usdc
		price.Network = caip2
		e := newEnv(t, envConfig{opts: &x402.Options{V1: true}, route: x402.Route{Accepts: []x402.PaymentRequirements{price}}})
		resp, body := e.get()
		m := wantCode(t, resp, body, x402.CodePaymentRequired)
		if got := m["accepts"].([]any)[0].(map[string]any)["network"]; got != v1 {
			t.Errorf("%s: v1 network %v, want %s", caip2, got, v1)
		}
	}
}
