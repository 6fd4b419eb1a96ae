package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// The replay, against stripe-mock, goes through each state: served,
// served overdue in the grace, 402 with a portal session after it, served
// again once paid.
func TestReplayAgainstStripeMock(t *testing.T) {
	url, stop, err := stripeMock(os.Getenv("STRIPE_MOCK_URL"))
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("stripe-mock: %v", err)
		}
		t.Skipf("stripe-mock: %v", err)
	}
	defer stop()
	now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const secret = "whsec_test_replay"
	h, err := server(secret, stripeClient(url))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	run(&out, h, secret)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	portal, ok := strings.CutPrefix(lines[6], "GET /reports → 402 payment_failed ")
	if !ok || !strings.HasPrefix(portal, "https://") || strings.Contains(portal, "/p/login/") {
		t.Fatalf("after the grace: %q, want a 402 payment_failed with a portal session's URL", lines[6])
	}
	lines[6] = "GET /reports → 402 payment_failed <portal session>"
	want := `webhook customer.subscription.created  → 200
GET /reports → 200
webhook invoice.payment_failed         → 200
webhook customer.subscription.updated  → 200
GET /reports → 200 (Payment-Overdue: Wed, 04 Mar 2026 12:00:00 GMT)
-- 73 hours later: the grace is over
GET /reports → 402 payment_failed <portal session>
webhook invoice.paid                   → 200
webhook customer.subscription.updated  → 200
GET /reports → 200`
	if got := strings.Join(lines, "\n"); got != want {
		t.Errorf("replay printed\n%s\nwant\n%s", got, want)
	}
}
