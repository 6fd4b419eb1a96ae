package store_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go402/go402/store"
)

// A memory store seeded with an account and a key of fixed text, as a demo
// server might be, then used the way the middlewares use it.
func ExampleNewMemory() {
	ctx := context.Background()
	m := store.NewMemory(nil)
	if err := m.PutAccount(ctx, store.Account{ID: "acct_1", Plan: "pro", Balance: 25}); err != nil {
		log.Fatal(err)
	}
	if err := m.PutKey(ctx, store.NewKey("sk_test_pro", "acct_1")); err != nil {
		log.Fatal(err)
	}

	// A request arrives with the key "sk_test_pro".
	key, acct, err := m.Lookup(ctx, store.DigestOf("sk_test_pro"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(key.Prefix, acct.Plan, acct.Balance)
	for range 3 {
		r, err := m.Spend(ctx, acct.ID, 10)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(r.OK, r.Balance)
	}
	// Output:
	// sk_test_ pro 25
	// true 15
	// true 5
	// false 5
}

// CreateKey returns the raw key once; the store keeps only its digest.
func ExampleMemory_CreateKey() {
	ctx := context.Background()
	m := store.NewMemory(nil)
	if err := m.PutAccount(ctx, store.Account{ID: "acct_1"}); err != nil {
		log.Fatal(err)
	}
	raw, key, err := m.CreateKey(ctx, "acct_1", "sk_live_")
	if err != nil {
		log.Fatal(err)
	}
	// Hand raw to the customer; show key.Prefix in dashboards.
	fmt.Println(strings.HasPrefix(raw, "sk_live_"), len(raw))
	fmt.Println(strings.HasPrefix(key.Prefix, "sk_live_"), len(key.Prefix))
	fmt.Println(key.Digest == store.DigestOf(raw))
	// Output:
	// true 40
	// true 12
	// true
}

// A monthly quota of 1000 requests that follows the billing cycle: each
// boundary tops the balance up to 1000, so unused quota does not pile up.
func ExampleRefill() {
	ctx := context.Background()
	now := time.Date(2025, 1, 15, 12, 0, 0, 0, time.UTC)
	m := store.NewMemory(&store.MemoryOptions{Clock: func() time.Time { return now }})
	err := m.PutAccount(ctx, store.Account{
		ID: "acct_1",
		Refill: &store.Refill{
			Amount: 1000,
			Every:  30 * 24 * time.Hour,
			Anchor: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	r, _ := m.Spend(ctx, "acct_1", 990) // the first spend applies the refill due since Jan 1
	fmt.Println(r.OK, r.Balance, r.NextRefill.Format(time.DateOnly))
	r, _ = m.Spend(ctx, "acct_1", 20)
	fmt.Println(r.OK, r.Balance, r.NextRefill.Format(time.DateOnly))

	now = now.AddDate(0, 0, 20) // past the Jan 31 boundary
	r, _ = m.Spend(ctx, "acct_1", 20)
	fmt.Println(r.OK, r.Balance, r.NextRefill.Format(time.DateOnly))
	// Output:
	// true 10 2025-01-31
	// false 10 2025-01-31
	// true 980 2025-03-02
}

// A callback store over the application's own data — here a map guarded by
// a mutex, standing in for a database.
func ExampleNewCallback() {
	var (
		mu       sync.Mutex
		keys     = map[store.Digest]string{store.DigestOf("sk_test_abc"): "acct_1"}
		balances = map[string]int64{"acct_1": 15}
	)
	cb, err := store.NewCallback(store.Callbacks{
		Lookup: func(ctx context.Context, d store.Digest) (store.Key, store.Account, error) {
			mu.Lock()
			defer mu.Unlock()
			id, ok := keys[d]
			if !ok {
				return store.Key{}, store.Account{}, store.ErrNotFound
			}
			return store.Key{AccountID: id}, store.Account{ID: id, Balance: balances[id]}, nil
		},
		Spend: func(ctx context.Context, id string, cost int64) (store.SpendResult, error) {
			mu.Lock() // in SQL: UPDATE … SET balance = balance - $1 WHERE id = $2 AND balance >= $1
			defer mu.Unlock()
			b, ok := balances[id]
			if !ok {
				return store.SpendResult{}, store.ErrNotFound
			}
			if b < cost {
				return store.SpendResult{Balance: b}, nil
			}
			balances[id] = b - cost
			return store.SpendResult{OK: true, Balance: b - cost}, nil
		},
	}, nil)
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	_, acct, err := cb.Lookup(ctx, store.DigestOf("sk_test_abc"))
	fmt.Println(acct.ID, err)
	_, _, err = cb.Lookup(ctx, store.DigestOf("sk_test_nope"))
	fmt.Println(errors.Is(err, store.ErrNotFound))
	r, _ := cb.Spend(ctx, acct.ID, 10)
	fmt.Println(r.OK, r.Balance)
	_, refunds := cb.(store.Refunder) // no Callbacks.Refund, no Refunder
	fmt.Println(refunds)
	// Output:
	// acct_1 <nil>
	// true
	// true 5
	// false
}

// Save the store when the server stops and restore it when it starts, so a
// restart loses nothing; the first start finds no file.
func ExampleMemory_LoadFile() {
	dir, err := os.MkdirTemp("", "go402-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "store.json")
	ctx := context.Background()

	m := store.NewMemory(nil)
	if err := m.LoadFile(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.Fatal(err)
	}
	m.PutAccount(ctx, store.Account{ID: "acct_1", Balance: 100})
	m.Spend(ctx, "acct_1", 30)
	if err := m.SaveFile(path); err != nil {
		log.Fatal(err)
	}

	restarted := store.NewMemory(nil)
	if err := restarted.LoadFile(path); err != nil {
		log.Fatal(err)
	}
	a, _ := restarted.Account(ctx, "acct_1")
	fmt.Println(a.Balance)
	// Output:
	// 70
}

// A spend cap of 25 credits a day refuses the spend that would cross it,
// whatever the balance; a threshold at 80% of the cap is reported by the
// one spend that crosses it.
func ExampleSpendCap() {
	ctx := context.Background()
	day := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	m := store.NewMemory(&store.MemoryOptions{Clock: func() time.Time { return day }})
	_ = m.PutAccount(ctx, store.Account{
		ID: "acct_1", Balance: 1000,
		SpendCap:   &store.SpendCap{Limit: 25, Period: store.PeriodDay},
		Thresholds: []store.Threshold{{Kind: store.ThresholdCapPercent, Value: 80}},
	})
	for _, cost := range []int64{10, 10, 10} {
		r, _ := m.Spend(ctx, "acct_1", cost)
		fmt.Printf("spend %d: ok=%v balance=%d spent=%d reached=%v crossed=%d\n",
			cost, r.OK, r.Balance, r.Cap.Spent, r.Cap.Reached, len(r.Crossed()))
	}
	r, _ := m.Spend(ctx, "acct_1", 5)
	fmt.Println("spend 5:", r.OK, "resets at", r.Cap.ResetAt.Format(time.RFC3339))
	// Output:
	// spend 10: ok=true balance=990 spent=10 reached=false crossed=0
	// spend 10: ok=true balance=980 spent=20 reached=false crossed=1
	// spend 10: ok=false balance=980 spent=20 reached=true crossed=0
	// spend 5: true resets at 2025-03-02T00:00:00Z
}

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
