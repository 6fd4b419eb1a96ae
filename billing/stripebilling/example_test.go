package stripebilling_test

import (
	"context"
	"fmt"
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
