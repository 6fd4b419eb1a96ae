// Command stripe serves a route whose access Stripe drives: a subscription
// sets the plan, a failed payment starts a grace, after which requests get
// a 402 with the customer's billing-portal link, and paying restores them.
//
//	go run . -replay   # replays a signed event sequence locally, printing each state
//	go run .           # serves :8080; see README.md for stripe listen --forward-to
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/go402/go402/billing/stripebilling"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"
)

const key = "sk_test_demo_0123456789abcdef"

// clock is the server's clock; the replay moves it past the grace.
var now = time.Now().UTC().Truncate(time.Second)

func main() {
	replay := flag.Bool("replay", false, "replay a signed event sequence and exit")
	flag.Parse()
	secret := os.Getenv("STRIPE_WEBHOOK_SECRET")
	if secret == "" {
		secret = "whsec_local_replay"
	}
	h, err := server(secret)
	if err != nil {
		log.Fatal(err)
	}
	if *replay {
		run(h, secret)
		return
	}
	log.Fatal(http.ListenAndServe(":8080", h))
}

// server returns the routes: POST /stripe/webhook and GET /reports.
func server(secret string) (http.Handler, error) {
	mem := store.NewMemory(&store.MemoryOptions{Clock: func() time.Time { return now }})
	ctx := context.Background()
	if err := mem.PutAccount(ctx, store.Account{ID: "cus_demo", Status: store.StatusCanceled}); err != nil {
		return nil, err
	}
	if err := mem.PutKey(ctx, store.NewKey(key, "cus_demo")); err != nil {
		return nil, err
	}
	hook, err := stripebilling.New(mem, stripebilling.Options{
		Secret:    secret,
		Plans:     map[string]stripebilling.Plan{"price_pro": {Name: "pro", Features: []string{"reports"}, Credits: 1000}},
		Grace:     72 * time.Hour,
		PortalURL: "https://billing.stripe.com/p/login/test_demo",
	})
	if err != nil {
		return nil, err
	}
	p, err := paywall.New(mem, &paywall.Options{Clock: func() time.Time { return now }})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /stripe/webhook", hook)
	mux.Handle("GET /reports", p.Authenticate(p.Require(paywall.Requirement{Features: []string{"reports"}})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "report") }))))
	return mux, nil
}

// run replays subscription created → payment failed → grace → 402 → paid → 200.
func run(h http.Handler, secret string) {
	start := now
	sub := func(status string) map[string]any {
		return map[string]any{"id": "sub_demo", "object": "subscription", "customer": "cus_demo", "status": status,
			"items": map[string]any{"object": "list", "data": []any{map[string]any{"id": "si_demo", "object": "subscription_item",
				"current_period_start": start.Unix(), "current_period_end": start.AddDate(0, 1, 0).Unix(),
				"price": map[string]any{"id": "price_pro", "object": "price"}}}}}
	}
	inv := func(decline string) map[string]any {
		in := map[string]any{"id": "in_demo", "object": "invoice", "customer": "cus_demo",
			"parent":             map[string]any{"type": "subscription_details", "subscription_details": map[string]any{"subscription": "sub_demo"}},
			"status_transitions": map[string]any{"finalized_at": start.Unix()}}
		if decline != "" {
			in["last_finalization_error"] = map[string]any{"type": "card_error", "code": "card_declined", "decline_code": decline}
		}
		return in
	}
	send(h, secret, "evt_1", "customer.subscription.created", sub("active"))
	get(h)
	send(h, secret, "evt_2", "invoice.payment_failed", inv("insufficient_funds"))
	send(h, secret, "evt_3", "customer.subscription.updated", sub("past_due"))
	get(h)
	now = now.Add(73 * time.Hour)
	fmt.Println("-- 73 hours later: the grace is over")
	get(h)
	send(h, secret, "evt_4", "invoice.paid", inv(""))
	send(h, secret, "evt_5", "customer.subscription.updated", sub("active"))
	get(h)
}

var seq int64

// send signs an event as Stripe does and posts it to the webhook.
func send(h http.Handler, secret, id, typ string, obj map[string]any) {
	seq++
	raw, _ := json.Marshal(obj)
	body, _ := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "api_version": stripe.APIVersion,
		"created": now.Unix() + seq, "data": map[string]any{"object": json.RawMessage(raw)}})
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret})
	r := httptest.NewRequest(http.MethodPost, "/stripe/webhook", bytes.NewReader(body))
	r.Header.Set("Stripe-Signature", sp.Header)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Printf("webhook %-30s → %d\n", typ, w.Code)
}

// get requests the report and prints the outcome.
func get(h http.Handler) {
	r := httptest.NewRequest(http.MethodGet, "/reports", nil)
	r.Header.Set("X-API-Key", key)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var body struct {
		Code       string `json:"code"`
		PaymentURL string `json:"payment_url"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	fmt.Printf("GET /reports → %d %s %s%s\n", w.Code, body.Code, body.PaymentURL, overdue(w))
}

func overdue(w *httptest.ResponseRecorder) string {
	if v := w.Header().Get(paywall.HeaderPaymentOverdue); v != "" {
		return "(Payment-Overdue: " + v + ")"
	}
	return ""
}
