package stripebilling_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go402/go402/billing/stripebilling"
	"github.com/go402/go402/billing/stripebilling/internal/stripemock"
	"github.com/go402/go402/store"
	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"
)

const secret = "whsec_test_secret"

// t0 is when the test events happen.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// event returns a Stripe event of the given type, ID and time around obj.
func event(id, typ string, at time.Time, obj map[string]any) []byte {
	raw, _ := json.Marshal(obj)
	b, _ := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "api_version": stripe.APIVersion,
		"created": at.Unix(), "data": map[string]any{"object": json.RawMessage(raw)},
	})
	return b
}

// subscription returns a subscription object of customer on price.
func subscription(customer, status, price string, start, end time.Time) map[string]any {
	return map[string]any{
		"id": "sub_" + customer, "object": "subscription", "customer": customer, "status": status,
		"items": map[string]any{"object": "list", "data": []any{map[string]any{
			"id": "si_" + customer, "object": "subscription_item", "quantity": 1,
			"current_period_start": start.Unix(), "current_period_end": end.Unix(),
			"price": map[string]any{"id": price, "object": "price", "product": "prod_" + price},
		}}},
	}
}

// invoice returns an invoice object of customer, first attempted at
// finalized, with credit-pack lines (price → quantity) and a decline code;
// without lines, an invoice of the customer's subscription.
func invoice(id, customer string, finalized time.Time, decline string, lines map[string]int64) map[string]any {
	var data []any
	for price, q := range lines {
		data = append(data, map[string]any{"id": "il_" + price, "object": "line_item", "quantity": q,
			"pricing": map[string]any{"type": "price_details", "price_details": map[string]any{"price": price, "product": "prod_" + price}}})
	}
	in := map[string]any{
		"id": id, "object": "invoice", "customer": customer,
		"status_transitions": map[string]any{"finalized_at": finalized.Unix(), "paid_at": finalized.Unix()},
		"lines":              map[string]any{"object": "list", "data": data},
	}
	if len(lines) == 0 {
		in["parent"] = map[string]any{"type": "subscription_details",
			"subscription_details": map[string]any{"subscription": "sub_" + customer}}
	}
	if decline != "" {
		in["last_finalization_error"] = map[string]any{"type": "card_error", "code": "card_declined", "decline_code": decline}
	}
	return in
}

// deliver signs body as Stripe does at time now and posts it to h.
func deliver(h http.Handler, body []byte, now time.Time) *httptest.ResponseRecorder {
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: now})
	r := httptest.NewRequest(http.MethodPost, "/stripe/webhook", bytes.NewReader(body))
	r.Header.Set("Stripe-Signature", sp.Header)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// testOptions configures the Webhook of the tests: two plans, a credit
// pack, a 72-hour grace and a portal login link.
var testOptions = stripebilling.Options{
	Secret: secret,
	Plans: map[string]stripebilling.Plan{
		"price_basic":    {Name: "basic", Features: []string{"reports"}, Credits: 100},
		"prod_price_pro": {Name: "pro", Features: []string{"reports", "export"}, Credits: 1000},
	},
	CreditPacks: map[string]int64{"price_pack": 500},
	Grace:       72 * time.Hour,
	PortalURL:   "https://billing.example.com/p/login/test",
}

// newWebhook returns a memory store with account cus_1, whose clock reads
// t0, and a Webhook on it.
func newWebhook(t testing.TB, opts stripebilling.Options) (*store.Memory, *stripebilling.Webhook) {
	return newWebhookAt(t, opts, t0)
}

// newWebhookAt is newWebhook with the store's clock at now.
func newWebhookAt(t testing.TB, opts stripebilling.Options, now time.Time) (*store.Memory, *stripebilling.Webhook) {
	t.Helper()
	mem := store.NewMemory(&store.MemoryOptions{Clock: func() time.Time { return now }})
	if err := mem.PutAccount(context.Background(), store.Account{ID: "cus_1"}); err != nil {
		t.Fatal(err)
	}
	h, err := stripebilling.New(mem, opts)
	if err != nil {
		t.Fatal(err)
	}
	return mem, h
}

func account(t testing.TB, a store.Admin, id string) store.Account {
	t.Helper()
	acct, err := a.Account(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return acct
}

// TestMain runs the tests with one stripe-mock for all that need one.
func TestMain(m *testing.M) { stripemock.Main(m) }

// subscriptionJSON is an active subscription of customer on price_pro from
// start, as JSON.
func subscriptionJSON(customer string, start time.Time) []byte {
	b, _ := json.Marshal(subscription(customer, "active", "price_pro", start, start.AddDate(0, 1, 0)))
	return b
}
