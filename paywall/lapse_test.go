package paywall_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// A past-due account passes in its grace, marked overdue by a header and the
// decision; after it, or with a billing reason, it gets the reason's code and
// its own portal link.
func TestRequireGraceAndLapses(t *testing.T) {
	const portal = "https://billing.example.com/p/session/cus_1"
	grace := t0.Add(72 * time.Hour)
	tests := []struct {
		name       string
		a          store.Account
		advance    time.Duration
		wantStatus int
		wantCode   paywall.Code
		wantReason string
		wantURL    string
	}{
		{"past due in grace", store.Account{Status: store.StatusPastDue, GraceUntil: grace, Lapse: store.LapseCardDeclined, PaymentURL: portal},
			71 * time.Hour, 200, "", "", ""},
		{"past due, grace over", store.Account{Status: store.StatusPastDue, GraceUntil: grace, Lapse: store.LapseCardDeclined, PaymentURL: portal},
			72 * time.Hour, 402, paywall.CodePaymentFailed, "card_declined", portal},
		{"insufficient funds", store.Account{Status: store.StatusPastDue, Lapse: store.LapseInsufficientFunds, PaymentURL: portal},
			0, 402, paywall.CodePaymentFailed, "insufficient_funds", portal},
		{"payment method missing", store.Account{Status: store.StatusSuspended, Lapse: store.LapsePaymentMethodMissing, PaymentURL: portal},
			0, 402, paywall.CodePaymentMethodRequired, "payment_method_missing", portal},
		{"payment method invalid", store.Account{Status: store.StatusPastDue, Lapse: store.LapsePaymentMethodInvalid},
			0, 402, paywall.CodePaymentMethodRequired, "payment_method_invalid", "https://example.com/credits"},
		{"canceled", store.Account{Status: store.StatusCanceled, Lapse: store.LapseCanceled, PaymentURL: portal},
			0, 402, paywall.CodeSubscriptionCanceled, "canceled", portal},
		{"expired", store.Account{Status: store.StatusCanceled, Lapse: store.LapseExpired},
			0, 402, paywall.CodeSubscriptionCanceled, "expired", "https://example.com/credits"},
		{"no billing reason", store.Account{Status: store.StatusPastDue, GraceUntil: grace},
			73 * time.Hour, 402, paywall.CodeSubscriptionInactive, "", "https://example.com/credits"},
		{"active ignores a stale reason", store.Account{Status: store.StatusActive, Lapse: store.LapseCardDeclined},
			0, 200, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			mem := store.NewMemory(&store.MemoryOptions{Clock: c.Now})
			a := tt.a
			a.ID = "acct"
			if err := mem.PutAccount(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			const key = "sk_test_lapse_0123456789abcdef"
			if err := mem.PutKey(context.Background(), store.NewKey(key, "acct")); err != nil {
				t.Fatal(err)
			}
			var decisions []paywall.Decision
			p := newPaywall(t, mem, c, &paywall.Options{PaymentURL: "https://example.com/credits",
				OnDecision: func(_ context.Context, d paywall.Decision) { decisions = append(decisions, d) }})
			h := p.Authenticate(p.Require(paywall.Requirement{})(ok))
			c.Advance(tt.advance)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, request("GET", "/", key, ""))
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.wantStatus, w.Body)
			}
			last := decisions[len(decisions)-1]
			if tt.wantStatus == 200 {
				overdue := tt.a.Status == store.StatusPastDue
				if got := w.Header().Get(paywall.HeaderPaymentOverdue); (got != "") != overdue || last.Overdue != overdue {
					t.Errorf("overdue header %q, decision overdue %v; want overdue %v", got, last.Overdue, overdue)
				}
				if overdue && w.Header().Get(paywall.HeaderPaymentOverdue) != grace.Format(http.TimeFormat) {
					t.Errorf("overdue header %q, want the grace end", w.Header().Get(paywall.HeaderPaymentOverdue))
				}
				return
			}
			var body struct {
				Code       paywall.Code `json:"code"`
				Type       string       `json:"type"`
				Detail     string       `json:"detail"`
				Reason     string       `json:"reason"`
				PaymentURL string       `json:"payment_url"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if body.Code != tt.wantCode || last.Code != tt.wantCode || body.Reason != tt.wantReason || body.PaymentURL != tt.wantURL {
				t.Errorf("got code %q (decision %q), reason %q, payment_url %q; want %q, %q, %q",
					body.Code, last.Code, body.Reason, body.PaymentURL, tt.wantCode, tt.wantReason, tt.wantURL)
			}
			if body.Type != "https://go402.dev/problems/"+string(tt.wantCode) || body.Detail == "" || last.Overdue {
				t.Errorf("type %q, detail %q, overdue %v", body.Type, body.Detail, last.Overdue)
			}
		})
	}
}
