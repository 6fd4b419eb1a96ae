package stripebilling_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go402/go402/billing/stripebilling"
	"github.com/go402/go402/store"
	"github.com/stripe/stripe-go/v82"
)

func Example() {
	mem := store.NewMemory(nil)
	_ = mem.PutAccount(context.Background(), store.Account{ID: "cus_1"})
	h, err := stripebilling.New(mem, stripebilling.Options{
		Secret: "whsec_…",
		Plans:  map[string]stripebilling.Plan{"price_pro": {Name: "pro", Features: []string{"reports"}, Credits: 1000}},
		Grace:  72 * time.Hour,
	})
	if err != nil {
		panic(err)
	}
	// ServeHTTP verifies the signature, then applies the event like this.
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ev := stripe.Event{ID: "evt_1", Type: "customer.subscription.created", Created: start.Unix(),
		Data: &stripe.EventData{Raw: subscriptionJSON("cus_1", start)}}
	if err := h.Apply(context.Background(), ev); err != nil {
		panic(err)
	}
	a, _ := mem.Account(context.Background(), "cus_1")
	fmt.Println(a.Plan, a.Status, a.Balance)
	// Output: pro active 1000
}

// ExampleJournal shows the usage a Journal holds for a Reporter: each
// operation's debit net of its refunds, and a correction when a refund
// comes after the report.
func ExampleJournal() {
	dir, _ := os.MkdirTemp("", "journal")
	defer os.RemoveAll(dir)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	j, err := stripebilling.OpenJournal(filepath.Join(dir, "usage.journal"), store.NewMemory(&store.MemoryOptions{Clock: clock}),
		&stripebilling.JournalOptions{Clock: clock})
	if err != nil {
		panic(err)
	}
	defer j.Close()
	ctx := context.Background()
	_ = j.PutAccount(ctx, store.Account{ID: "acct", Balance: 100})
	op := store.WithOperation(ctx, store.Operation{ID: "req_1"})
	_, _ = j.Spend(op, "acct", 10)
	_, _ = j.Refund(op, "acct", 3) // the paywall refunds part of the request
	now = now.Add(2 * time.Minute) // past the settle delay
	usages, _ := j.Pending(ctx, 10)
	fmt.Println(usages[0].ID, usages[0].Value, usages[0].Revision)
	_ = j.Ack(ctx, usages) // what a Reporter does once Stripe accepted it

	_, _ = j.Refund(op, "acct", 7) // the rest, after the report
	usages, _ = j.Pending(ctx, 10)
	fmt.Println(usages[0].ID, usages[0].Value, usages[0].Revision)
	// Output:
	// req_1 7 0
	// req_1 0 1
}
