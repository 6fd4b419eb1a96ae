package stripebilling_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go402/go402/billing/stripebilling"
	"github.com/go402/go402/billing/stripebilling/internal/stripemock"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// A lapsed account's 402 carries, as its payment_url, the billing-portal
// session that stripe-mock created for its customer.
func TestPortalSessionIsPaymentURL(t *testing.T) {
	mock := stripemock.Start(t)
	opts := testOptions
	opts.Portal = &stripebilling.PortalSessions{Client: stripemock.Client(mock.URL), ReturnURL: "https://app.example.com/account"}
	mem, h := newWebhook(t, opts)
	if err := mem.PutKey(context.Background(), store.NewKey("sk_test_portal_0123456789abcdef", "cus_1")); err != nil {
		t.Fatal(err)
	}
	end := t0.AddDate(0, 1, 0)
	deliver(h, event("evt_f", "invoice.payment_failed", t0, invoice("in_1", "cus_1", t0, "card_declined", nil)), time.Now())
	deliver(h, event("evt_s", "customer.subscription.updated", t0.Add(time.Second), subscription("cus_1", "unpaid", "price_basic", t0, end)), time.Now())
	url := account(t, mem, "cus_1").PaymentURL
	if !strings.HasPrefix(url, "https://") || url == opts.PortalURL {
		t.Fatalf("PaymentURL %q, want a portal session's URL", url)
	}

	p, err := paywall.New(mem, &paywall.Options{Clock: func() time.Time { return t0.Add(time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	srv := p.Authenticate(p.Require(paywall.Requirement{})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	r := httptest.NewRequest(http.MethodGet, "/work", nil)
	r.Header.Set("X-API-Key", "sk_test_portal_0123456789abcdef")
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	var body struct {
		PaymentURL string `json:"payment_url"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != http.StatusPaymentRequired || body.PaymentURL != url {
		t.Fatalf("%d %s (%v), want 402 with payment_url %q", w.Code, w.Body, err, url)
	}
}
