package stripebilling_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go402/go402/billing/stripebilling"
	"github.com/go402/go402/store"
	"github.com/stripe/stripe-go/v82/webhook"
)

// A missing, wrong or stale signature, or a tampered body, is refused with
// 400 and changes nothing.
func TestWebhookRefusesBadSignatures(t *testing.T) {
	mem, h := newWebhook(t, testOptions)
	before := account(t, mem, "cus_1")
	body := event("evt_1", "customer.subscription.created", t0,
		subscription("cus_1", "active", "price_basic", t0, t0.AddDate(0, 1, 0)))
	now := time.Now()
	sign := func(b []byte, secret string, at time.Time) string {
		return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: b, Secret: secret, Timestamp: at}).Header
	}
	tampered := []byte(strings.Replace(string(body), "price_basic", "prod_price_pro", 1))
	for _, tc := range []struct {
		name, header string
		body         []byte
	}{
		{"missing", "", body},
		{"wrong secret", sign(body, "whsec_other", now), body},
		{"stale", sign(body, secret, now.Add(-6*time.Minute)), body},
		{"tampered body", sign(body, secret, now), tampered},
		{"garbage", "t=abc,v1=zz", body},
	} {
		r, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(string(tc.body)))
		r.Header.Set("Stripe-Signature", tc.header)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", tc.name, w.Code)
		}
	}
	if after := account(t, mem, "cus_1"); !reflect.DeepEqual(after, before) {
		t.Errorf("a refused event changed the account: %+v", after)
	}
	if w := deliver(h, body, now); w.Code != http.StatusOK {
		t.Fatalf("signed event: status %d %s", w.Code, w.Body)
	}
	if a := account(t, mem, "cus_1"); a.Plan != "basic" {
		t.Errorf("signed event not applied: %+v", a)
	}
}

// Each mapped event changes the fields it should.
func TestWebhookEventsMapToAccount(t *testing.T) {
	mem, h := newWebhook(t, testOptions)
	end := t0.AddDate(0, 1, 0)
	steps := []struct {
		name  string
		body  []byte
		check func(a store.Account) bool
	}{
		{"created", event("evt_1", "customer.subscription.created", t0, subscription("cus_1", "active", "price_basic", t0, end)),
			func(a store.Account) bool {
				return a.Plan == "basic" && slices.Equal(a.Features, []string{"reports"}) && a.Status == store.StatusActive &&
					a.Balance == 100 && a.Refill != nil && a.Refill.Amount == 100 && a.Refill.Anchor.Equal(t0) &&
					a.Refill.Every == end.Sub(t0) && a.Metadata["stripe_customer"] == "cus_1"
			}},
		{"upgraded (product mapping) replaces the quota at once", event("evt_2", "customer.subscription.updated", t0.Add(time.Hour),
			subscription("cus_1", "active", "price_pro", t0, end)),
			func(a store.Account) bool {
				return a.Plan == "pro" && slices.Equal(a.Features, []string{"reports", "export"}) && a.Balance == 1000 && a.Refill.Amount == 1000
			}},
		{"payment failed", event("evt_3", "invoice.payment_failed", t0.Add(2*time.Hour),
			invoice("in_1", "cus_1", t0.Add(2*time.Hour), "insufficient_funds", nil)),
			func(a store.Account) bool {
				return a.Status == store.StatusActive && a.Metadata["stripe_failure"] == "insufficient_funds"
			}},
		{"past due: grace from the invoice's first attempt", event("evt_4", "customer.subscription.updated", t0.Add(3*time.Hour),
			subscription("cus_1", "past_due", "price_pro", t0, end)),
			func(a store.Account) bool {
				return a.Status == store.StatusPastDue && a.Lapse == store.LapseInsufficientFunds &&
					a.GraceUntil.Equal(t0.Add(2*time.Hour+72*time.Hour)) && a.PaymentURL == testOptions.PortalURL
			}},
		{"credit pack paid", event("evt_5a", "invoice.paid", t0.Add(4*time.Hour),
			invoice("in_2", "cus_1", t0.Add(4*time.Hour), "", map[string]int64{"price_pack": 2})),
			func(a store.Account) bool { return a.Balance == 2000 && a.Lapse == store.LapseInsufficientFunds }},
		{"failed invoice paid", event("evt_5b", "invoice.paid", t0.Add(4*time.Hour),
			invoice("in_1", "cus_1", t0.Add(2*time.Hour), "", nil)),
			func(a store.Account) bool { return a.Balance == 2000 && a.Metadata["stripe_failure"] == "" }},
		{"active again", event("evt_6", "customer.subscription.updated", t0.Add(5*time.Hour),
			subscription("cus_1", "active", "price_pro", t0, end)),
			func(a store.Account) bool {
				return a.Status == store.StatusActive && a.Lapse == "" && a.GraceUntil.IsZero() && a.Balance == 2000
			}},
		{"downgrade keeps usage and packs", event("evt_7", "customer.subscription.updated", t0.Add(6*time.Hour),
			subscription("cus_1", "active", "price_basic", t0, end)),
			func(a store.Account) bool { return a.Plan == "basic" && a.Balance == 1100 && a.Refill.Amount == 100 }},
		{"renewal moves the anchor", event("evt_8", "customer.subscription.updated", end,
			subscription("cus_1", "active", "price_basic", end, end.AddDate(0, 1, 0))),
			func(a store.Account) bool { return a.Refill.Anchor.Equal(end) && a.Balance == 1100 }},
		{"deleted", event("evt_9", "customer.subscription.deleted", end.Add(time.Hour),
			subscription("cus_1", "canceled", "price_basic", end, end.AddDate(0, 1, 0))),
			func(a store.Account) bool {
				return a.Status == store.StatusCanceled && a.Lapse == store.LapseCanceled && a.Refill == nil
			}},
	}
	for _, s := range steps {
		if w := deliver(h, s.body, time.Now()); w.Code != http.StatusOK {
			t.Fatalf("%s: status %d %s", s.name, w.Code, w.Body)
		}
		if a := account(t, mem, "cus_1"); !s.check(a) {
			t.Errorf("%s: account %+v", s.name, a)
		}
	}
}

// The failure classes map onto the three lapse groups; a paused
// subscription lacks a payment method; an expired one is expired.
func TestWebhookLapseReasons(t *testing.T) {
	end := t0.AddDate(0, 1, 0)
	for _, tc := range []struct {
		decline, status string
		want            store.Lapse
		wantStatus      store.Status
	}{
		{"card_declined", "past_due", store.LapseCardDeclined, store.StatusPastDue},
		{"generic_decline", "unpaid", store.LapseCardDeclined, store.StatusSuspended},
		{"expired_card", "past_due", store.LapsePaymentMethodInvalid, store.StatusPastDue},
		{"", "past_due", store.LapsePaymentFailed, store.StatusPastDue},
		{"", "paused", store.LapsePaymentMethodMissing, store.StatusSuspended},
		{"", "incomplete_expired", store.LapseExpired, store.StatusCanceled},
	} {
		mem, h := newWebhook(t, testOptions)
		deliver(h, event("evt_f", "invoice.payment_failed", t0, invoice("in_1", "cus_1", t0, tc.decline, nil)), time.Now())
		deliver(h, event("evt_s", "customer.subscription.updated", t0.Add(time.Second), subscription("cus_1", tc.status, "price_basic", t0, end)), time.Now())
		if a := account(t, mem, "cus_1"); a.Lapse != tc.want || a.Status != tc.wantStatus {
			t.Errorf("decline %q, status %q: lapse %q status %q, want %q %q", tc.decline, tc.status, a.Lapse, a.Status, tc.want, tc.wantStatus)
		}
	}
}

// The same event stream, shuffled and with duplicates, always ends in the
// state that the in-order stream ends in, as read after the last event,
// and credits each pack once.
func TestWebhookShuffledDuplicatedStreamsConverge(t *testing.T) {
	end := t0.AddDate(0, 1, 0)
	stream := [][]byte{
		event("evt_1", "customer.subscription.created", t0, subscription("cus_1", "incomplete", "price_basic", t0, end)),
		event("evt_2", "invoice.paid", t0.Add(time.Minute), invoice("in_1", "cus_1", t0, "", nil)),
		event("evt_3", "customer.subscription.updated", t0.Add(time.Minute), subscription("cus_1", "active", "price_basic", t0, end)),
		event("evt_4", "invoice.paid", t0.Add(time.Hour), invoice("in_2", "cus_1", t0.Add(time.Hour), "", map[string]int64{"price_pack": 1})),
		event("evt_5", "customer.subscription.updated", t0.Add(2*time.Hour), subscription("cus_1", "active", "price_pro", t0, end)),
		event("evt_6", "invoice.payment_failed", end, invoice("in_3", "cus_1", end, "card_declined", nil)),
		event("evt_7", "customer.subscription.updated", end, subscription("cus_1", "past_due", "price_pro", end, end.AddDate(0, 1, 0))),
		event("evt_8", "invoice.payment_failed", end.Add(72*time.Hour), invoice("in_3", "cus_1", end, "insufficient_funds", nil)),
		event("evt_9", "invoice.paid", end.Add(96*time.Hour), invoice("in_4", "cus_1", end.Add(96*time.Hour), "", map[string]int64{"price_pack": 3})),
	}
	now := end.Add(100 * time.Hour)
	want := func() store.Account {
		mem, h := newWebhookAt(t, testOptions, now)
		for _, b := range stream {
			if w := deliver(h, b, time.Now()); w.Code != http.StatusOK {
				t.Fatalf("status %d %s", w.Code, w.Body)
			}
		}
		return account(t, mem, "cus_1")
	}()
	if want.Plan != "pro" || want.Status != store.StatusPastDue || want.Lapse != store.LapseInsufficientFunds ||
		!want.GraceUntil.Equal(end.Add(72*time.Hour)) || want.Balance != 1000+4*500 {
		t.Fatalf("in-order state is wrong: %+v", want)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		events := slices.Clone(stream)
		for range rng.IntN(len(stream)) + 1 {
			events = append(events, stream[rng.IntN(len(stream))])
		}
		rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
		mem, h := newWebhookAt(t, testOptions, now)
		for _, b := range events {
			if w := deliver(h, b, time.Now()); w.Code != http.StatusOK {
				t.Fatalf("status %d %s", w.Code, w.Body)
			}
		}
		if got := account(t, mem, "cus_1"); !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: got  %+v\nwant %+v", round, got, want)
		}
	}
}

// Events of customers without an account and of unmapped types are
// acknowledged and change nothing.
func TestWebhookIgnores(t *testing.T) {
	mem, h := newWebhook(t, testOptions)
	before := account(t, mem, "cus_1")
	for _, b := range [][]byte{
		event("evt_1", "customer.subscription.created", t0, subscription("cus_other", "active", "price_basic", t0, t0.AddDate(0, 1, 0))),
		event("evt_2", "charge.succeeded", t0, map[string]any{"id": "ch_1", "object": "charge"}),
		event("evt_3", "customer.subscription.created", t0, subscription("cus_1", "active", "price_unmapped", t0, t0.AddDate(0, 1, 0))),
	} {
		if w := deliver(h, b, time.Now()); w.Code != http.StatusOK {
			t.Errorf("status %d, want 200", w.Code)
		}
	}
	after := account(t, mem, "cus_1")
	if after.Plan != before.Plan || after.Balance != before.Balance || after.Refill != nil {
		t.Errorf("ignored events changed the account: %+v", after)
	}
}

func TestNewRefusesMistakes(t *testing.T) {
	mem := store.NewMemory(nil)
	for _, o := range []stripebilling.Options{
		{},
		{Secret: secret, Grace: -1},
		{Secret: secret, Plans: map[string]stripebilling.Plan{"price_x": {}}},
		{Secret: secret, CreditPacks: map[string]int64{"price_x": 0}},
		{Secret: secret, PortalURL: "/relative"},
		{Secret: secret, Portal: &stripebilling.PortalSessions{}},
	} {
		if _, err := stripebilling.New(mem, o); err == nil || !strings.HasPrefix(err.Error(), "stripebilling: ") {
			t.Errorf("New(%+v) = %v, want an error", o, err)
		}
	}
	if _, err := stripebilling.New(nil, stripebilling.Options{Secret: secret}); err == nil {
		t.Error("New(nil store) succeeded")
	}
	_ = context.Background
}
