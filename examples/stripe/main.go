// Command stripe serves a route whose access Stripe drives: a subscription
// sets the plan, a failed payment starts a grace, after which requests get
// a 402 with the customer's billing-portal link, and paying restores them.
//
//	go run . -replay   # replays a signed event sequence locally, printing each state
//	go run .           # serves :8080; see README.md for stripe listen --forward-to
//
// The replay creates billing-portal sessions on stripe-mock: the one at
// -stripe-mock or STRIPE_MOCK_URL, else one it starts if stripe-mock is
// installed, else none (the portal's login link stands in).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	mockURL := flag.String("stripe-mock", os.Getenv("STRIPE_MOCK_URL"), "stripe-mock URL for -replay (default: start one if installed)")
	flag.Parse()
	secret := os.Getenv("STRIPE_WEBHOOK_SECRET")
	if secret == "" {
		secret = "whsec_local_replay"
	}
	var client *stripe.Client
	if *replay {
		url, stop, err := stripeMock(*mockURL)
		if err != nil {
			log.Printf("no stripe-mock (%v): the portal login link stands in for portal sessions", err)
		} else {
			defer stop()
			client = stripeClient(url)
		}
	} else if k := os.Getenv("STRIPE_SECRET_KEY"); k != "" {
		client = stripe.NewClient(k)
	}
	h, err := server(secret, client)
	if err != nil {
		log.Fatal(err)
	}
	if *replay {
		run(os.Stdout, h, secret)
		return
	}
	log.Fatal(http.ListenAndServe(":8080", h))
}

// stripeMock returns the URL of a stripe-mock: url if set, else one started
// on free ports from an installed stripe-mock, with the function that
// stops it.
func stripeMock(url string) (string, func(), error) {
	if url != "" {
		return url, func() {}, nil
	}
	bin, err := exec.LookPath("stripe-mock")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		bin = filepath.Join(string(bytes.TrimSpace(gopath)), "bin", "stripe-mock")
		if _, err := os.Stat(bin); err != nil {
			return "", nil, fmt.Errorf("STRIPE_MOCK_URL unset and stripe-mock not installed")
		}
	}
	addr := freeAddr()
	cmd := exec.Command(bin, "-http-addr", addr, "-https-addr", freeAddr())
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	for range 200 { // stripe-mock loads its fixtures first
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "http://" + addr, stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("stripe-mock did not start at %s", addr)
}

// freeAddr returns a loopback address with a free port.
func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer l.Close()
	return l.Addr().String()
}

// stripeClient returns a client of the Stripe API at url (a stripe-mock).
func stripeClient(url string) *stripe.Client {
	b := stripe.NewBackendsWithConfig(&stripe.BackendConfig{URL: stripe.String(url), MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}})
	return stripe.NewClient("sk_test_123", stripe.WithBackends(b))
}

// server returns the routes: POST /stripe/webhook and GET /reports. With
// client, a lapsed customer's payment link is a new billing-portal session.
func server(secret string, client *stripe.Client) (http.Handler, error) {
	mem := store.NewMemory(&store.MemoryOptions{Clock: func() time.Time { return now }})
	ctx := context.Background()
	if err := mem.PutAccount(ctx, store.Account{ID: "cus_demo", Status: store.StatusCanceled}); err != nil {
		return nil, err
	}
	if err := mem.PutKey(ctx, store.NewKey(key, "cus_demo")); err != nil {
		return nil, err
	}
	opts := stripebilling.Options{
		Secret:    secret,
		Plans:     map[string]stripebilling.Plan{"price_pro": {Name: "pro", Features: []string{"reports"}, Credits: 1000}},
		Grace:     72 * time.Hour,
		PortalURL: "https://billing.stripe.com/p/login/test_demo",
	}
	if client != nil {
		opts.Portal = &stripebilling.PortalSessions{Client: client, ReturnURL: "http://localhost:8080/"}
	}
	hook, err := stripebilling.New(mem, opts)
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
func run(out io.Writer, h http.Handler, secret string) {
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
	send(out, h, secret, "customer.subscription.created", sub("active"))
	get(out, h)
	send(out, h, secret, "invoice.payment_failed", inv("insufficient_funds"))
	send(out, h, secret, "customer.subscription.updated", sub("past_due"))
	get(out, h)
	now = now.Add(73 * time.Hour)
	fmt.Fprintln(out, "-- 73 hours later: the grace is over")
	get(out, h)
	send(out, h, secret, "invoice.paid", inv(""))
	send(out, h, secret, "customer.subscription.updated", sub("active"))
	get(out, h)
}

var seq int64

// send signs an event as Stripe does, numbered evt_1, evt_2, …, and posts
// it to the webhook.
func send(out io.Writer, h http.Handler, secret, typ string, obj map[string]any) {
	seq++
	id := fmt.Sprintf("evt_%d", seq)
	raw, _ := json.Marshal(obj)
	body, _ := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "api_version": stripe.APIVersion,
		"created": now.Unix() + seq, "data": map[string]any{"object": json.RawMessage(raw)}})
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret})
	r := httptest.NewRequest(http.MethodPost, "/stripe/webhook", bytes.NewReader(body))
	r.Header.Set("Stripe-Signature", sp.Header)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Fprintf(out, "webhook %-30s → %d\n", typ, w.Code)
}

// get requests the report and prints the outcome.
func get(out io.Writer, h http.Handler) {
	r := httptest.NewRequest(http.MethodGet, "/reports", nil)
	r.Header.Set("X-API-Key", key)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var body struct {
		Code       string `json:"code"`
		PaymentURL string `json:"payment_url"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	line := fmt.Sprintf("GET /reports → %d %s %s %s", w.Code, body.Code, body.PaymentURL, overdue(w))
	fmt.Fprintln(out, strings.Join(strings.Fields(line), " "))
}

func overdue(w *httptest.ResponseRecorder) string {
	if v := w.Header().Get(paywall.HeaderPaymentOverdue); v != "" {
		return "(Payment-Overdue: " + v + ")"
	}
	return ""
}
