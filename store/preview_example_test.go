package store_test

import (
	"fmt"
	"time"

	"github.com/go402/go402/store"
)

// What a spend would do, without doing it: an account whose daily quota of
// 100 is due to refill.
func ExamplePreview() {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	a := store.Account{ID: "acme", Balance: 3, RefilledAt: now.Add(-25 * time.Hour),
		Refill: &store.Refill{Amount: 100, Every: 24 * time.Hour, Anchor: now.Add(-49 * time.Hour)}}
	r := store.Preview(&a, 40, now)
	fmt.Println(r.OK, r.Balance, r.NextRefill.Format(time.RFC3339), a.Balance)
	// Output:
	// true 60 2026-03-03T08:00:00Z 3
}
