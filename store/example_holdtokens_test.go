package store_test

import (
	"context"
	"fmt"
	"time"

	"github.com/go402/go402/store"
)

// A metered request with a limit: HoldWithTokens takes the bucket's token
// and holds the most the request may cost in one operation, and Settle
// debits what it really cost.
func ExampleMemory_HoldWithTokens() {
	ctx := context.Background()
	m := store.NewMemory(nil)
	if err := m.PutAccount(ctx, store.Account{ID: "acct_1", Balance: 100}); err != nil {
		panic(err)
	}
	b := store.Bucket{Account: "acct_1", Key: "default", Rate: 0.001, Burst: 1, Cost: 1}

	h, res, br, err := m.HoldWithTokens(ctx, "acct_1", 30, time.Minute, b)
	if err != nil {
		panic(err)
	}
	fmt.Println("held:", res.OK, h.Amount, "balance", res.Balance, "tokens left", br.Remaining)
	bal, err := m.Settle(ctx, h, 12)
	if err != nil {
		panic(err)
	}
	fmt.Println("settled at 12, balance", bal)

	_, res, br, _ = m.HoldWithTokens(ctx, "acct_1", 30, time.Minute, b)
	fmt.Println("next: bucket OK", br.OK, "held", res.OK, "balance", res.Balance)
	// Output:
	// held: true 30 balance 70 tokens left 0
	// settled at 12, balance 88
	// next: bucket OK false held false balance 88
}
